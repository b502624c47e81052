/**
 * Registry credentials, per registry host. Sources, first match wins:
 *   1. explicit: --registry-user with GITOPS_REGISTRY_PASSWORD or --registry-password-stdin (for the
 *      registries the command writes to, see `explicitFor`)
 *   2. DOCKER_AUTH_CONFIG (as GitLab sets it: {"auths": {"host": {"auth": base64(user:pass)}}})
 *   3. CI_REGISTRY_USER / CI_REGISTRY_PASSWORD, for the registry CI_REGISTRY
 *   4. anonymous
 * Every secret is registered with the masker when it is read.
 */
import { addSecret } from '../core/mask.js';
import { assertUsableSecret } from '../core/secrets.js';
import { fail } from '../core/errors.js';
import { knownUsers } from '../core/secrets.js';

export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (docker's identitytoken) */
  identityToken?: string;
  /** where they came from, for messages (never the value) */
  source: string;
}

export interface CredentialStore {
  get(registry: string): Credentials | undefined;
  /** all registries with known credentials (for the classic builder's X-Registry-Config) */
  all(): Array<[string, Credentials]>;
}

function normHost(key: string): string {
  let k = key.trim();
  k = k.replace(/^[a-z]+:\/\//i, '');
  k = k.replace(/\/.*$/, '');
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = 'docker.io';
  return k.toLowerCase();
}

export function parseDockerAuthConfig(text: string | undefined): Map<string, Credentials> {
  const out = new Map<string, Credentials>();
  if (!text) return out;
  let j: { auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }> };
  try {
    j = JSON.parse(text);
  } catch {
    throw fail.usage('EREGISTRY_AUTH_CONFIG', 'DOCKER_AUTH_CONFIG is not valid JSON', { hint: 'set it to {"auths": {"registry.example.com": {"auth": "<base64 of user:password>"}}}' });
  }
  for (const [key, a] of Object.entries(j.auths ?? {})) {
    let username = a.username;
    let password = a.password;
    if (a.auth) {
      const dec = Buffer.from(a.auth, 'base64').toString();
      const i = dec.indexOf(':');
      if (i > 0) {
        username = dec.slice(0, i);
        password = dec.slice(i + 1);
      }
    }
    addSecret(password, { users: username ? [username] : [] });
    addSecret(a.identitytoken);
    out.set(normHost(key), { username, password, identityToken: a.identitytoken, source: `DOCKER_AUTH_CONFIG (${normHost(key)})` });
  }
  return out;
}

export interface ExplicitCredentials {
  username: string;
  password: string;
  source: string;
}

/**
 * Read the explicit credentials: --registry-user with the password from GITOPS_REGISTRY_PASSWORD or stdin.
 * A password is never accepted as a flag value.
 */
export async function readExplicit(env: NodeJS.ProcessEnv, user: string | undefined, passwordStdin: boolean, readStdin: () => Promise<string>): Promise<ExplicitCredentials | undefined> {
  const u = user ?? env.GITOPS_REGISTRY_USER;
  if (passwordStdin && !u) throw fail.usage('EREGISTRY_NO_USER', '--registry-password-stdin needs --registry-user (or GITOPS_REGISTRY_USER)');
  if (!u) return undefined;
  let password: string | undefined;
  let source: string;
  if (passwordStdin) {
    password = (await readStdin()).replace(/\r?\n$/, '');
    source = '--registry-user and --registry-password-stdin';
  } else {
    password = env.GITOPS_REGISTRY_PASSWORD;
    source = '--registry-user and GITOPS_REGISTRY_PASSWORD';
  }
  if (!password) throw fail.usage('EREGISTRY_NO_PASSWORD', `registry user ${u} given without a password`, { hint: 'set GITOPS_REGISTRY_PASSWORD, or pipe it in with --registry-password-stdin (never as a flag value)' });
  addSecret(password, { users: [u, ...knownUsers(env)] });
  assertUsableSecret(password, `the registry password (${source})`);
  return { username: u, password, source };
}

export function readStdinAll(): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d) => (s += d));
    process.stdin.on('end', () => resolve(s));
    process.stdin.on('error', reject);
  });
}

/**
 * `explicitFor`: the registries the explicit credentials are for (those the command writes to), or 'every' (a
 * command that reads only and says so: preview --from). An empty list is none: a command that writes to no
 * registry never hands them to a host an overlay names (promote without --copy-to did).
 */
export function credentialStore(env: NodeJS.ProcessEnv, explicit?: ExplicitCredentials, explicitFor: string[] | 'every' = []): CredentialStore {
  const dac = parseDockerAuthConfig(env.DOCKER_AUTH_CONFIG);
  const ciReg = env.CI_REGISTRY ? normHost(env.CI_REGISTRY) : undefined;
  const every = explicitFor === 'every';
  const explicitHosts = new Set(every ? [] : explicitFor.map(normHost));
  const get = (registry: string): Credentials | undefined => {
    const h = normHost(registry);
    if (explicit && (every || explicitHosts.has(h))) return { username: explicit.username, password: explicit.password, source: explicit.source };
    const d = dac.get(h);
    if (d) return d;
    if (ciReg && h === ciReg && env.CI_REGISTRY_USER && env.CI_REGISTRY_PASSWORD) return { username: env.CI_REGISTRY_USER, password: env.CI_REGISTRY_PASSWORD, source: 'CI_REGISTRY_USER/CI_REGISTRY_PASSWORD' };
    return undefined;
  };
  return {
    get,
    all() {
      const hosts = new Set<string>([...dac.keys(), ...(ciReg ? [ciReg] : []), ...explicitHosts]);
      return [...hosts].map((h) => [h, get(h)] as [string, Credentials | undefined]).filter((x): x is [string, Credentials] => !!x[1]);
    },
  };
}
