/**
 * Checks responses of the GitLab double against the project's own contract (test/contracts/gitlab-api.json):
 * the route must be an endpoint of the contract, the status one it lists (or a `common` one), and the body
 * of the type it names: every required field present, every field of its type, no field the type does not
 * list (a misspelt field in the double fails here instead of silently passing).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RecordedGitlabResponse } from '../doubles/gitlab/server.js';
import { checkNamedType } from '../helpers/contract-types.js';

type FieldSpec = string | { type: string; enum?: string[] };
interface TypeSpec {
  fields: Record<string, FieldSpec>;
  required: string[];
}
interface Contract {
  common: Record<string, string>;
  types: Record<string, TypeSpec>;
  endpoints: Record<string, { responses: Record<string, string>; note?: string; job_token?: boolean }>;
}

export const CONTRACT_FILE = fileURLToPath(new URL('../contracts/gitlab-api.json', import.meta.url));
export const contract: Contract = JSON.parse(readFileSync(CONTRACT_FILE, 'utf8'));

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/;

function checkError(v: unknown, at: string): string[] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [`${at}: error body is not an object`];
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if ('message' in o) {
    const m = o.message;
    if (!(typeof m === 'string' || Array.isArray(m) || (m && typeof m === 'object'))) return [`${at}.message: not a string, array or object`];
    return keys.filter((k) => k !== 'message').map((k) => `${at}: unexpected field ${k} beside message`);
  }
  if (typeof o.error === 'string') return keys.filter((k) => !['error', 'error_description', 'scope'].includes(k)).map((k) => `${at}: unexpected field ${k} beside error`);
  return [`${at}: error body has neither message nor error`];
}

/** problems of value `v` against a type expression */
export function checkType(v: unknown, expr: string, at: string, enumValues?: string[]): string[] {
  const alts = expr.split('|').map((s) => s.trim());
  if (alts.length > 1) {
    const results = alts.map((a) => checkType(v, a, at, enumValues));
    return results.some((r) => r.length === 0) ? [] : [`${at}: ${JSON.stringify(v)?.slice(0, 80)} is none of ${expr}${results.map((r) => (r[0] ? ` (${r[0]})` : '')).join('')}`];
  }
  if (expr.endsWith('[]')) {
    if (!Array.isArray(v)) return [`${at}: not an array (${expr})`];
    return v.flatMap((x, i) => checkType(x, expr.slice(0, -2), `${at}[${i}]`));
  }
  switch (expr) {
    case 'integer':
      return Number.isInteger(v) ? [] : [`${at}: not an integer`];
    case 'string':
      if (typeof v !== 'string') return [`${at}: not a string`];
      return enumValues && !enumValues.includes(v) ? [`${at}: ${JSON.stringify(v)} is not one of ${enumValues.join(', ')}`] : [];
    case 'datetime':
      return typeof v === 'string' && ISO.test(v) ? [] : [`${at}: not an ISO 8601 time (${JSON.stringify(v)})`];
    case 'boolean':
      return typeof v === 'boolean' ? [] : [`${at}: not a boolean`];
    case 'null':
      return v === null ? [] : [`${at}: not null`];
    case 'object':
      return v && typeof v === 'object' && !Array.isArray(v) ? [] : [`${at}: not an object`];
    case 'Error':
      return checkError(v, at);
  }
  return checkNamedType(v, expr, at, contract.types, (x, f, a) => (typeof f === 'string' ? checkType(x, f, a) : checkType(x, f.type, a, f.enum)));
}

/** problems of one recorded response */
export function validateResponse(r: RecordedGitlabResponse): string[] {
  const where = `${r.method} ${r.path} ${r.status}`;
  if (!r.route) {
    // an unknown route answers GitLab's 404/405 {"error": ...}
    return r.status === 404 || r.status === 405 ? checkError(r.body, where) : [`${where}: route is not in the contract`];
  }
  const key = r.route.replace(/^(\w+) /, '$1 ');
  const ep = contract.endpoints[key];
  if (!ep) return [`${where}: ${key} is not an endpoint of the contract`];
  const type = ep.responses[String(r.status)] ?? contract.common[String(r.status)];
  if (!type) return [`${where}: status ${r.status} is not listed for ${key} (${Object.keys(ep.responses).join(', ')})`];
  return checkType(r.body, type, where);
}

/** a recorder to pass as `onResponse`: collects every violation */
export function gitlabContractRecorder() {
  const violations: string[] = [];
  const seen = new Set<string>();
  let checked = 0;
  return {
    onResponse: (r: RecordedGitlabResponse) => {
      checked++;
      if (r.route) seen.add(`${r.route} ${r.status}`);
      violations.push(...validateResponse(r));
    },
    violations,
    /** route + status pairs seen */
    seen,
    get checked() {
      return checked;
    },
  };
}
