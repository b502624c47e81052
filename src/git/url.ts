/**
 * Remote URLs of a config repo: https (token), ssh (deploy key), or a local path. Credentials found in a
 * URL are taken out of it here, registered with the masker and fed to git through the environment
 * (src/git/auth.ts); the URL git sees, stores in .git/config and prints never carries them.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fail, isGitopsError, type GitopsError } from '../core/errors.js';
import { addSecret, mask, redactUrl } from '../core/mask.js';

export type RemoteKind = 'http' | 'ssh' | 'local';

export interface Remote {
  kind: RemoteKind;
  /** what git is given: no credentials in it */
  url: string;
  /** for messages: no credentials */
  display: string;
  /** host (http/ssh), for deciding which token may be sent where */
  host?: string;
  /** credentials that were in the URL, taken out */
  user?: string;
  password?: string;
}

const SCP_LIKE = /^([A-Za-z0-9._~-]+@)?([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]):(?!\/\/)(.+)$/;

export function parseRemote(raw: string, cwd: string): Remote {
  const text = raw.trim();
  if (!text) throw fail.usage('EGIT_URL', 'the config repo URL is empty', { hint: 'pass --repo URL|PATH or set GITOPS_CONFIG_REPO' });
  // git's transport helpers `ext::CMD` (runs a command) and `fd::N`, and any `<helper>::<address>`
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(text)) {
    throw fail.usage('EGIT_URL', `${redactUrl(text.replace(/::.*/s, '::…'))} URLs (git remote helpers) are not accepted`, { hint: 'use https://, ssh://, git@host:path or a local path' });
  }
  // `oauth2:TOKEN@host:group/repo.git`: credentials without a scheme (git would take `oauth2` for an scp host)
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text) && /^[^\s/@:]+:[^\s]*@/.test(text)) {
    throw fail.usage('EGIT_URL', `the config repo URL ${mask(text)} carries credentials but no scheme`, {
      hint: 'write it as https://host/group/repo.git and put the token in GITOPS_GIT_TOKEN (user in GITOPS_GIT_USER), not in the URL',
    });
  }
  if (/^https?:\/\//i.test(text)) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw fail.usage('EGIT_URL', 'the config repo URL is not a valid URL', { where: redactUrl(text) });
    }
    let user: string | undefined;
    let password: string | undefined;
    try {
      user = u.username ? decodeURIComponent(u.username) : undefined;
      password = u.password ? decodeURIComponent(u.password) : undefined;
    } catch {
      if (u.password) addSecret(u.password);
      throw fail.usage('EGIT_URL', 'the credentials in the config repo URL hold a malformed percent-escape', { where: redactUrl(text), hint: 'write % as %25 in a URL, or better, put the token in GITOPS_GIT_TOKEN' });
    }
    if (password) addSecret(password, { users: user ? [user] : [] });
    u.username = '';
    u.password = '';
    const url = u.toString();
    return { kind: 'http', url, display: url, host: u.host, user, password };
  }
  if (/^ssh:\/\//i.test(text) || /^git\+ssh:\/\//i.test(text)) {
    let u: URL;
    try {
      u = new URL(text.replace(/^git\+ssh:/i, 'ssh:'));
    } catch {
      throw fail.usage('EGIT_URL', 'the config repo URL is not a valid ssh URL', { where: redactUrl(text) });
    }
    checkHost(u.hostname, u.username, text);
    if (u.password) {
      addSecret(u.password);
      try {
        addSecret(decodeURIComponent(u.password));
      } catch {
        /* masked as written */
      }
      throw fail.usage('EGIT_URL', 'an ssh URL cannot carry a password; use a deploy key (SSH_PRIVATE_KEY)', { where: redactUrl(text) });
    }
    return { kind: 'ssh', url: u.toString(), display: u.toString(), host: u.hostname };
  }
  if (/^file:\/\//i.test(text)) return { kind: 'local', url: text, display: text };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw fail.usage('EGIT_URL', `unsupported URL scheme in ${redactUrl(text)}`, { hint: 'use https://, ssh://, git@host:path or a local path' });
  }
  const scp = SCP_LIKE.exec(text);
  if (scp && !text.startsWith('/') && !text.startsWith('.')) {
    const host = scp[2]!.replace(/^\[|\]$/g, '');
    checkHost(host, scp[1]?.slice(0, -1) ?? '', text);
    return { kind: 'ssh', url: text, display: text, host };
  }
  // a local path (a bare repo, or the current repo): file:// so that --depth and --filter apply
  const abs = isAbsolute(text) ? text : resolve(cwd, text);
  return { kind: 'local', url: pathToFileURL(abs).toString(), display: abs };
}

/** an ssh host or user that ssh would read as an option (`-oProxyCommand=…`): refused before git sees it */
function checkHost(host: string, user: string, text: string): void {
  if (host.startsWith('-') || user.startsWith('-') || !host) {
    throw fail.usage('EGIT_URL', `${redactUrl(text)} names an ssh ${host.startsWith('-') || !host ? 'host' : 'user'} that ssh would take for an option`, { hint: 'check the URL: hosts and users cannot start with "-"' });
  }
}

/** a branch name git takes as a branch (no option, no range, no ref path); used for --branch of every command */
const BRANCH_NAME = /^(?!-)(?!.*\.\.)[^\s~^:?*[\\]+$/;

/**
 * The config repo's branch: --branch, else GITOPS_CONFIG_BRANCH, else CI_DEFAULT_BRANCH (in a GitLab job), else
 * `fallback` when the command has one. A missing or malformed one is recorded in `problems`.
 */
export function configBranch(flag: string | undefined, env: NodeJS.ProcessEnv, problems: string[], fallback?: string): string | undefined {
  const branch = flag ?? env.GITOPS_CONFIG_BRANCH ?? env.CI_DEFAULT_BRANCH ?? fallback;
  if (!branch) problems.push('no branch: pass --branch, or set GITOPS_CONFIG_BRANCH (CI_DEFAULT_BRANCH is used in a GitLab job)');
  else checkBranch(branch, problems);
  return branch;
}

/** records in `problems` a --branch that is no branch name (an option, a range, a ref path) */
export function checkBranch(branch: string, problems: string[]): void {
  if (!BRANCH_NAME.test(branch) || branch.startsWith('refs/')) problems.push(`--branch ${JSON.stringify(branch)} is not a valid branch name`);
}

/**
 * The config repo of bump, promote and preview, resolved the same way for all three: `--repo`, else
 * GITOPS_CONFIG_REPO, else this pipeline's own repository (CI_REPOSITORY_URL, else CI_SERVER_URL/CI_PROJECT_PATH:
 * the seed's layout, manifests in the app repo). A missing or malformed one is recorded in `problems` / `errors`
 * so that the command reports every configuration problem at once.
 */
export function configRemote(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string, problems: string[], errors: GitopsError[]): Remote | undefined {
  const raw = flag ?? env.GITOPS_CONFIG_REPO ?? env.CI_REPOSITORY_URL ?? (env.CI_SERVER_URL && env.CI_PROJECT_PATH ? `${env.CI_SERVER_URL}/${env.CI_PROJECT_PATH}.git` : undefined);
  if (!raw) {
    problems.push('no config repo: pass --repo URL|PATH, or set GITOPS_CONFIG_REPO (CI_REPOSITORY_URL is used in a GitLab job)');
    return undefined;
  }
  try {
    return parseRemote(raw, cwd);
  } catch (e) {
    if (isGitopsError(e)) errors.push(e);
    else throw e;
    return undefined;
  }
}

/**
 * Where a repo URL points, to tell whether two spellings name one repo: the host (lower case, no user, no
 * port) and the path (no leading or trailing slash, no `.git`, lower case: GitLab's paths are
 * case-insensitive); for a local repo, its absolute path. `https://u:t@Host:443/G/R.git`,
 * `ssh://git@host:22/g/r` and `git@host:g/r.git` are one location. Undefined when the text is no repo URL.
 */
export function repoLocation(raw: string, cwd: string = process.cwd()): { host?: string; path: string } | undefined {
  const text = raw.trim();
  if (!text) return undefined;
  const clean = (p: string) => p.replace(/\/+$/, '').replace(/\.git$/i, '').replace(/^\/+/, '');
  if (/^file:\/\//i.test(text)) {
    try {
      return { path: clean(decodeURIComponent(new URL(text).pathname)) };
    } catch {
      return undefined;
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let u: URL;
    try {
      u = new URL(text.replace(/^git\+ssh:/i, 'ssh:'));
    } catch {
      return undefined;
    }
    let path: string;
    try {
      path = decodeURIComponent(u.pathname);
    } catch {
      path = u.pathname;
    }
    return u.hostname ? { host: u.hostname.toLowerCase(), path: clean(path).toLowerCase() } : undefined;
  }
  const scp = SCP_LIKE.exec(text);
  if (scp && !text.startsWith('/') && !text.startsWith('.')) return { host: scp[2]!.replace(/^\[|\]$/g, '').toLowerCase(), path: clean(scp[3]!.replace(/^~\//, '')).toLowerCase() };
  return { path: clean(isAbsolute(text) ? text : resolve(cwd, text)) };
}

/**
 * Whether two repo URLs name one repo: `same`; `other-host`: the same path reached through another host
 * name or transport (an internal name, ssh against https), taken as the same repo and worth a warning;
 * `different`; `unknown` when either is no repo URL.
 */
export function compareRepos(a: string, b: string, cwd?: string): 'same' | 'other-host' | 'different' | 'unknown' {
  const x = repoLocation(a, cwd);
  const y = repoLocation(b, cwd);
  if (!x || !y) return 'unknown';
  if (x.path !== y.path) return 'different';
  if (!x.host && !y.host) return 'same';
  if (!x.host || !y.host) return 'different';
  return x.host === y.host ? 'same' : 'other-host';
}
