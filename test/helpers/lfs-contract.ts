/**
 * Checks answers of the Git LFS File Locking API (GitLab's, as the test git server serves it: lfs-locks.mjs) against
 * the project's own contract, test/contracts/git-lfs-locks.json: the route must be an endpoint of the contract, the
 * status one it lists (or a `common` one), and the body of the type it names: every required field present, every
 * field of its type, no field the type does not list. Self-contained: it reads only that contract.
 */
import { readFileSync } from 'node:fs';
import { contractFile } from './contracts.js';
import { checkNamedType } from './contract-types.js';

type FieldSpec = string | { type: string; pattern?: string };
interface TypeSpec {
  fields: Record<string, FieldSpec>;
  required: string[];
}
export interface LfsContract {
  common: Record<string, string>;
  types: Record<string, TypeSpec>;
  endpoints: Record<string, { responses: Record<string, string>; request?: string; query?: string[]; access: string; note?: string }>;
}

export const LFS_CONTRACT_FILE = contractFile('git-lfs-locks.json');
export const lfsContract: LfsContract = JSON.parse(readFileSync(LFS_CONTRACT_FILE, 'utf8'));

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/;

/** problems of value `v` against a type expression of `c` */
export function checkLfsType(v: unknown, expr: string, at: string, c: LfsContract = lfsContract, pattern?: string): string[] {
  const alts = expr.split('|').map((s) => s.trim());
  if (alts.length > 1) {
    const results = alts.map((a) => checkLfsType(v, a, at, c, pattern));
    return results.some((r) => r.length === 0) ? [] : [`${at}: ${JSON.stringify(v)?.slice(0, 80)} is none of ${expr}`];
  }
  if (expr.endsWith('[]')) {
    if (!Array.isArray(v)) return [`${at}: not an array (${expr})`];
    return v.flatMap((x, i) => checkLfsType(x, expr.slice(0, -2), `${at}[${i}]`, c));
  }
  switch (expr) {
    case 'string':
    case 'text':
      if (typeof v !== 'string') return [`${at}: not a string`];
      return pattern && !new RegExp(pattern).test(v) ? [`${at}: ${JSON.stringify(v)} does not match ${pattern}`] : [];
    case 'integer':
      return Number.isInteger(v) ? [] : [`${at}: not an integer`];
    case 'boolean':
      return typeof v === 'boolean' ? [] : [`${at}: not a boolean`];
    case 'datetime':
      return typeof v === 'string' && ISO.test(v) ? [] : [`${at}: not an ISO 8601 time (${JSON.stringify(v)})`];
    case 'object':
      return v && typeof v === 'object' && !Array.isArray(v) ? [] : [`${at}: not an object`];
  }
  return checkNamedType(v, expr, at, c.types, (x, f, a) => (typeof f === 'string' ? checkLfsType(x, f, a, c) : checkLfsType(x, f.type, a, c, f.pattern)));
}

/** the contract's endpoint key ('POST /locks/:id/unlock') of a request, or undefined */
export function lfsEndpoint(method: string, path: string, c: LfsContract = lfsContract): string | undefined {
  // the path as logged is the whole URL path; the contract's routes are relative to <repo>.git/info/lfs
  const rel = /^(?:\/.*?\.git\/info\/lfs)?(\/locks(?:\/.*)?)$/.exec(path.replace(/\/$/, ''))?.[1];
  if (!rel) return undefined;
  return Object.keys(c.endpoints).find((key) => {
    const [m, route] = key.split(' ') as [string, string];
    const re = new RegExp(`^${route.replace(/:\w+/g, '[^/]+')}$`);
    return m === method.toUpperCase() && re.test(rel);
  });
}

/** problems of one LFS answer ({method, path, status, response} as the git server logs it) */
export function validateLfsResponse(r: { method: string; path: string; status: number; response: unknown }, c: LfsContract = lfsContract): string[] {
  const where = `${r.method} ${r.path} ${r.status}`;
  const key = lfsEndpoint(r.method, r.path, c);
  if (!key) return [`${where}: route is not an endpoint of the contract`];
  const type = c.endpoints[key]!.responses[String(r.status)] ?? c.common[String(r.status)];
  if (!type) return [`${where}: status ${r.status} is not listed for ${key} (${Object.keys(c.endpoints[key]!.responses).join(', ')})`];
  return checkLfsType(r.response, type, where, c);
}

/** problems of every LFS answer in a git server's request log (`srv.requests`: the entries with a status) */
export function lfsLogProblems(requests: readonly { method: string; path: string; status?: number; response?: unknown }[], c: LfsContract = lfsContract): string[] {
  return requests.flatMap((r) => (r.status === undefined ? [] : validateLfsResponse({ method: r.method, path: r.path, status: r.status, response: r.response }, c)));
}
