/**
 * Connection settings shared by the `argocd …` commands, resolved like the argocd CLI does: a server
 * (`host[:port]`, or an http/https URL with an optional root path), a bearer token or a username/password
 * exchanged for one through POST /api/v1/session, TLS options. Flags override the environment.
 */
import { readFileSync } from 'node:fs';
import { bool, str, type OptionSpec, type Values } from '../core/command.js';
import { fail } from '../core/errors.js';
import { addSecret } from '../core/mask.js';
import { knownUsers } from '../core/secrets.js';
import { parseDuration } from './duration.js';
import { ArgoErrors } from './errors.js';
import type { AppRef } from './types.js';

export const connectionOptions: Record<string, OptionSpec> = {
  server: { type: 'string', value: 'HOST[:PORT]|URL', description: 'Argo CD API server; https unless --plaintext or an http:// URL', env: ['ARGOCD_SERVER'] },
  'auth-token': { type: 'string', value: 'JWT', description: 'bearer token (prefer the env var: flags show in process lists)', env: ['ARGOCD_AUTH_TOKEN'] },
  username: { type: 'string', value: 'USER', description: 'log in with a local account (password from ARGOCD_PASSWORD) when no token is set', env: ['ARGOCD_USERNAME'] },
  plaintext: { type: 'boolean', description: 'talk plain HTTP to a host[:port] server', env: ['ARGOCD_PLAINTEXT=true'] },
  insecure: { type: 'boolean', description: 'skip TLS certificate verification (opt-in; prefer --ca-file)', env: ['ARGOCD_INSECURE=true'] },
  'ca-file': { type: 'string', value: 'FILE', description: "PEM file with the CA that signed the server's certificate", env: ['ARGOCD_CA_FILE'] },
  'app-namespace': { type: 'string', value: 'NS', description: 'namespace of the Application(s) when not the control plane\'s ("apps in any namespace"); or write ns/name', env: ['ARGOCD_APP_NAMESPACE'] },
  project: { type: 'string', value: 'PROJECT', description: 'the app\'s project: makes a missing app a 404 instead of 403' },
  'request-timeout': { type: 'string', value: 'DURATION', description: 'client timeout of each API request', default: '30s' },
};

export interface Connection {
  /** base URL without trailing slash, e.g. https://argocd.example.com or http://127.0.0.1:8080/argocd */
  baseUrl: string;
  token?: string;
  username?: string;
  password?: string;
  insecure: boolean;
  ca?: Buffer;
  requestTimeoutMs: number;
}

const truthy = (v: string | undefined) => !!v && /^(1|true|yes|on)$/i.test(v.trim());

export function normalizeServer(server: string, plaintext: boolean): string {
  const s = server.trim().replace(/\/+$/, '');
  if (/^https?:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw fail.usage(ArgoErrors.CONFIG, `ARGOCD_SERVER/--server ${JSON.stringify(server)} is not a URL`, { hint: 'use host[:port] or https://host[:port][/rootpath]' });
    }
    if (u.username || u.password) throw fail.usage(ArgoErrors.CONFIG, 'the Argo CD server URL must not carry credentials', { hint: 'use ARGOCD_AUTH_TOKEN or ARGOCD_USERNAME/ARGOCD_PASSWORD' });
    if (plaintext && u.protocol === 'https:') throw fail.usage(ArgoErrors.CONFIG, '--plaintext conflicts with an https:// server URL', { hint: 'drop --plaintext or use http://' });
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  }
  if (!/^[A-Za-z0-9.\-_[\]:]+(\/[A-Za-z0-9._~\-/]*)?$/.test(s)) throw fail.usage(ArgoErrors.CONFIG, `ARGOCD_SERVER/--server ${JSON.stringify(server)} is not host[:port] or a URL`);
  return `${plaintext ? 'http' : 'https'}://${s}`;
}

/**
 * The part of ARGOCD_OPTS (extra flags of the argocd CLI, e.g. `--grpc-web --insecure`) that means something
 * over REST: --server, --plaintext, --insecure, --server-crt FILE (a CA file), --grpc-web-root-path PATH.
 * --grpc-web is implied (REST goes through the same HTTP server); other flags are ignored.
 */
export function parseArgocdOpts(text: string | undefined): { server?: string; plaintext?: boolean; insecure?: boolean; caFile?: string; rootPath?: string } {
  const out: ReturnType<typeof parseArgocdOpts> = {};
  const words = (text ?? '').trim().split(/\s+/).filter(Boolean);
  for (let i = 0; i < words.length; i++) {
    const [flag, inline] = words[i].split(/=(.*)/s, 2);
    const val = () => (inline !== undefined ? inline : words[++i]);
    if (flag === '--plaintext') out.plaintext = inline === undefined || truthy(inline);
    else if (flag === '--insecure') out.insecure = inline === undefined || truthy(inline);
    else if (flag === '--server') out.server = val();
    else if (flag === '--server-crt') out.caFile = val();
    else if (flag === '--grpc-web-root-path') out.rootPath = val();
  }
  return out;
}

/** Reads the connection settings; collects every problem and throws once. Flags > ARGOCD_* env > ARGOCD_OPTS. */
export function resolveConnection(values: Values, env: NodeJS.ProcessEnv, opts: { needAuth?: boolean } = {}): Connection {
  const problems: string[] = [];
  const ao = parseArgocdOpts(env.ARGOCD_OPTS);
  let server = str(values, 'server') ?? (env.ARGOCD_SERVER || ao.server);
  if (server && ao.rootPath && !/^https?:\/\//i.test(server)) server = `${server}/${ao.rootPath.replace(/^\/+/, '')}`;
  const plaintext = bool(values, 'plaintext') || truthy(env.ARGOCD_PLAINTEXT) || !!ao.plaintext;
  const insecure = bool(values, 'insecure') || truthy(env.ARGOCD_INSECURE) || !!ao.insecure;
  const token = str(values, 'auth-token') ?? (env.ARGOCD_AUTH_TOKEN || undefined);
  const username = str(values, 'username') ?? (env.ARGOCD_USERNAME || undefined);
  const password = env.ARGOCD_PASSWORD || undefined;
  // register at once, before anything can print them
  addSecret(token);
  addSecret(password, { users: [...knownUsers(env), ...(username ? [username] : [])] });

  let baseUrl = '';
  if (!server) problems.push('no Argo CD server: set ARGOCD_SERVER or --server (host[:port] or URL)');
  else {
    try {
      baseUrl = normalizeServer(server, plaintext);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (opts.needAuth !== false && !token && !(username && password)) {
    problems.push(username ? 'ARGOCD_USERNAME is set but ARGOCD_PASSWORD is not' : 'no credentials: set ARGOCD_AUTH_TOKEN (a project-role or account token), or ARGOCD_USERNAME and ARGOCD_PASSWORD');
  }
  let ca: Buffer | undefined;
  const caFile = str(values, 'ca-file') ?? (env.ARGOCD_CA_FILE || ao.caFile || undefined);
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      problems.push(`cannot read --ca-file ${caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  let requestTimeoutMs = 30_000;
  try {
    const rt = str(values, 'request-timeout');
    if (rt) requestTimeoutMs = parseDuration(rt, 'request-timeout');
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (problems.length) {
    throw fail.usage(ArgoErrors.CONFIG, problems.length === 1 ? problems[0] : `${problems.length} configuration problems`, {
      details: problems.length > 1 ? problems : undefined,
      hint: 'see `gitops-ci argocd wait --help` and docs/commands/argocd.md',
    });
  }
  return { baseUrl, token, username, password, insecure, ca, requestTimeoutMs };
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** `name` or `ns/name`; --app-namespace applies to names without a namespace. */
export function parseAppRef(text: string, defaultNamespace: string | undefined, project: string | undefined): AppRef {
  const parts = text.split('/');
  if (parts.length > 2 || parts.some((p) => !NAME.test(p))) {
    throw fail.usage(ArgoErrors.CONFIG, `--app ${JSON.stringify(text)} is not an application name`, { hint: 'use NAME or NAMESPACE/NAME (lower-case DNS names)' });
  }
  return parts.length === 2 ? { namespace: parts[0], name: parts[1], project } : { name: parts[0], namespace: defaultNamespace || undefined, project };
}
