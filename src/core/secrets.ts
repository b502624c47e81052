/**
 * Secrets the CLI can meet in its environment. They are registered with the masker at start-up, before
 * anything is printed, so that no code path can print one by accident.
 */
import { CoreErrors } from './catalogue.js';
import { fail } from './errors.js';
import { addSecret, stripUserinfo } from './mask.js';

/** variables whose whole value is secret */
export const SECRET_VARS = [
  'CI_JOB_TOKEN',
  'CI_REGISTRY_PASSWORD',
  'CI_DEPENDENCY_PROXY_PASSWORD',
  'CI_DEPLOY_PASSWORD',
  'GITOPS_GIT_TOKEN',
  'GITOPS_GITLAB_TOKEN',
  'GITOPS_GITLAB_READ_TOKEN',
  'GITLAB_TOKEN',
  'GITOPS_REGISTRY_PASSWORD',
  'ARGOCD_AUTH_TOKEN',
  'ARGOCD_PASSWORD',
  'ARGOCD_WEBHOOK_SECRET',
  'GITOPS_WEBHOOK_SECRET',
  'SSH_PRIVATE_KEY',
  'GITOPS_SSH_PRIVATE_KEY',
];

/** usernames that appear next to secrets in basic auth (for the base64 `user:secret` form) */
export function knownUsers(env: NodeJS.ProcessEnv): string[] {
  return ['gitlab-ci-token', 'oauth2', 'git', 'admin', env.CI_REGISTRY_USER, env.CI_DEPLOY_USER, env.GITOPS_GIT_USER, env.GITOPS_REGISTRY_USER, env.ARGOCD_USERNAME].filter(
    (u): u is string => !!u,
  );
}

export function registerEnvSecrets(env: NodeJS.ProcessEnv): void {
  const users = knownUsers(env);
  for (const k of SECRET_VARS) addSecret(env[k], { users });
  // credentials inside any URL-ish value (GITOPS_CONFIG_REPO, CI_REPOSITORY_URL, ARGOCD_SERVER, …)
  for (const v of Object.values(env)) registerUrlSecrets(v);
  // DOCKER_AUTH_CONFIG holds `auths: {host: {auth: base64(user:pass)}}`
  const dac = env.DOCKER_AUTH_CONFIG;
  if (dac) {
    addSecret(dac);
    try {
      const j = JSON.parse(dac) as { auths?: Record<string, { auth?: string; password?: string; identitytoken?: string }> };
      for (const a of Object.values(j.auths ?? {})) {
        addSecret(a.auth);
        addSecret(a.password, { users });
        addSecret(a.identitytoken);
        if (a.auth) {
          const dec = Buffer.from(a.auth, 'base64').toString();
          const i = dec.indexOf(':');
          if (i > 0) addSecret(dec.slice(i + 1), { users: [...users, dec.slice(0, i)] });
        }
      }
    } catch {
      /* not JSON: masked whole above */
    }
  }
}

/** `name:sha256:hex` after an `@`: an image digest, not a host */
const DIGEST_AFTER_AT = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]{32,}/i;
const USER_NAMES = new Set(['git', 'oauth2', 'gitlab-ci-token', 'admin', 'root', 'user', 'deploy']);

export interface UrlUserinfo {
  user?: string;
  password?: string;
}

/** the last `@` of `rest` that is not the `@` of an image digest, or -1 */
function userinfoEnd(rest: string): number {
  for (let i = rest.lastIndexOf('@'); i > 0; i = rest.lastIndexOf('@', i - 1)) {
    if (!DIGEST_AFTER_AT.test(rest.slice(i + 1))) return i;
  }
  return -1;
}

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * The userinfo of every URL-ish thing in `text`, whether or not it would parse as a URL: `scheme://u:p@h`
 * (a `/`, `:` or `@` inside the password included: the userinfo ends at the last `@` that is not an image
 * digest's), and a whole value without a scheme that reads `user:password@host…` (e.g.
 * `oauth2:glpat-…@gitlab.example.com:group/repo.git`, which git would take for scp syntax).
 */
export function findUserinfo(text: string): UrlUserinfo[] {
  const out: UrlUserinfo[] = [];
  const take = (info: string) => {
    const i = info.indexOf(':');
    if (i >= 0) out.push({ user: info.slice(0, i) || undefined, password: info.slice(i + 1) || undefined });
    else if (info) out.push({ user: info });
  };
  for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/(\S+)/gi)) {
    const rest = m[1]!;
    const at = userinfoEnd(rest);
    if (at <= 0) continue;
    const info = rest.slice(0, at);
    // `https://host/users/@me`, `http://host:8080/users/@me`: a path with an `@`, not userinfo
    if ((!info.includes(':') && info.includes('/')) || /^[^:@/]+:\d+\//.test(info)) continue;
    take(info);
  }
  const whole = text.trim().replace(/^--?[a-z][a-z0-9-]*=/i, '');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(whole) && /^[^\s/@:]+:\S*@\S+$/.test(whole)) {
    const at = userinfoEnd(whole);
    if (at > 0) take(whole.slice(0, at));
  }
  return out;
}

/** register the credentials of every URL-ish thing in `text` with the masker (raw and percent-decoded) */
export function registerUrlSecrets(text: string | undefined): UrlUserinfo[] {
  if (!text || !text.includes('@')) return [];
  // a URL with a line break or a tab in it: masked whole (where its userinfo ends cannot be told)
  // eslint-disable-next-line no-control-regex
  if (/^\s*(--?[a-z][a-z0-9-]*=)?[a-z][a-z0-9+.-]*:\/\//i.test(text) && /[\x00-\x1f\x7f]/.test(text.trim())) addSecret(text.trim());
  const found = findUserinfo(text);
  for (const { user, password } of found) {
    const users = user ? [user, decoded(user)] : [];
    if (password) {
      addSecret(password, { users });
      addSecret(decoded(password), { users });
    } else if (user && user.length >= 16 && !USER_NAMES.has(user.toLowerCase())) {
      // a token given as the user name (`https://TOKEN@host/…`)
      addSecret(user);
      addSecret(decoded(user));
    }
  }
  return found;
}

/**
 * What is wrong with a secret's value, or undefined: control characters (a newline in a token ends up as a
 * second credential line that git prints back) and characters outside Latin-1 (no HTTP header can carry them).
 * Never the value itself.
 */
export function secretValueProblem(value: string, opts: { multiline?: boolean } = {}): string | undefined {
  // eslint-disable-next-line no-control-regex
  const ctl = opts.multiline ? /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/ : /[\x00-\x1f\x7f]/;
  if (ctl.test(value)) return /[\r\n]/.test(value) && !opts.multiline ? 'contains a line break' : 'contains a control character';
  if (!opts.multiline && /[^\x00-\xff]/.test(value)) return 'contains a character outside Latin-1, which no HTTP header can carry';
  return undefined;
}

/** variables whose value may span lines (keys, JSON) */
const MULTILINE_VARS = new Set(['SSH_PRIVATE_KEY', 'GITOPS_SSH_PRIVATE_KEY']);

/**
 * Every secret of the environment and of the command line that cannot be sent as it is, as
 * `NAME: problem` lines (the value never shown). Checked at start-up, before anything uses them.
 */
export function secretProblems(env: NodeJS.ProcessEnv, argv: string[]): string[] {
  const out: string[] = [];
  for (const k of SECRET_VARS) {
    const v = env[k];
    if (!v) continue;
    const p = secretValueProblem(v, { multiline: MULTILINE_VARS.has(k) });
    if (p) out.push(`${k} ${p}`);
  }
  const dac = env.DOCKER_AUTH_CONFIG;
  if (dac) {
    try {
      const j = JSON.parse(dac) as { auths?: Record<string, { auth?: string; password?: string; identitytoken?: string }> };
      for (const [host, a] of Object.entries(j.auths ?? {})) {
        for (const f of ['auth', 'password', 'identitytoken'] as const) {
          const p = typeof a?.[f] === 'string' ? secretValueProblem(a[f]!) : undefined;
          if (p) out.push(`DOCKER_AUTH_CONFIG (${host} ${f}) ${p}`);
        }
      }
    } catch {
      /* not JSON: the command that reads it says so */
    }
  }
  const check = (where: string, text: string | undefined) => {
    if (!text || !text.includes('@')) return;
    // eslint-disable-next-line no-control-regex
    if (/^\s*(--?[a-z][a-z0-9-]*=)?[a-z][a-z0-9+.-]*:\/\//i.test(text) && /[\x00-\x1f\x7f]/.test(text.trim())) out.push(`the URL of ${where} contains a control character`);
    for (const { password, user } of findUserinfo(text)) {
      for (const [what, v] of [['password', password], ['user', user]] as const) {
        if (!v) continue;
        const p = secretValueProblem(decoded(v));
        if (p) out.push(`the ${what} in the URL of ${where} ${p}`);
      }
    }
  };
  argv.forEach((a, i) => check(`argument ${i + 1}`, a));
  for (const k of ['GITOPS_CONFIG_REPO', 'CI_REPOSITORY_URL', 'ARGOCD_SERVER', 'ARGOCD_WEBHOOK_URL']) check(k, env[k]);
  return out;
}

/** for secrets read later than start-up (stdin, a file): the same refusal as secretProblems (ESECRET_INVALID, exit 2) */
export function assertUsableSecret(value: string, name: string): void {
  const p = secretValueProblem(value);
  if (p) {
    throw fail.usage(CoreErrors.SECRET_INVALID, `${name} ${p}; it cannot be used (its value is not shown)`, {
      hint: 'set the secret again without line breaks, control characters or non-Latin-1 characters',
    });
  }
}

/**
 * The environment for a child that needs no credential of ours (kustomize, kubectl): every known secret
 * variable, DOCKER_AUTH_CONFIG and our own git credential variables are left out, and the userinfo is stripped
 * from every URL-ish value. A child cannot print, log or pass on what it was never given.
 */
export function childEnvWithoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const drop = new Set<string>([...SECRET_VARS, 'DOCKER_AUTH_CONFIG', 'GITOPS_CI_GIT_USERNAME', 'GITOPS_CI_GIT_PASSWORD']);
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || drop.has(k)) continue;
    if (!findUserinfo(v).length) out[k] = v;
    else {
      const stripped = stripUserinfo(v);
      // a form stripUserinfo does not take apart (no scheme: `user:token@host:group/repo`) is left out whole
      if (!findUserinfo(stripped).length) out[k] = stripped;
    }
  }
  return out;
}
