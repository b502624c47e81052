/**
 * A small typed GitLab client over @gitbeaker/rest. Callers never touch gitbeaker types: every method
 * returns the plain shapes below (camelCase, only the fields we use).
 *
 * gitbeaker builds the endpoints (URL-encoded project paths, snake_case bodies, pagination); the transport
 * under it is ours (a custom `requesterFn`), for three reasons:
 *  - retries: gitbeaker 43.8 retries 429/502 up to 10 times for every method, POST included, so a create
 *    could be duplicated. Ours retries GET on 429/5xx/network errors, and other methods only on 429 or a
 *    refused connection (the request never reached GitLab), a bounded number of times.
 *  - TLS: a CA file or --gitlab-insecure per client (Node's fetch cannot without an extra dependency).
 *  - secrets: gitbeaker's errors carry the fetch Request (with the PRIVATE-TOKEN header) as `cause`. Ours
 *    carry the status, GitLab's message (masked) and the redacted URL, never a header.
 *
 * Errors are GitlabApiError (a GitopsError): 401/403 → auth (exit 3, EGITLAB_AUTH), 404 → failed
 * (EGITLAB_NOT_FOUND, naming the object), 409 → failed (EGITLAB_CONFLICT), other 4xx → failed
 * (EGITLAB_REJECTED), 5xx/429/network → transient (75, EGITLAB_UNAVAILABLE), TLS → usage (EGITLAB_TLS).
 * Bounds (src/core/http.ts): a request not finished within its deadline (30 s, the body included, however
 * slowly it comes) → timeout (4, EGITLAB_TIMEOUT, not retried); an answer over 32 MiB → failed (1,
 * EGITLAB_TOO_LARGE); a listing still announcing a next page after 100 pages → failed (1, EGITLAB_TOO_MANY_PAGES).
 */
import http from 'node:http';
import https from 'node:https';
import { fail, GitopsError, type ErrorInit } from '../core/errors.js';
import { mask, redactUrl } from '../core/mask.js';
import type { Logger } from '../core/log.js';
import { serverRoot, type GitlabConfig } from './config.js';
import { DEFAULT_MAX_BYTES, ERROR_BODY_BYTES, formatBytes, formatMs, isBoundError, KEEP_ALIVE, readBody, watchDeadline } from '../core/http.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { GitlabErrors } from './errors.js';

// ------------------------------------------------------------------------------------------ shapes

export interface GitlabUser {
  id: number;
  username: string;
  name: string;
  state: string;
}

export interface MergeRequest {
  id: number;
  iid: number;
  projectId: number;
  title: string;
  description: string;
  /** opened | closed | merged | locked */
  state: string;
  sourceBranch: string;
  targetBranch: string;
  /** head commit of the source branch */
  sha: string;
  mergeCommitSha: string | null;
  squashCommitSha: string | null;
  /** mergeable, checking, unchecked, preparing, approvals_syncing, conflict, not_open, ci_still_running, … (open set) */
  detailedMergeStatus: string;
  hasConflicts: boolean;
  draft: boolean;
  labels: string[];
  author: GitlabUser;
  assignees: GitlabUser[];
  reviewers: GitlabUser[];
  webUrl: string;
  createdAt: string;
  updatedAt: string;
  mergedAt: string | null;
  closedAt: string | null;
  mergeWhenPipelineSucceeds: boolean;
  mergeError: string | null;
}

export interface MergeRequestVersion {
  id: number;
  headCommitSha: string;
  baseCommitSha: string;
  startCommitSha: string;
  createdAt: string;
  state: string;
  /** git patch-id of base..head, which GitLab compares to decide whether a push changed the diff; null when not computed */
  patchIdSha: string | null;
}

/** a user as GET /users/:id shows it (fields that may be absent are undefined) */
export interface UserDetail extends GitlabUser {
  /** GitLab's `bot` flag (project/group access token users, service accounts, GitLab's own bots) */
  bot?: boolean;
  publicEmail?: string | null;
}

export interface Commit {
  id: string;
  title: string;
  message: string;
  authorName: string;
  /** '' when the answer has none */
  authorEmail: string;
  committerName: string;
  committerEmail: string;
  authoredDate: string;
  committedDate: string;
  createdAt: string;
  parentIds: string[];
}

/** an entry of GET /projects/:id/repository/tree */
export interface TreeEntry {
  /** blob or tree id */
  id: string;
  name: string;
  /** blob | tree | commit (a submodule) */
  type: string;
  /** repo-relative */
  path: string;
  /** 100644, 100755, 120000 (a symlink), 040000, 160000 */
  mode: string;
}

/** a file as GET /projects/:id/repository/files/:file_path shows it at a ref */
export interface RepoFile {
  content: Buffer;
  blobId: string;
  /** the commit the ref resolved to */
  commitId: string;
  /** the last commit at that ref that touched the file: the optimistic lock of an update (createCommit) */
  lastCommitId: string;
  executable: boolean;
}

/** one action of POST /projects/:id/repository/commits (https://docs.gitlab.com/api/commits/#create-a-commit-with-multiple-files-and-actions) */
export interface CommitAction {
  action: 'create' | 'update' | 'delete';
  filePath: string;
  content?: string;
  /** refused (400) when the file changed on the branch since this commit */
  lastCommitId?: string;
}

export interface CreateCommitInput {
  branch: string;
  commitMessage: string;
  actions: CommitAction[];
  authorName?: string;
  authorEmail?: string;
}

export interface Approval {
  user: GitlabUser;
  /** absent on GitLab versions that do not expose it */
  approvedAt?: string;
}

export interface Approvals {
  /** on Free: at least one approval exists; do not rely on it */
  approved: boolean;
  approvedBy: Approval[];
  /** what is malformed in the answer (approved_by not a list, an entry without a user object, id or username) */
  problems: string[];
}

export interface Note {
  id: number;
  body: string;
  author: GitlabUser;
  system: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface GroupMember extends GitlabUser {
  accessLevel: number;
}

export interface Project {
  id: number;
  pathWithNamespace: string;
  webUrl: string;
  defaultBranch: string | null;
}

export interface Deployment {
  id: number;
  iid: number;
  ref: string;
  sha: string;
  /** created | running | success | failed | canceled | blocked */
  status: string;
  environment: string;
}

export interface Pipeline {
  id: number;
  projectId: number;
  sha: string;
  ref: string;
  status: string;
  webUrl: string;
}

/** what a merge request says and who looks at it: the same fields when it is created and when it is edited */
export interface MergeRequestText {
  description?: string;
  labels?: string[];
  assigneeIds?: number[];
  reviewerIds?: number[];
}

export interface CreateMergeRequestInput extends MergeRequestText {
  sourceBranch: string;
  targetBranch: string;
  title: string;
  removeSourceBranch?: boolean;
  squash?: boolean;
}

export interface EditMergeRequestInput extends MergeRequestText {
  title?: string;
  stateEvent?: 'close' | 'reopen';
}

/** MergeRequestText in gitbeaker's option names (labels: one comma-separated string, as the API takes them) */
const mrText = (i: MergeRequestText) => ({ description: i.description, labels: i.labels?.join(','), assigneeIds: i.assigneeIds, reviewerIds: i.reviewerIds });

export interface MergeInput {
  /** head the merge is pinned to (409 when the MR moved) */
  sha?: string;
  /** merge when the pipeline succeeds (sent as both auto_merge (17.11+) and merge_when_pipeline_succeeds) */
  autoMerge?: boolean;
  squash?: boolean;
  removeSourceBranch?: boolean;
}

export interface GitlabClient {
  readonly apiUrl: string;
  /** the configured project */
  readonly project: string | number;
  /** GET /user: the token's user (isAdmin only when GitLab says so; email/commitEmail: the user's own, shown to themselves) */
  currentUser(): Promise<GitlabUser & { bot?: boolean; isAdmin?: boolean; email?: string; commitEmail?: string }>;
  getProject(project: string | number): Promise<Project>;
  listMergeRequests(project: string | number, q: { sourceBranch?: string; targetBranch?: string; state?: 'opened' | 'closed' | 'merged' | 'locked' | 'all' }): Promise<MergeRequest[]>;
  getMergeRequest(project: string | number, iid: number): Promise<MergeRequest>;
  createMergeRequest(project: string | number, input: CreateMergeRequestInput): Promise<MergeRequest>;
  editMergeRequest(project: string | number, iid: number, input: EditMergeRequestInput): Promise<MergeRequest>;
  mergeMergeRequest(project: string | number, iid: number, input: MergeInput): Promise<MergeRequest>;
  mergeRequestCommits(project: string | number, iid: number): Promise<Commit[]>;
  mergeRequestVersions(project: string | number, iid: number): Promise<MergeRequestVersion[]>;
  /** one diff version's diffs (GET …/versions/:version_id), each file's hunks; undefined when GitLab left one out (too large, collapsed) */
  mergeRequestVersionDiffs(project: string | number, iid: number, versionId: number): Promise<Array<{ oldPath: string; newPath: string; diff: string }> | undefined>;
  approvals(project: string | number, iid: number): Promise<Approvals>;
  /** approve as the token's user (tests, demo) */
  approve(project: string | number, iid: number, opts?: { sha?: string }): Promise<Approvals>;
  listNotes(project: string | number, iid: number): Promise<Note[]>;
  createNote(project: string | number, iid: number, body: string): Promise<Note>;
  editNote(project: string | number, iid: number, noteId: number, body: string): Promise<Note>;
  /** merge requests that contain the commit (GET /projects/:id/repository/commits/:sha/merge_requests) */
  commitMergeRequests(project: string | number, sha: string): Promise<MergeRequest[]>;
  /** members of a group, direct and inherited (GET /groups/:id/members/all) */
  groupMembers(group: string | number): Promise<GroupMember[]>;
  /** the user with this username, or undefined */
  findUser(username: string): Promise<GitlabUser | undefined>;
  /** GET /users/:id */
  getUser(id: number): Promise<UserDetail>;
  /** users whose (public; any, for an administrator's token) email is `email`: GET /users?search=<email>, exact matches only */
  usersByEmail(email: string): Promise<GitlabUser[]>;
  /** a file's content at `ref` (GET /projects/:id/repository/files/:path/raw); undefined when the file or ref does not exist */
  fileAtRef(project: string | number, path: string, ref: string): Promise<string | undefined>;
  /** record a deployment of `sha` (on branch `ref`) to an environment */
  createDeployment(project: string | number, i: { environment: string; sha: string; ref: string; tag?: boolean; status: 'running' | 'success' | 'failed' | 'canceled' }): Promise<Deployment>;
  updateDeployment(project: string | number, id: number, status: 'running' | 'success' | 'failed' | 'canceled'): Promise<Deployment>;
  /** one pipeline of the project (GET /projects/:id/pipelines/:pipeline_id) */
  getPipeline(project: string | number, id: number): Promise<Pipeline>;
  /** the commit a branch points at (GET /projects/:id/repository/branches/:branch); undefined when there is no such branch */
  branchHead(project: string | number, branch: string): Promise<string | undefined>;
  /** a file at `ref` with its blob id and last commit (GET /projects/:id/repository/files/:file_path); undefined when missing */
  getFile(project: string | number, path: string, ref: string): Promise<RepoFile | undefined>;
  /** a directory at `ref` (GET /projects/:id/repository/tree, every page); undefined when it is not a directory there */
  listTree(project: string | number, o: { path: string; ref: string; recursive?: boolean }): Promise<TreeEntry[] | undefined>;
  /** commits reachable from `ref` that touched `path`, newest first, at most `max` (GET /projects/:id/repository/commits) */
  listCommits(project: string | number, o: { ref: string; path?: string; max: number }): Promise<Commit[]>;
  /** the merge base of two or more commits (GET /projects/:id/repository/merge_base) */
  mergeBase(project: string | number, refs: string[]): Promise<string>;
  /** one commit of file actions on a branch (POST /projects/:id/repository/commits); never retried */
  createCommit(project: string | number, input: CreateCommitInput): Promise<Commit>;
  close(): void;
}

export interface ClientOptions {
  log?: Logger;
  /** attempts of a retryable request (default 3; GITOPS_RETRY_ATTEMPTS in commands) */
  attempts?: number;
  /** first backoff delay (default 500 ms, doubled each time, at most 8 s) */
  backoffMs?: number;
  /** largest answer read (default 32 MiB, src/core/http.ts) */
  maxBytes?: number;
  /** pages a listing may take before it fails with EGITLAB_TOO_MANY_PAGES: our listings (allPages, 100 a page) default
   * to 20 (GITOPS_GITLAB_MAX_PAGES); a listing gitbeaker follows itself is cut at 100 `next` links by the transport */
  maxPages?: number;
  /** told of every HTTP request made, with the time it took (bump's timing trace, --verbose) */
  onRequest?: (method: string, ms: number) => void;
}

/** pages read by the call in progress (one client method, however many `next` links gitbeaker follows) */
const pageCount = new AsyncLocalStorage<{ pages: number }>();
const DEFAULT_MAX_PAGES = 100;

// ------------------------------------------------------------------------------------------ errors

export class GitlabApiError extends GitopsError {
  /** HTTP status; 0 for network errors */
  readonly status: number;
  /** GitLab's message (masked) */
  readonly serverMessage: string;
  constructor(init: ErrorInit, status: number, serverMessage: string) {
    super(init);
    this.status = status;
    this.serverMessage = serverMessage;
  }
}

export function isGitlabApiError(e: unknown, status?: number): e is GitlabApiError {
  return e instanceof GitlabApiError && (status === undefined || e.status === status);
}

/** GitLab error bodies: {"message": string|array|object} or {"error": string, "error_description"?: string} */
export function parseGitlabError(text: string): string {
  try {
    const j = JSON.parse(text) as { message?: unknown; error?: unknown; error_description?: unknown };
    if (typeof j.error === 'string') return typeof j.error_description === 'string' ? `${j.error}: ${j.error_description}` : j.error;
    if (typeof j.message === 'string') return j.message;
    if (j.message !== undefined) return JSON.stringify(j.message);
    return text.trim().slice(0, 300);
  } catch {
    return text.trim().slice(0, 300);
  }
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|DEPTH_ZERO|UNABLE_TO_GET_ISSUER/;

function httpError(method: string, where: string, status: number, text: string, tokenSource: string): GitlabApiError {
  const message = mask(parseGitlabError(text));
  /** `401 Unauthorized`, not `401 401 Unauthorized` */
  const st = (n: number) => (message.startsWith(String(n)) ? message : `${n} ${message}`);
  const mk = (kind: ErrorInit['kind'], code: ErrorInit['code'], msg: string, hint?: string) => new GitlabApiError({ kind, code, message: mask(msg), where, hint }, status, message);
  if (status === 401) {
    return mk('auth', GitlabErrors.AUTH, `GitLab refused the token (${st(401)})`, `the token in ${tokenSource} is wrong, expired or revoked: create a new access token with scope \`api\` and update ${tokenSource}`);
  }
  if (status === 403) {
    const scope = /insufficient_scope/.test(message);
    return mk('auth', GitlabErrors.AUTH, `GitLab denied ${method} (${st(403)})`, scope
      ? `the token in ${tokenSource} lacks the scope \`api\`: create one with scope api`
      : `the token's user (or bot) lacks the role for this: give it Developer or higher on the project`);
  }
  if (status === 404) return mk('failed', GitlabErrors.NOT_FOUND, `GitLab answered ${st(404)} to ${method}`);
  if (status === 409) return mk('failed', GitlabErrors.CONFLICT, `GitLab answered 409 to ${method} (${message})`);
  if (status >= 500 || status === 429 || status === 408) return mk('transient', GitlabErrors.UNAVAILABLE, `GitLab answered ${status} to ${method} (${message || 'no message'})`, 'a server-side or proxy problem; retry later (exit 75 is retried by the templates)');
  return mk('failed', GitlabErrors.REJECTED, `GitLab rejected ${method} (${st(status)})`);
}

function networkError(e: unknown, method: string, where: string): GitlabApiError {
  if (e instanceof GitlabApiError) return e;
  if (isBoundError(e, 'deadline')) {
    return new GitlabApiError({ kind: 'timeout', code: GitlabErrors.TIMEOUT, message: `GitLab did not finish answering ${method} within ${formatMs(e.limit)}`, where, hint: 'GitLab, or a proxy in between, is stalling the answer (a request gets 30 s in all); check the server and the network, then run the job again' }, 0, e.message);
  }
  if (isBoundError(e, 'too-large')) {
    return new GitlabApiError({ kind: 'failed', code: GitlabErrors.TOO_LARGE, message: `GitLab's answer to ${method} is larger than ${formatBytes(e.limit)}; it was not read`, where, hint: 'no answer we ask for is this large: check that the URL points at GitLab and not at a proxy or another server' }, 0, e.message);
  }
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  const msg = mask(String(err?.message ?? e));
  if (TLS_CODES.test(code) || /certificate/i.test(msg)) {
    return new GitlabApiError({ kind: 'usage', code: GitlabErrors.TLS, message: `TLS verification of the GitLab server failed: ${msg}`, where, hint: "pass the CA that signed GitLab's certificate with --gitlab-ca-file (or GITOPS_GITLAB_CA_FILE); --gitlab-insecure skips verification" }, 0, msg);
  }
  if (code === 'ETIMEDOUT' || err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    return new GitlabApiError({ kind: 'transient', code: GitlabErrors.UNAVAILABLE, message: `GitLab did not answer ${method} in time`, where, hint: 'retry later' }, 0, msg);
  }
  return new GitlabApiError({ kind: 'transient', code: GitlabErrors.UNAVAILABLE, message: `cannot reach GitLab: ${code || msg}`, where, hint: 'check the GitLab URL and that the server is up; this is retryable' }, 0, msg);
}

// ------------------------------------------------------------------------------------------ transport

/** camelCase keys → snake_case, recursively (what gitbeaker's default requester does with xcase) */
function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k.replace(/([a-z\d])([A-Z])/g, '$1_$2').toLowerCase(), snakeKeys(x)]));
  }
  return v;
}

/** query string with bracket arrays (`labels[]=a`), as gitbeaker's qs-based formatQuery */
function formatQuery(params: Record<string, unknown> | string | undefined): string {
  if (!params) return '';
  if (typeof params === 'string') return params;
  const parts: string[] = [];
  const add = (key: string, v: unknown) => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) for (const x of v) add(`${key}[]`, x);
    else if (typeof v === 'object') for (const [k, x] of Object.entries(v as Record<string, unknown>)) add(`${key}[${k}]`, x);
    else parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
  };
  for (const [k, v] of Object.entries(snakeKeys(params) as Record<string, unknown>)) add(k, v);
  return parts.join('&');
}

interface RequesterOptions {
  body?: unknown;
  searchParams?: Record<string, unknown> | string;
  sudo?: string | number;
  signal?: AbortSignal;
  asStream?: boolean;
}

interface ServiceOptions {
  url: string;
  headers: Record<string, string>;
  authHeaders: Record<string, () => Promise<string>>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Transport {
  readonly agent: http.Agent;
  constructor(
    private readonly cfg: GitlabConfig,
    private readonly opts: ClientOptions,
  ) {
    this.agent = cfg.apiUrl.startsWith('https:')
      ? new https.Agent({ ...KEEP_ALIVE, ca: cfg.ca, rejectUnauthorized: !cfg.insecure })
      : new http.Agent({ ...KEEP_ALIVE });
  }

  /**
   * One exchange, bounded (src/core/http.ts): the whole of it (connect, answer, body) within the request's
   * deadline, however slowly the bytes come, and a body of at most maxBytes.
   */
  private once(method: string, u: URL, headers: Record<string, string>, body: string | undefined, signal?: AbortSignal): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    const where = redactUrl(`${u.origin}${u.pathname}`);
    const timeoutMs = this.cfg.requestTimeoutMs ?? 30_000;
    const maxBytes = this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
    return new Promise((resolve, reject) => {
      const lib = u.protocol === 'https:' ? https : http;
      const req = lib.request(u, { method, headers, agent: this.agent, signal }, (res) => {
        const status = res.statusCode ?? 0;
        const read = status >= 200 && status < 300 ? readBody(res, maxBytes, { what: `GitLab's answer to ${method} ${where}` }) : readBody(res, ERROR_BODY_BYTES, { truncate: true });
        read.then(
          (b) => {
            deadline.clear();
            resolve({ status, headers: res.headers, text: b.toString('utf8') });
          },
          (e) => {
            deadline.clear();
            reject(deadline.expired ? deadline.error : e);
          },
        );
      });
      const deadline = watchDeadline(req, timeoutMs, `GitLab's answer to ${method} ${where}`);
      req.on('error', (e) => {
        deadline.clear();
        reject(deadline.expired ? deadline.error : e);
      });
      req.end(body);
    });
  }

  async request(method: string, service: ServiceOptions, endpoint: string, o: RequesterOptions): Promise<{ body: unknown; headers: Record<string, string>; status: number }> {
    const base = service.url.endsWith('/') ? service.url : `${service.url}/`;
    const u = new URL(endpoint, base);
    u.search = formatQuery(o.searchParams);
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'gitops-ci', ...service.headers };
    if (o.sudo) headers.Sudo = String(o.sudo);
    const auth = Object.entries(service.authHeaders)[0];
    if (auth) headers[auth[0]] = await auth[1]();
    let body: string | undefined;
    if (o.body !== undefined && o.body !== null && !(typeof o.body === 'object' && Object.keys(o.body as object).length === 0 && method === 'DELETE')) {
      body = JSON.stringify(snakeKeys(o.body));
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const where = redactUrl(`${u.origin}${u.pathname}`);
    const label = `${method} ${decodeURIComponent(u.pathname.replace(new URL(base).pathname, '/'))}`;
    const attempts = Math.max(1, this.opts.attempts ?? 3);
    const idempotent = method === 'GET' || method === 'HEAD';
    for (let attempt = 1; ; attempt++) {
      this.opts.log?.debug(`gitlab: ${method} ${redactUrl(u.toString())}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      let r: { status: number; headers: http.IncomingHttpHeaders; text: string } | undefined;
      let err: GitlabApiError | undefined;
      try {
        const t0 = performance.now();
        try {
          r = await this.once(method, u, headers, body, o.signal);
        } finally {
          this.opts.onRequest?.(method, performance.now() - t0);
        }
      } catch (e) {
        err = networkError(e, label, where);
      }
      // retry only what cannot have been applied twice: reads; 429 (rejected before processing); refused connections
      const retryable = err
        ? err.kind === 'transient' && (idempotent || /ECONNREFUSED/.test(err.serverMessage + err.message))
        : r!.status === 429 || (idempotent && (r!.status >= 500 || r!.status === 408));
      if (retryable && attempt < attempts) {
        const ra = Number(r?.headers['retry-after']);
        const delay = Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, 10_000) : Math.min((this.opts.backoffMs ?? 500) * 2 ** (attempt - 1), 8_000);
        this.opts.log?.debug(`gitlab: ${label}: ${err ? err.message : r!.status}; retrying in ${delay} ms`);
        await sleep(delay);
        continue;
      }
      if (err) throw err;
      const res = r!;
      if (res.status < 200 || res.status >= 300) throw httpError(label, where, res.status, res.text, this.cfg.tokenSource);
      const ctype = String(res.headers['content-type'] ?? '');
      let parsed: unknown = null;
      if (res.status !== 204 && res.text) {
        if (ctype.includes('json')) {
          try {
            parsed = JSON.parse(res.text);
          } catch {
            throw new GitlabApiError({ kind: 'transient', code: GitlabErrors.UNAVAILABLE, message: `GitLab answered ${label} with a body that is not JSON (a proxy page?)`, where }, res.status, '');
          }
        } else parsed = res.text;
      }
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
      // gitbeaker follows `Link: rel="next"` until there is none (or its maxPages, which some listings do not
      // pass): a server that always announces one would hold the job for ever. Every listing is bounded here.
      const count = pageCount.getStore();
      if (count && method === 'GET' && /rel="?next"?/.test(flat.link ?? '')) {
        count.pages++;
        const maxPages = this.opts.maxPages ?? DEFAULT_MAX_PAGES;
        if (count.pages >= maxPages) {
          throw new GitlabApiError({ kind: 'failed', code: GitlabErrors.TOO_MANY_PAGES, message: `GitLab announced a next page after ${count.pages} pages of ${label}; stopped at the bound of ${maxPages}`, where, hint: 'no listing we read is this long: a proxy or a misbehaving server is answering; check the GitLab URL' }, res.status, '');
        }
      }
      return { body: parsed, headers: flat, status: res.status };
    }
  }

  requesterFn() {
    return (service: ServiceOptions) => {
      const m = (method: string) => (endpoint: string, o: RequesterOptions = {}) => this.request(method, service, endpoint, o);
      return { get: m('GET'), post: m('POST'), put: m('PUT'), patch: m('PATCH'), delete: m('DELETE') };
    };
  }
}

// ------------------------------------------------------------------------------------------ mapping

type J = Record<string, any>;
const s = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : String(v));
const sn = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function toUser(u: J | null | undefined): GitlabUser {
  return { id: Number(u?.id ?? 0), username: s(u?.username), name: s(u?.name), state: s(u?.state) };
}

function toMr(j: J): MergeRequest {
  return {
    id: Number(j.id),
    iid: Number(j.iid),
    projectId: Number(j.project_id),
    title: s(j.title),
    description: s(j.description),
    state: s(j.state),
    sourceBranch: s(j.source_branch),
    targetBranch: s(j.target_branch),
    sha: s(j.sha),
    mergeCommitSha: sn(j.merge_commit_sha),
    squashCommitSha: sn(j.squash_commit_sha),
    detailedMergeStatus: s(j.detailed_merge_status),
    hasConflicts: !!j.has_conflicts,
    draft: !!(j.draft ?? j.work_in_progress),
    labels: Array.isArray(j.labels) ? j.labels.map((l: unknown) => (typeof l === 'string' ? l : s((l as J)?.name))) : [],
    author: toUser(j.author),
    assignees: Array.isArray(j.assignees) ? j.assignees.map(toUser) : [],
    reviewers: Array.isArray(j.reviewers) ? j.reviewers.map(toUser) : [],
    webUrl: s(j.web_url),
    createdAt: s(j.created_at),
    updatedAt: s(j.updated_at),
    mergedAt: sn(j.merged_at),
    closedAt: sn(j.closed_at),
    mergeWhenPipelineSucceeds: !!j.merge_when_pipeline_succeeds,
    mergeError: sn(j.merge_error),
  };
}

function toCommit(c: J): Commit {
  return { id: s(c?.id), title: s(c?.title), message: s(c?.message), authorName: s(c?.author_name), authorEmail: s(c?.author_email), committerName: s(c?.committer_name), committerEmail: s(c?.committer_email), authoredDate: s(c?.authored_date), committedDate: s(c?.committed_date), createdAt: s(c?.created_at), parentIds: Array.isArray(c?.parent_ids) ? c.parent_ids.map(s) : [] };
}

function toNote(j: J): Note {
  return { id: Number(j.id), body: s(j.body), author: toUser(j.author), system: !!j.system, createdAt: s(j.created_at), updatedAt: s(j.updated_at) };
}

function toDeployment(j: J): Deployment {
  return { id: Number(j.id), iid: Number(j.iid), ref: s(j.ref), sha: s(j.sha), status: s(j.status), environment: s(j.environment?.name) };
}

/** a user object with a positive integer id and a non-empty username, or why not */
export function userProblem(u: unknown): string | undefined {
  if (!u || typeof u !== 'object' || Array.isArray(u)) return `not a user object (${u === null ? 'null' : Array.isArray(u) ? 'a list' : typeof u})`;
  const o = u as J;
  if (!Number.isInteger(o.id) || o.id <= 0) return 'a user without an id';
  if (typeof o.username !== 'string' || !o.username.trim()) return 'a user without a username';
  return undefined;
}

function toApprovals(j: J): Approvals {
  const problems: string[] = [];
  if (!j || typeof j !== 'object') problems.push('the answer is not an object');
  else if (!Array.isArray(j.approved_by)) problems.push(`approved_by is ${j.approved_by === undefined ? 'missing' : 'not a list'}`);
  const list: unknown[] = Array.isArray(j?.approved_by) ? j.approved_by : [];
  const approvedBy: Approval[] = [];
  list.forEach((a, i) => {
    const p = a && typeof a === 'object' ? userProblem((a as J).user) : 'not an object';
    if (p) problems.push(`approved_by[${i}]: ${p}`);
    else approvedBy.push({ user: toUser((a as J).user), approvedAt: typeof (a as J).approved_at === 'string' ? (a as J).approved_at : undefined });
  });
  return { approved: !!j?.approved, approvedBy, problems };
}

const label = (project: string | number) => (typeof project === 'number' ? `project ${project}` : `project ${project}`);

// ------------------------------------------------------------------------------------------ client

export function gitlabClient(cfg: GitlabConfig, opts: ClientOptions = {}): GitlabClient {
  const transport = new Transport(cfg, opts);
  if (cfg.insecure) opts.log?.warn('TLS certificate verification of GitLab is off (--gitlab-insecure)');
  // gitbeaker: our requesterFn overrides the preset one; camelize off, we map ourselves
  // gitbeaker is loaded by the first call that needs it: the user, project and pipeline reads and the repository
  // endpoints (bump --via api, the stale guard) are plain GETs and POSTs through the transport, so a bump through
  // the API does not load (decompress, compile, initialise) gitbeaker's chunk at all
  let gb: any;
  const gitbeaker = async (): Promise<any> => (gb ??= new (await import('@gitbeaker/rest')).Gitlab({ host: serverRoot(cfg.apiUrl), token: cfg.token, requesterFn: transport.requesterFn() as any, queryTimeout: null as any }));

  /** runs a call; a 404 names the object */
  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await pageCount.run({ pages: 0 }, fn);
    } catch (e) {
      if (e instanceof GitlabApiError) {
        if (e.status === 404) {
          throw new GitlabApiError({ kind: 'failed', code: GitlabErrors.NOT_FOUND, message: mask(`${what} not found (${e.serverMessage.startsWith('404') ? e.serverMessage : `404 ${e.serverMessage}`})`), where: e.where, hint: 'check --project and the IID/SHA/name, and that the token\'s user can see the project' }, 404, e.serverMessage);
        }
        if (e.status > 0 && !e.message.includes(what)) {
          throw new GitlabApiError({ kind: e.kind, code: e.code, message: mask(`${what}: ${e.message}`), where: e.where, hint: e.hint }, e.status, e.serverMessage);
        }
        throw e;
      }
      if (e instanceof GitopsError) throw e;
      // anything else from gitbeaker (it should not happen with our transport): never pass its object on
      throw fail.transient(GitlabErrors.UNAVAILABLE, mask(`${what}: ${(e as Error)?.message ?? String(e)}`), { where: cfg.apiUrl });
    }
  }

  const mrLabel = (project: string | number, iid: number) => `merge request !${iid} of ${label(project)}`;

  // our own bounded listing (gitbeaker's maxPages stops silently; its allDiffVersions follows pages without end)
  const service = { url: cfg.apiUrl, headers: {}, authHeaders: { 'PRIVATE-TOKEN': async () => cfg.token } };
  const maxPages = Math.max(1, opts.maxPages ?? 20);
  const enc = (p: string | number) => encodeURIComponent(String(p));
  /**
   * Every page of a GitLab listing, 100 a page, at most `maxPages` pages: a listing with more fails
   * (EGITLAB_TOO_MANY_PAGES) instead of being cut short or followed forever. The next page is taken from
   * x-next-page (or the `page` of the Link rel="next" URL); the URL itself is never followed, so a Link to
   * another host gets no token. A next page that is not after the current one is a malformed answer.
   */
  async function allPages(what: string, endpoint: string, query: Record<string, unknown> = {}, limit = Infinity): Promise<J[]> {
    const out: J[] = [];
    for (let page = 1; ; ) {
      const r = await transport.request('GET', service, endpoint, { searchParams: { ...query, perPage: Math.min(100, limit), page } });
      if (!Array.isArray(r.body)) throw fail.failed(GitlabErrors.BAD_ANSWER, `${what}: GitLab's answer (page ${page}) is not a list`, { where: redactUrl(`${cfg.apiUrl}/${endpoint}`), hint: 'a proxy or an incompatible GitLab answered; nothing was decided on it' });
      out.push(...(r.body as J[]));
      // enough read (a bounded walk of history): the rest is not asked for
      if (out.length >= limit) return out.slice(0, limit);
      let next = /^\d+$/.test(r.headers['x-next-page'] ?? '') ? Number(r.headers['x-next-page']) : undefined;
      if (next === undefined) {
        const m = /<([^>]*)>\s*;\s*rel="next"/.exec(r.headers.link ?? '');
        if (m) next = Number(/[?&]page=(\d+)/.exec(m[1])?.[1] ?? NaN);
      }
      if (next === undefined) return out;
      if (!Number.isInteger(next) || next <= page) throw fail.failed(GitlabErrors.BAD_ANSWER, `${what}: GitLab's next page (${String(next)}) does not follow page ${page}`, { where: redactUrl(`${cfg.apiUrl}/${endpoint}`) });
      if (page >= maxPages) {
        throw fail.failed(GitlabErrors.TOO_MANY_PAGES, `${what}: more than ${maxPages} pages of ${100} (GitLab announces page ${next}); stopped reading`, {
          where: redactUrl(`${cfg.apiUrl}/${endpoint}`),
          hint: 'nothing was decided on a partial list; raise GITOPS_GITLAB_MAX_PAGES if this listing is really that long',
        });
      }
      page = next;
    }
  }

  return {
    apiUrl: cfg.apiUrl,
    project: cfg.project,
    close: () => transport.agent.destroy(),
    currentUser: () =>
      call('the token\'s user', async () => {
        const j = (await transport.request('GET', service, 'user', {})).body as J;
        return { ...toUser(j), bot: typeof j?.bot === 'boolean' ? j.bot : undefined, isAdmin: j?.is_admin === true, email: typeof j?.email === 'string' ? j.email : undefined, commitEmail: typeof j?.commit_email === 'string' ? j.commit_email : undefined };
      }),
    getProject: (project) =>
      call(label(project), async () => {
        const j = (await transport.request('GET', service, `projects/${enc(project)}`, {})).body as J;
        return { id: Number(j.id), pathWithNamespace: s(j.path_with_namespace), webUrl: s(j.web_url), defaultBranch: sn(j.default_branch) };
      }),
    listMergeRequests: (project, q) =>
      call(`merge requests of ${label(project)}`, async () => {
        const list = await allPages(`merge requests of ${label(project)}`, `projects/${enc(project)}/merge_requests`, { sourceBranch: q.sourceBranch, targetBranch: q.targetBranch, state: q.state });
        return list.map(toMr);
      }),
    getMergeRequest: (project, iid) => call(mrLabel(project, iid), async () => toMr(await (await gitbeaker()).MergeRequests.show(project, iid))),
    createMergeRequest: (project, i) =>
      call(`creating a merge request ${i.sourceBranch} → ${i.targetBranch} in ${label(project)}`, async () =>
        toMr(
          await (await gitbeaker()).MergeRequests.create(project, i.sourceBranch, i.targetBranch, i.title, {
            ...mrText(i),
            removeSourceBranch: i.removeSourceBranch,
            squash: i.squash,
          }),
        ),
      ),
    editMergeRequest: (project, iid, i) =>
      call(mrLabel(project, iid), async () =>
        toMr(
          await (await gitbeaker()).MergeRequests.edit(project, iid, {
            title: i.title,
            ...mrText(i),
            stateEvent: i.stateEvent,
          }),
        ),
      ),
    mergeMergeRequest: (project, iid, i) =>
      call(mrLabel(project, iid), async () =>
        toMr(
          await (await gitbeaker()).MergeRequests.merge(project, iid, {
            sha: i.sha,
            squash: i.squash,
            shouldRemoveSourceBranch: i.removeSourceBranch,
            ...(i.autoMerge ? { autoMerge: true, mergeWhenPipelineSucceeds: true } : {}),
          }),
        ),
      ),
    mergeRequestCommits: (project, iid) =>
      call(`the commits of ${mrLabel(project, iid)}`, async () => {
        const list = await allPages(`the commits of ${mrLabel(project, iid)}`, `projects/${enc(project)}/merge_requests/${iid}/commits`);
        return list.map(toCommit);
      }),
    mergeRequestVersions: (project, iid) =>
      call(`the diff versions of ${mrLabel(project, iid)}`, async () => {
        const list = await allPages(`the diff versions of ${mrLabel(project, iid)}`, `projects/${enc(project)}/merge_requests/${iid}/versions`);
        return list.map((v) => ({ id: Number(v?.id), headCommitSha: s(v?.head_commit_sha), baseCommitSha: s(v?.base_commit_sha), startCommitSha: s(v?.start_commit_sha), createdAt: s(v?.created_at), state: s(v?.state), patchIdSha: sn(v?.patch_id_sha) }));
      }),
    mergeRequestVersionDiffs: (project, iid, versionId) =>
      call(`diff version ${versionId} of ${mrLabel(project, iid)}`, async () => {
        const j = (await transport.request('GET', service, `projects/${enc(project)}/merge_requests/${iid}/versions/${Number(versionId)}`, {})).body as J;
        if (!Array.isArray(j?.diffs)) return undefined;
        const out: Array<{ oldPath: string; newPath: string; diff: string }> = [];
        for (const d of j.diffs as J[]) {
          if (!d || typeof d.diff !== 'string' || d.too_large === true || d.collapsed === true) return undefined;
          out.push({ oldPath: s(d.old_path), newPath: s(d.new_path), diff: d.diff });
        }
        return out;
      }),
    approvals: (project, iid) => call(`the approvals of ${mrLabel(project, iid)}`, async () => toApprovals(await (await gitbeaker()).MergeRequestApprovals.showConfiguration(project, { mergerequestIId: iid }))),
    approve: (project, iid, o = {}) => call(`approving ${mrLabel(project, iid)}`, async () => toApprovals(await (await gitbeaker()).MergeRequestApprovals.approve(project, iid, { sha: o.sha }))),
    listNotes: (project, iid) =>
      call(`the notes of ${mrLabel(project, iid)}`, async () => {
        const list = await allPages(`the notes of ${mrLabel(project, iid)}`, `projects/${enc(project)}/merge_requests/${iid}/notes`, { sort: 'asc', orderBy: 'created_at' });
        return list.map(toNote);
      }),
    createNote: (project, iid, body) => call(`a note on ${mrLabel(project, iid)}`, async () => toNote(await (await gitbeaker()).MergeRequestNotes.create(project, iid, body))),
    editNote: (project, iid, noteId, body) => call(`note ${noteId} of ${mrLabel(project, iid)}`, async () => toNote(await (await gitbeaker()).MergeRequestNotes.edit(project, iid, noteId, { body }))),
    commitMergeRequests: (project, sha) =>
      call(`commit ${sha.slice(0, 12)} of ${label(project)}`, async () => {
        const list = await allPages(`the merge requests of commit ${sha.slice(0, 12)}`, `projects/${enc(project)}/repository/commits/${enc(sha)}/merge_requests`);
        return list.map(toMr);
      }),
    groupMembers: (group) =>
      call(`group ${group}`, async () => {
        const list = await allPages(`the members of group ${group}`, `groups/${enc(group)}/members/all`);
        return list.map((m) => ({ ...toUser(m), accessLevel: Number(m.access_level ?? 0) }));
      }),
    createDeployment: (project, d) =>
      call(`a deployment to ${d.environment} in ${label(project)}`, async () => toDeployment(await (await gitbeaker()).Deployments.create(project, d.environment, d.sha, d.ref, !!d.tag, { status: d.status }))),
    getPipeline: (project, id) =>
      call(`pipeline ${id} of ${label(project)}`, async () => {
        const j = (await transport.request('GET', service, `projects/${enc(project)}/pipelines/${Number(id)}`, {})).body as J;
        return { id: Number(j.id), projectId: Number(j.project_id), sha: s(j.sha), ref: s(j.ref), status: s(j.status), webUrl: s(j.web_url) };
      }),
    updateDeployment: (project, id, status) => call(`deployment ${id} of ${label(project)}`, async () => toDeployment(await (await gitbeaker()).Deployments.edit(project, id, status))),
    findUser: (username) =>
      call(`user ${username}`, async () => {
        const list = (await (await gitbeaker()).Users.all({ username })) as J[];
        const u = list.find((x) => s(x.username).toLowerCase() === username.toLowerCase());
        return u ? toUser(u) : undefined;
      }),
    getUser: (id) =>
      call(`user ${id}`, async () => {
        const r = await transport.request('GET', service, `users/${id}`, {});
        const j = r.body as J;
        const p = userProblem(j);
        if (p || j.id !== id) throw fail.failed(GitlabErrors.BAD_ANSWER, `user ${id}: GitLab's answer is ${p ?? `user ${String(j.id)}`}`, { where: redactUrl(`${cfg.apiUrl}/users/${id}`) });
        return { ...toUser(j), bot: typeof j.bot === 'boolean' ? j.bot : undefined, publicEmail: typeof j.public_email === 'string' ? j.public_email : j.public_email === null ? null : undefined };
      }),
    usersByEmail: (email) =>
      call('a user search', async () => {
        // GitLab's search matches usernames, names and public emails (every email for an administrator), and lists
        // UserBasic (with `email` for an administrator): keep only users whose email is exactly this one
        const list = (await allPages('users by email', 'users', { search: email })).filter((u) => !userProblem(u));
        const want = email.toLowerCase();
        const out: GitlabUser[] = [];
        // an answer that carries emails (an administrator's) is matched whole, at no cost: a cut before matching
        // missed an exact match past the first 20 hits. Only the look at each other hit's public email is bounded
        let looked = 0;
        for (const u of list) {
          if (typeof u.email === 'string') {
            if (u.email.toLowerCase() === want) out.push(toUser(u));
            continue;
          }
          if (++looked > 20) continue;
          const r = (await transport.request('GET', service, `users/${Number(u.id)}`, {})).body as J;
          if (typeof r?.public_email === 'string' && r.public_email.toLowerCase() === want) out.push(toUser(u));
        }
        return out;
      }),
    branchHead: (project, branch) =>
      call(`branch ${branch} of ${label(project)}`, async () => {
        try {
          const r = await transport.request('GET', service, `projects/${enc(project)}/repository/branches/${enc(branch)}`, {});
          const id = s((r.body as J)?.commit?.id);
          if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(id)) throw fail.failed(GitlabErrors.BAD_ANSWER, `branch ${branch} of ${label(project)}: GitLab's answer names no commit`, { where: redactUrl(`${cfg.apiUrl}/projects/${enc(project)}/repository/branches`) });
          return id;
        } catch (e) {
          if (isGitlabApiError(e, 404) && /Branch Not Found/i.test(e.serverMessage)) return undefined;
          throw e;
        }
      }),
    getFile: (project, path, ref) =>
      call(`${path} at ${ref.slice(0, 12)} of ${label(project)}`, async () => {
        try {
          const r = await transport.request('GET', service, `projects/${enc(project)}/repository/files/${enc(path)}`, { searchParams: { ref } });
          const j = r.body as J;
          if (j?.encoding !== 'base64' || typeof j?.content !== 'string' || typeof j?.last_commit_id !== 'string') throw fail.failed(GitlabErrors.BAD_ANSWER, `${path}: GitLab's answer is not a file (content base64, last_commit_id)`, { where: redactUrl(`${cfg.apiUrl}/projects/${enc(project)}/repository/files`) });
          return { content: Buffer.from(j.content, 'base64'), blobId: s(j.blob_id), commitId: s(j.commit_id), lastCommitId: s(j.last_commit_id), executable: j.execute_filemode === true };
        } catch (e) {
          if (isGitlabApiError(e, 404)) return undefined;
          throw e;
        }
      }),
    listTree: (project, o) =>
      call(`the tree ${o.path || '/'} at ${o.ref.slice(0, 12)} of ${label(project)}`, async () => {
        try {
          const list = await allPages(`the tree ${o.path || '/'}`, `projects/${enc(project)}/repository/tree`, { path: o.path || undefined, ref: o.ref, recursive: o.recursive ? true : undefined });
          return list.map((e) => ({ id: s(e?.id), name: s(e?.name), type: s(e?.type), path: s(e?.path), mode: s(e?.mode) }));
        } catch (e) {
          if (isGitlabApiError(e, 404)) return undefined;
          throw e;
        }
      }),
    listCommits: (project, o) =>
      call(`the commits of ${o.path ?? o.ref} in ${label(project)}`, async () => (await allPages(`the commits of ${o.path ?? o.ref}`, `projects/${enc(project)}/repository/commits`, { refName: o.ref, path: o.path }, Math.max(1, o.max))).map(toCommit)),
    mergeBase: (project, refs) =>
      call(`the merge base of ${refs.map((r) => r.slice(0, 12)).join(', ')} in ${label(project)}`, async () => {
        const r = await transport.request('GET', service, `projects/${enc(project)}/repository/merge_base`, { searchParams: { refs } });
        return s((r.body as J)?.id);
      }),
    createCommit: (project, i) =>
      call(`a commit on ${i.branch} of ${label(project)}`, async () => {
        const r = await transport.request('POST', service, `projects/${enc(project)}/repository/commits`, {
          body: { branch: i.branch, commitMessage: i.commitMessage, authorName: i.authorName, authorEmail: i.authorEmail, actions: i.actions.map((a) => ({ action: a.action, filePath: a.filePath, content: a.content, encoding: a.content === undefined ? undefined : 'text', lastCommitId: a.lastCommitId })) },
        });
        return toCommit(r.body as J);
      }),
    fileAtRef: (project, path, ref) =>
      call(`${path} at ${ref} of ${label(project)}`, async () => {
        try {
          const r = await transport.request('GET', service, `projects/${enc(project)}/repository/files/${enc(path)}/raw`, { searchParams: { ref } });
          return typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
        } catch (e) {
          if (isGitlabApiError(e, 404)) return undefined;
          throw e;
        }
      }),
  };
}
