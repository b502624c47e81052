/**
 * The GitLab connection: server, project, token and TLS options, resolved from flags and GitLab's
 * predefined variables (flags override; empty values count as unset).
 *
 *   server   --gitlab-url URL (server root or …/api/v4) > CI_API_V4_URL > CI_SERVER_URL (+ /api/v4)
 *   project  --project ID|PATH > the path derived from the config repo URL (opts.repoUrl; CI_PROJECT_ID when
 *            that path is CI_PROJECT_PATH) > CI_PROJECT_ID
 *   token    read commands (gate, preview; `token: 'read'`): GITOPS_GITLAB_READ_TOKEN > GITOPS_GITLAB_TOKEN >
 *            GITLAB_TOKEN. Write commands (promote; the default): GITOPS_GITLAB_TOKEN > GITLAB_TOKEN.
 *            CI_JOB_TOKEN alone is refused with a clear message: it cannot create MRs or read approvals.
 *   MR project  with `mrProject: true` (commands about a merge request), CI_MERGE_REQUEST_PROJECT_ID comes
 *            before CI_PROJECT_ID: in a fork's pipeline CI_PROJECT_ID is the fork, the MR lives in the target
 *            (https://docs.gitlab.com/ci/variables/predefined_variables/#predefined-variables-for-merge-request-pipelines).
 *   TLS      --gitlab-ca-file FILE > GITOPS_GITLAB_CA_FILE > CI_SERVER_TLS_CA_FILE; --gitlab-insecure or
 *            GITOPS_GITLAB_INSECURE=true skips verification (opt-in).
 */
import { readFileSync } from 'node:fs';
import { bool, str, type OptionSpec, type Values } from '../core/command.js';
import { fail } from '../core/errors.js';
import { addSecret, redactUrl } from '../core/mask.js';
import { knownUsers } from '../core/secrets.js';
import { GitlabErrors } from './errors.js';

export interface GitlabConfig {
  /** e.g. https://gitlab.example.com/api/v4 (no trailing slash, no credentials) */
  apiUrl: string;
  token: string;
  /** where the token came from, e.g. GITOPS_GITLAB_TOKEN (for messages) */
  tokenSource: string;
  /** numeric id, or path with namespace (`group/sub/project`) */
  project: string | number;
  caFile?: string;
  insecure?: boolean;
  /** the CA file's content, read while resolving */
  ca?: Buffer;
  /** client timeout of each request (default 30 s) */
  requestTimeoutMs?: number;
}

/** Flags for commands that talk to GitLab (spread into a command's `options`). */
export const gitlabOptions: Record<string, OptionSpec> = {
  'gitlab-url': { type: 'string', value: 'URL', description: 'GitLab server (https://gitlab.example.com or …/api/v4)', env: ['CI_API_V4_URL', 'CI_SERVER_URL'] },
  project: { type: 'string', value: 'ID|PATH', description: 'GitLab project (numeric id or group/project)', env: ['CI_PROJECT_ID'] },
  'gitlab-ca-file': { type: 'string', value: 'FILE', description: "PEM file with the CA that signed GitLab's certificate", env: ['GITOPS_GITLAB_CA_FILE', 'CI_SERVER_TLS_CA_FILE'] },
  'gitlab-insecure': { type: 'boolean', description: 'skip TLS certificate verification of GitLab (opt-in; prefer --gitlab-ca-file)', env: ['GITOPS_GITLAB_INSECURE=true'] },
};

/**
 * The same flags with the project flag under another name, for commands whose `--project` already means
 * something else (Argo CD's project): `...gitlabConnectionOptions('gitlab-project')`, then
 * `resolveGitlabConfig(env, values, { repoUrl, projectKey: 'gitlab-project' })`.
 */
export function gitlabConnectionOptions(projectKey = 'project'): Record<string, OptionSpec> {
  const { project, ...rest } = gitlabOptions;
  return { ...rest, [projectKey]: project };
}

const truthy = (v: string | undefined) => !!v && /^(1|true|yes|on)$/i.test(v.trim());
/** a non-empty string or undefined */
const nz = (v: string | undefined | null): string | undefined => (v != null && v.trim() !== '' ? v.trim() : undefined);

export const JOB_TOKEN_HINT =
  'create a project access token (Settings → Access tokens, role Developer or higher, scope `api`) and store it as a masked, protected CI/CD variable GITOPS_GITLAB_TOKEN';

/** for the read-only commands (gate, preview): a Reporter token, which may be unprotected (docs/security.md) */
export const READ_TOKEN_HINT =
  'create a project access token (Settings → Access tokens, role Reporter, scope `api`; `read_api` is enough for `gate`) and store it as a masked CI/CD variable GITOPS_GITLAB_READ_TOKEN (see docs/security.md, tokens)';

/** which token variables a command reads, in order */
export function tokenVariables(kind: 'read' | 'write' = 'write'): string[] {
  return kind === 'read' ? ['GITOPS_GITLAB_READ_TOKEN', 'GITOPS_GITLAB_TOKEN', 'GITLAB_TOKEN'] : ['GITOPS_GITLAB_TOKEN', 'GITLAB_TOKEN'];
}

/** https://host[/root][/api/v4] → https://host[/root]/api/v4 */
export function normalizeApiUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw fail.usage(GitlabErrors.CONFIG, `the GitLab URL ${JSON.stringify(redactUrl(text))} is not a URL`, { hint: 'use https://gitlab.example.com (or its /api/v4 URL)' });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw fail.usage(GitlabErrors.CONFIG, `the GitLab URL must be http(s), not ${u.protocol}`);
  if (u.username || u.password) throw fail.usage(GitlabErrors.CONFIG, 'the GitLab URL must not carry credentials', { hint: 'put the token in GITOPS_GITLAB_TOKEN' });
  let path = u.pathname.replace(/\/+$/, '');
  if (!/\/api\/v4$/.test(path)) path = `${path}/api/v4`;
  return `${u.protocol}//${u.host}${path}`;
}

/** the server root of an API URL: https://host/root/api/v4 → https://host/root */
export function serverRoot(apiUrl: string): string {
  return apiUrl.replace(/\/api\/v4\/?$/, '');
}

/**
 * `group/sub/project` from a git remote URL: https://[user:pw@]host[:port][/root]/group/project(.git),
 * ssh://git@host[:port]/group/project.git, git@host:group/project.git. undefined for a local path.
 * `root` (the server's relative URL root, e.g. /gitlab) is stripped when the hosts match.
 */
export function projectPathFromRepoUrl(repoUrl: string, apiUrl?: string): string | undefined {
  const s = repoUrl.trim();
  let host: string | undefined;
  let path: string | undefined;
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/.exec(s);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    try {
      const u = new URL(s);
      if (u.protocol === 'file:') return undefined;
      host = u.host;
      path = decodeURIComponent(u.pathname);
    } catch {
      return undefined;
    }
  } else if (scp && !s.startsWith('/') && !s.startsWith('.')) {
    host = scp[1];
    path = scp[2];
  } else return undefined;
  path = path.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/, '');
  if (apiUrl && host) {
    try {
      const a = new URL(apiUrl);
      const root = a.pathname.replace(/\/api\/v4\/?$/, '').replace(/^\/+|\/+$/g, '');
      if (root && a.hostname === host.replace(/:\d+$/, '') && path.startsWith(`${root}/`)) path = path.slice(root.length + 1);
    } catch {
      /* keep path */
    }
  }
  return path.includes('/') ? path : undefined;
}

/**
 * Reads the connection settings; collects every problem and throws once (exit 2), except that a job token
 * alone is an auth problem (exit 3). Registers the token as a secret at once.
 */
export function resolveGitlabConfig(
  env: NodeJS.ProcessEnv,
  values: Values,
  opts: { repoUrl?: string; projectKey?: string; token?: 'read' | 'write'; mrProject?: boolean } = {},
): GitlabConfig {
  const problems: string[] = [];
  // tokens first (every one we know, whichever is used), so that nothing below can print them
  for (const v of tokenVariables('read')) addSecret(nz(env[v]), { users: knownUsers(env) });
  const tokens: Array<[string, string | undefined]> = tokenVariables(opts.token).map((v) => [v, nz(env[v])]);
  const hintText = opts.token === 'read' ? READ_TOKEN_HINT : JOB_TOKEN_HINT;
  addSecret(nz(env.CI_JOB_TOKEN), { users: knownUsers(env) });
  const found = tokens.find(([, t]) => t);

  let apiUrl = '';
  const urlFlag = nz(str(values, 'gitlab-url'));
  const server = urlFlag ?? nz(env.CI_API_V4_URL) ?? nz(env.CI_SERVER_URL);
  if (!server) problems.push('no GitLab server: set --gitlab-url (in a pipeline CI_API_V4_URL / CI_SERVER_URL are used)');
  else {
    try {
      apiUrl = normalizeApiUrl(server);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }

  let project: string | number | undefined;
  const flag = nz(str(values, opts.projectKey ?? 'project'));
  const repoUrl = nz(opts.repoUrl);
  if (flag) project = /^\d+$/.test(flag) ? Number(flag) : flag.replace(/^\/+|\/+$/g, '');
  else if (repoUrl && projectPathFromRepoUrl(repoUrl, apiUrl || undefined)) {
    const p = projectPathFromRepoUrl(repoUrl, apiUrl || undefined)!;
    const ciPath = nz(env.CI_PROJECT_PATH);
    const ciId = nz(env.CI_PROJECT_ID);
    project = ciPath && ciId && ciPath.toLowerCase() === p.toLowerCase() && /^\d+$/.test(ciId) ? Number(ciId) : p;
  } else if (opts.mrProject && nz(env.CI_MERGE_REQUEST_PROJECT_ID)) {
    const id = nz(env.CI_MERGE_REQUEST_PROJECT_ID)!;
    project = /^\d+$/.test(id) ? Number(id) : id;
  } else if (nz(env.CI_PROJECT_ID)) {
    const id = nz(env.CI_PROJECT_ID)!;
    project = /^\d+$/.test(id) ? Number(id) : id;
  } else {
    problems.push(
      repoUrl
        ? `no GitLab project: cannot derive it from the repo ${JSON.stringify(redactUrl(repoUrl))}; set --project ID|PATH`
        : 'no GitLab project: set --project ID|PATH (in a pipeline CI_PROJECT_ID is used)',
    );
  }

  const insecure = bool(values, 'gitlab-insecure') || truthy(env.GITOPS_GITLAB_INSECURE);
  const caFile = nz(str(values, 'gitlab-ca-file')) ?? nz(env.GITOPS_GITLAB_CA_FILE) ?? nz(env.CI_SERVER_TLS_CA_FILE);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      problems.push(`cannot read the GitLab CA file ${caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  if (!found) {
    if (nz(env.CI_JOB_TOKEN) && !problems.length) {
      throw fail.auth(GitlabErrors.JOB_TOKEN, 'only CI_JOB_TOKEN is available, and a job token cannot create or edit merge requests, post notes or read approvals', {
        where: apiUrl || undefined,
        hint: hintText,
      });
    }
    const names = tokenVariables(opts.token).join(' or ');
    problems.push(nz(env.CI_JOB_TOKEN) ? `no GitLab token: CI_JOB_TOKEN cannot create MRs or read approvals; ${hintText}` : `no GitLab token: set ${names} (${hintText})`);
  }

  if (problems.length) {
    throw fail.usage(GitlabErrors.CONFIG, problems.length === 1 ? problems[0] : `${problems.length} GitLab configuration problems`, {
      details: problems.length > 1 ? problems : undefined,
      hint: 'see docs/commands/gate.md (GitLab connection)',
    });
  }
  return { apiUrl, token: found![1]!, tokenSource: found![0], project: project!, caFile, insecure: insecure || undefined, ca, requestTimeoutMs: 30_000 };
}

/** how a project is named in messages */
export function projectLabel(p: string | number): string {
  return typeof p === 'number' ? `project ${p}` : `project ${p}`;
}
