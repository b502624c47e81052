/**
 * A GitLab double for tests and `make demo`: a real HTTP server on 127.0.0.1:<random> that answers the REST
 * endpoints gitops-ci uses (merge requests, approvals, notes, commit → MR lookup, group members, users,
 * projects) with GitLab's field names, status codes and error bodies, in front of the REAL git server of the
 * harness (test/helpers/services.ts startGitServer): MR branches are branches of the bare repo, a merge is a
 * real merge commit on the target branch (git merge-tree + commit-tree + update-ref), `sha` is a real commit.
 *
 *   const gl = await startGitlabDouble({ git, projects: [{ path: 'group/config', repo: 'group/config.git' }],
 *                                        users: [{ username: 'alice' }, { username: 'bob' }], groups: [{ path: 'release', members: ['bob'] }] });
 *   gl.apiUrl, gl.token (the bot's), gl.tokenOf('alice'), gl.hooks.approve('group/config', 1, 'alice', { at }), gl.stop()
 *
 * The facts it encodes are in test/contracts/gitlab-api.json (with their sources); test/gitlab/contract.ts
 * checks every response a test relies on against it (pass `onResponse`).
 *
 * Auth: `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>`. Unknown token → 401
 * {"message":"401 Unauthorized"}; revoked → 401 {"error":"invalid_token",…}; a token without scope `api`
 * (read_api for a write, read_repository for anything) → 403 {"error":"insufficient_scope",…}; a user whose
 * role is below Developer → 403 {"message":"403 Forbidden"} on writes; `JOB-TOKEN` → 401 except on the routes
 * GitLab allows it (GET merge requests, GET notes, deployments).
 *
 * Time: a monotonic clock (`now` option, default the real time, never twice the same millisecond). Each push
 * seen on an MR's source branch (by the `push` hook, or noticed on the next request that touches the MR)
 * records a diff version with that time, as GitLab does.
 */
import http from 'node:http';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { GitServer } from '../../helpers/services.js';
import { formatTree, gitAsync, ObjectReader, objectFormat, parseCommit, parseTree, writeObject, type TreeEntry } from './objects.js';

// ------------------------------------------------------------------------------------------ options

export interface DoubleProject {
  /** path with namespace, e.g. group/config */
  path: string;
  /** repo name in the git server, e.g. group/config.git */
  repo: string;
  id?: number;
  /** the project's merge request settings (merge method, squash, merge checks); see MergeSettings */
  merge?: Partial<MergeSettings>;
}

/**
 * A project's merge settings (Settings → Merge requests), as the projects API names them
 * (https://docs.gitlab.com/api/projects/): `merge_method` merge | rebase_merge | ff, `squash_option`,
 * `only_allow_merge_if_pipeline_succeeds` ("Pipelines must succeed"), `allow_merge_on_skipped_pipeline`
 * ("Skipped pipelines are considered successful"). Defaults are GitLab's for a new project, except that
 * "Pipelines must succeed" is on, as the README tells users to set it.
 */
export interface MergeSettings {
  mergeMethod: 'merge' | 'rebase_merge' | 'ff';
  squashOption: 'never' | 'always' | 'default_on' | 'default_off';
  onlyAllowMergeIfPipelineSucceeds: boolean;
  allowMergeOnSkippedPipeline: boolean;
}

export interface DoubleUser {
  username: string;
  name?: string;
  /** default: generated */
  token?: string;
  /** token scopes (default ['api']) */
  scopes?: string[];
  /** project role: 10 guest, 20 reporter, 30 developer, 40 maintainer (default), 50 owner */
  accessLevel?: number;
  bot?: boolean;
  /** the profile's public email (default `<username>@example.com`; null: kept private) */
  publicEmail?: string | null;
  /** an instance administrator (GET /user is_admin; the user search matches every email) */
  admin?: boolean;
}

export interface DoubleGroup {
  /** full path, e.g. release-managers or org/release */
  path: string;
  /** usernames (direct members) */
  members: string[];
  /** parent group path: its members are inherited */
  parent?: string;
}

export interface RecordedGitlabResponse {
  method: string;
  /** the route template, e.g. `GET /projects/:id/merge_requests/:iid`; undefined for an unknown route */
  route?: string;
  path: string;
  status: number;
  body: unknown;
  /** the response was injected by a fault hook */
  injected?: boolean;
  /** the response was rewritten by a tamper hook (a hostile answer) */
  tampered?: boolean;
}

/** a hostile rewrite of one route's answers (`GET /projects/:id/merge_requests/:iid/approvals`) */
export interface Tamper {
  route: string;
  /** gets the real answer, returns what to send instead */
  rewrite: (r: { status: number; body: any; headers: Record<string, string>; query: URLSearchParams }) => { status: number; body: unknown; headers?: Record<string, string> };
  /** default: every matching request until cleared */
  times?: number;
}

export interface GitlabDoubleOptions {
  git: GitServer;
  projects: DoubleProject[];
  /** the first user is the CI bot whose token is `token` (default one bot user `gitops-bot`) */
  users?: DoubleUser[];
  groups?: DoubleGroup[];
  now?: () => Date;
  onResponse?: (r: RecordedGitlabResponse) => void;
  tls?: { key: string; cert: string };
}

export interface Fault {
  method?: string;
  /** route template (`PUT /projects/:id/merge_requests/:iid/merge`) or a RegExp on the path */
  route?: string | RegExp;
  status: number;
  body?: unknown;
  times?: number;
}

export interface GitlabDoubleHooks {
  /** the next create of an MR: the double creates it first (another runner was faster) and answers 409 */
  raceNextCreate(): void;
  /** the next matching requests answer `status` (5xx, 429, …) */
  failNext(f: Fault): void;
  /** the next GETs of the MR report these detailed_merge_status values, in order, then the computed one */
  mergeStatusSequence(project: string, iid: number, statuses: string[]): void;
  /** the next `times` merges of the MR answer `status` (405 just after "mergeable") */
  failNextMerge(project: string, iid: number, f: { status: number; times?: number; message?: string }): void;
  /** record an approval by `username`, at `at` (default now) */
  approve(project: string, iid: number, username: string, opts?: { at?: Date | string }): void;
  /** a real commit on `branch` (created from `from`, default the default branch, when missing); returns its sha.
   *  `author` names the commit's author and committer (`<author>@example.com` unless `email`); `pusher` is the user
   *  GitLab records as having pushed it (the "added N commits" system note; default the MR's author);
   *  `onto` rebases: the new commit's parent is that branch's head (same change, new base) */
  push(project: string, branch: string, opts: { files: Record<string, string | null>; message?: string; at?: Date | string; from?: string; author?: string; email?: string; pusher?: string; onto?: string }): string;
  /** rewrite the answers of a route (hostile GitLab); returns a function that removes the rewrite */
  tamper(t: Tamper): () => void;
  /** the pipeline of the MR's head: running, success (merges an MR set to auto-merge), failed, skipped */
  setPipeline(project: string, iid: number, status: 'running' | 'success' | 'failed' | 'skipped' | null): void;
  /** change the project's merge settings (merge method, squash option, merge checks) */
  mergeSettings(project: string, s: Partial<MergeSettings>): void;
  /** close (or reopen) the MR as a human would */
  setState(project: string, iid: number, event: 'close' | 'reopen'): void;
  /** the MR as the API shows it */
  mergeRequest(project: string, iid: number): Record<string, unknown>;
  /** all MRs of the project as the API shows them */
  mergeRequests(project: string): Array<Record<string, unknown>>;
  /** the MR's notes as the API shows them (oldest first) */
  notes(project: string, iid: number): Array<Record<string, unknown>>;
  /** current sha of a branch (undefined when missing) */
  branchSha(project: string, branch: string): string | undefined;
  /** revoke a token (401 invalid_token) */
  revoke(token: string): void;
  /** the project's deployments as the API shows them */
  deployments(project: string): Array<Record<string, unknown>>;
  /** run `fn` inside the next POST commits of the project, after its tree is written and before the branch is
   *  updated (another writer that lands in between: the update must then refuse) */
  interleaveNextCommit(project: string, fn: () => void): void;
  /** the next matching request hangs for `ms` and its connection is then dropped, unanswered and not applied (a
   *  stalled GitLab or proxy: the client's deadline is what ends it) */
  stallNext(f: { method?: string; route: string; ms: number }): void;
  /** a project added after start (a repo the test made since), in front of the same git server */
  addProject(p: DoubleProject): void;
  /** record a pipeline of the project that ran `sha` on `ref` (default: the default branch); returns its id */
  addPipeline(project: string, o: { sha: string; ref?: string; status?: string }): number;
}

export interface GitlabDouble {
  /** server root, e.g. http://127.0.0.1:PORT */
  url: string;
  /** url + /api/v4 */
  apiUrl: string;
  /** the bot's token (first user) */
  token: string;
  tokenOf(username: string): string;
  /** a CI job token (accepted only where GitLab accepts one) */
  jobToken: string;
  /** a token with scope read_api only, of the bot */
  readApiToken: string;
  hooks: GitlabDoubleHooks;
  /** the routes it answers, e.g. `GET /projects/:id/merge_requests` */
  routes: string[];
  /** every request: method, path, status, user */
  /** every request answered, with the double's own time for it (`ms`: from its arrival to the answer, in this process) */
  readonly requests: Array<{ method: string; path: string; status: number; user?: string; ms?: number }>;
  stop(): Promise<void>;
}

// ------------------------------------------------------------------------------------------ state

interface User {
  id: number;
  username: string;
  name: string;
  accessLevel: number;
  bot: boolean;
  publicEmail: string | null;
  admin: boolean;
}
interface Token {
  value: string;
  userId: number;
  scopes: string[];
  revoked?: boolean;
}
interface Version {
  id: number;
  head: string;
  base: string;
  start: string;
  createdAt: string;
  commits: string[];
}
interface Note {
  id: number;
  body: string;
  authorId: number;
  system: boolean;
  createdAt: string;
  updatedAt: string;
}
interface Mr {
  id: number;
  iid: number;
  projectId: number;
  title: string;
  description: string;
  state: 'opened' | 'closed' | 'merged' | 'locked';
  source: string;
  target: string;
  authorId: number;
  assigneeIds: number[];
  reviewerIds: number[];
  labels: string[];
  createdAt: string;
  updatedAt: string;
  mergedAt: string | null;
  closedAt: string | null;
  mergeUserId: number | null;
  closedById: number | null;
  sha: string;
  mergeCommitSha: string | null;
  squashCommitSha: string | null;
  squash: boolean;
  removeSource: boolean;
  mws: boolean;
  pipeline: 'running' | 'success' | 'failed' | 'skipped' | null;
  versions: Version[];
  approvals: Array<{ userId: number; at: string }>;
  notes: Note[];
  statusSeq: string[];
  mergeFaults: Array<{ status: number; times: number; message?: string }>;
  /** commits (target..head) frozen at merge */
  mergedCommits?: string[];
}
interface Deployment {
  id: number;
  iid: number;
  ref: string;
  sha: string;
  tag: boolean;
  status: string;
  environment: string;
  userId: number;
  createdAt: string;
  updatedAt: string;
}
interface Pipeline {
  id: number;
  iid: number;
  sha: string;
  ref: string;
  status: string;
  createdAt: string;
}
interface Project {
  id: number;
  path: string;
  repo: string;
  gitDir: string;
  mrs: Mr[];
  deployments: Deployment[];
  pipelines: Pipeline[];
  merge: MergeSettings;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}
const E = (status: number, body: unknown) => new HttpError(status, body);

/** a new project's merge settings (merge commit, squash allowed and off), with "Pipelines must succeed" on */
const DEFAULT_MERGE: MergeSettings = { mergeMethod: 'merge', squashOption: 'default_off', onlyAllowMergeIfPipelineSucceeds: true, allowMergeOnSkippedPipeline: false };
const msg = (status: number, m: unknown) => E(status, { message: m });

// ------------------------------------------------------------------------------------------ git

function git(dir: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; allowFail?: boolean } = {}): { out: string; code: number } {
  try {
    const out = execFileSync('git', ['--git-dir', dir, ...args], { env: { ...process.env, ...opts.env }, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
    return { out, code: 0 };
  } catch (e) {
    if (!opts.allowFail) throw e;
    const err = e as { status?: number; stdout?: Buffer };
    return { out: err.stdout?.toString() ?? '', code: err.status ?? 1 };
  }
}

function revParse(dir: string, ref: string): string | undefined {
  const r = git(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { allowFail: true });
  return r.code === 0 ? r.out.trim() : undefined;
}

function revList(dir: string, range: string): string[] {
  const r = git(dir, ['rev-list', range], { allowFail: true });
  return r.code === 0 ? r.out.split('\n').filter(Boolean) : [];
}

interface CommitInfo {
  id: string;
  parents: string[];
  authorName: string;
  authorEmail: string;
  authoredDate: string;
  committerName: string;
  committerEmail: string;
  committedDate: string;
  message: string;
}

function commitInfo(dir: string, sha: string): CommitInfo {
  const out = git(dir, ['show', '-s', '--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B', sha]).out;
  const [id, parents, an, ae, ad, cn, ce, cd, ...rest] = out.split('\0');
  return { id, parents: parents.split(' ').filter(Boolean), authorName: an, authorEmail: ae, authoredDate: ad, committerName: cn, committerEmail: ce, committedDate: cd, message: rest.join('\0').replace(/\n+$/, '\n') };
}

// ------------------------------------------------------------------------------------------ server

export async function startGitlabDouble(opts: GitlabDoubleOptions): Promise<GitlabDouble> {
  let last = 0;
  const clock = () => {
    const t = Math.max((opts.now ?? (() => new Date()))().getTime(), last + 1);
    last = t;
    return new Date(t).toISOString();
  };
  const iso = (d: Date | string | undefined) => {
    if (d === undefined) return clock();
    const t = new Date(d).getTime();
    last = Math.max(last, t);
    return new Date(t).toISOString();
  };

  const users: User[] = [];
  const tokens = new Map<string, Token>();
  const tokenByUser = new Map<string, string>();
  const specs = opts.users?.length ? opts.users : [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }];
  specs.forEach((u, i) => {
    const user: User = { id: 100 + i, username: u.username, name: u.name ?? u.username.replace(/(^|[-_.])(\w)/g, (_m, s: string, c: string) => (s ? ' ' : '') + c.toUpperCase()), accessLevel: u.accessLevel ?? 40, bot: !!u.bot, publicEmail: u.publicEmail === undefined ? `${u.username}@example.com` : u.publicEmail, admin: !!u.admin };
    users.push(user);
    const tok = u.token ?? `glpat-${randomBytes(12).toString('hex')}`;
    tokens.set(tok, { value: tok, userId: user.id, scopes: u.scopes ?? ['api'] });
    tokenByUser.set(u.username, tok);
  });
  const bot = users[0];
  const readApiToken = `glpat-ro${randomBytes(10).toString('hex')}`;
  tokens.set(readApiToken, { value: readApiToken, userId: bot.id, scopes: ['read_api'] });
  const jobToken = `glcbt-64_${randomBytes(12).toString('hex')}`;
  const userById = (id: number) => users.find((u) => u.id === id)!;
  const userByName = (n: string) => users.find((u) => u.username.toLowerCase() === n.toLowerCase());

  const groups = (opts.groups ?? []).map((g, i) => ({ id: 500 + i, ...g }));
  const projects: Project[] = opts.projects.map((p, i) => ({ id: p.id ?? 1000 + i, path: p.path, repo: p.repo, gitDir: opts.git.repoPath(p.repo), mrs: [], deployments: [], pipelines: [], merge: { ...DEFAULT_MERGE, ...p.merge } }));
  let nextDeploymentId = 300;
  const environments = new Map<string, number>();
  let nextMrId = 90_000;
  let nextNoteId = 5_000;
  let nextVersionId = 700;
  const faults: Array<Fault & { times: number }> = [];
  const tampers: Tamper[] = [];
  const stalls: Array<{ method?: string; route: string; ms: number }> = [];
  let raceCreate = false;
  const requests: Array<{ method: string; path: string; status: number; user?: string; ms?: number }> = [];

  let base = '';
  const projectOf = (idOrPath: string): Project | undefined => projects.find((p) => String(p.id) === idOrPath || p.path.toLowerCase() === idOrPath.toLowerCase());
  const mustProject = (idOrPath: string) => {
    const p = projectOf(idOrPath);
    if (!p) throw msg(404, '404 Project Not Found');
    return p;
  };
  const mustMr = (p: Project, iid: string | number) => {
    const mr = p.mrs.find((m) => m.iid === Number(iid));
    if (!mr) throw msg(404, '404 Not found');
    return mr;
  };
  // HEAD of a bare repository names its default branch (`ref: refs/heads/<b>`), as `git symbolic-ref --short HEAD` reads it
  const defaultBranch = (p: Project) => {
    const head = /^ref: refs\/heads\/(.+)$/m.exec(existsSync(join(p.gitDir, 'HEAD')) ? readFileSync(join(p.gitDir, 'HEAD'), 'utf8') : '')?.[1]?.trim();
    return head || git(p.gitDir, ['symbolic-ref', '--short', 'HEAD'], { allowFail: true }).out.trim() || 'main';
  };

  // ---------------------------------------------------------------------------------------- entities

  const userEntity = (u: User) => ({ id: u.id, username: u.username, name: u.name, state: 'active', locked: false, avatar_url: null, web_url: `${base}/${u.username}` });

  const conflictCache = new Map<string, boolean>();
  function conflicts(p: Project, mr: Mr): boolean {
    const t = revParse(p.gitDir, `refs/heads/${mr.target}`);
    if (!t || !mr.sha) return false;
    const key = `${p.id} ${t} ${mr.sha}`;
    if (!conflictCache.has(key)) conflictCache.set(key, git(p.gitDir, ['merge-tree', '--write-tree', '--no-messages', t, mr.sha], { allowFail: true }).code !== 0);
    return conflictCache.get(key)!;
  }

  function computedStatus(p: Project, mr: Mr): string {
    if (mr.state !== 'opened') return 'not_open';
    if (/^\s*(draft:|\[draft\]|\(draft\))/i.test(mr.title)) return 'draft_status';
    if (conflicts(p, mr)) return 'conflict';
    if (mr.pipeline === 'running') return 'ci_still_running';
    if (mr.pipeline === 'failed') return 'ci_must_pass';
    return mergeMethodStatus(p, mr) ?? 'mergeable';
  }

  function mrEntity(p: Project, mr: Mr, opts2: { detailed?: string } = {}) {
    const detailed = opts2.detailed ?? (mr.state === 'opened' ? computedStatus(p, mr) : 'not_open');
    const draft = detailed === 'draft_status' || /^\s*(draft:|\[draft\]|\(draft\))/i.test(mr.title);
    const hasConflicts = mr.state === 'opened' && detailed === 'conflict';
    const v = mr.versions[mr.versions.length - 1];
    return {
      id: mr.id,
      iid: mr.iid,
      project_id: p.id,
      title: mr.title,
      description: mr.description,
      state: mr.state,
      created_at: mr.createdAt,
      updated_at: mr.updatedAt,
      merged_by: mr.mergeUserId ? userEntity(userById(mr.mergeUserId)) : null,
      merge_user: mr.mergeUserId ? userEntity(userById(mr.mergeUserId)) : null,
      merged_at: mr.mergedAt,
      closed_by: mr.closedById ? userEntity(userById(mr.closedById)) : null,
      closed_at: mr.closedAt,
      target_branch: mr.target,
      source_branch: mr.source,
      user_notes_count: mr.notes.filter((n) => !n.system).length,
      upvotes: 0,
      downvotes: 0,
      author: userEntity(userById(mr.authorId)),
      assignees: mr.assigneeIds.map((id) => userEntity(userById(id))),
      assignee: mr.assigneeIds[0] ? userEntity(userById(mr.assigneeIds[0])) : null,
      reviewers: mr.reviewerIds.map((id) => userEntity(userById(id))),
      source_project_id: p.id,
      target_project_id: p.id,
      labels: mr.labels,
      draft,
      work_in_progress: draft,
      milestone: null,
      merge_when_pipeline_succeeds: mr.mws,
      merge_status: detailed === 'mergeable' ? 'can_be_merged' : detailed === 'conflict' ? 'cannot_be_merged' : detailed === 'checking' ? 'checking' : detailed === 'unchecked' ? 'unchecked' : 'can_be_merged',
      detailed_merge_status: detailed,
      sha: mr.sha,
      merge_commit_sha: mr.mergeCommitSha,
      squash_commit_sha: mr.squashCommitSha,
      discussion_locked: null,
      should_remove_source_branch: mr.state === 'merged' ? mr.removeSource : null,
      force_remove_source_branch: mr.removeSource,
      prepared_at: mr.createdAt,
      reference: `!${mr.iid}`,
      references: { short: `!${mr.iid}`, relative: `!${mr.iid}`, full: `${p.path}!${mr.iid}` },
      web_url: `${base}/${p.path}/-/merge_requests/${mr.iid}`,
      time_stats: { time_estimate: 0, total_time_spent: 0, human_time_estimate: null, human_total_time_spent: null },
      squash: mr.squash,
      squash_on_merge: squashOnMerge(p, mr),
      task_completion_status: { count: 0, completed_count: 0 },
      has_conflicts: hasConflicts,
      blocking_discussions_resolved: true,
      diff_refs: v ? { base_sha: v.base, head_sha: v.head, start_sha: v.start } : null,
      merge_error: null,
      user: { can_merge: true },
    };
  }

  function noteEntity(p: Project, mr: Mr, n: Note) {
    return {
      id: n.id,
      type: null,
      body: n.body,
      attachment: null,
      author: userEntity(userById(n.authorId)),
      created_at: n.createdAt,
      updated_at: n.updatedAt,
      system: n.system,
      noteable_id: mr.id,
      noteable_type: 'MergeRequest',
      project_id: p.id,
      resolvable: false,
      confidential: false,
      internal: false,
      imported: false,
      imported_from: 'none',
      noteable_iid: mr.iid,
      commands_changes: {},
    };
  }

  function approvalsEntity(mr: Mr, currentUserId: number) {
    return {
      user_has_approved: mr.approvals.some((a) => a.userId === currentUserId),
      user_can_approve: mr.state === 'opened' && !mr.approvals.some((a) => a.userId === currentUserId),
      approved: mr.approvals.length > 0,
      approved_by: mr.approvals.map((a) => ({ user: userEntity(userById(a.userId)), approved_at: a.at })),
    };
  }

  function commitEntity(p: Project, c: CommitInfo) {
    const lines = c.message.split('\n');
    return {
      id: c.id,
      short_id: c.id.slice(0, 8),
      created_at: c.committedDate,
      parent_ids: c.parents,
      title: lines[0],
      message: c.message,
      author_name: c.authorName,
      author_email: c.authorEmail,
      authored_date: c.authoredDate,
      committer_name: c.committerName,
      committer_email: c.committerEmail,
      committed_date: c.committedDate,
      trailers: {},
      extended_trailers: {},
      web_url: `${base}/${p.path}/-/commit/${c.id}`,
    };
  }

  function projectEntity(p: Project) {
    const [ns, ...rest] = p.path.split('/').reverse();
    const namespace = rest.reverse().join('/');
    return {
      id: p.id,
      description: null,
      name: ns,
      name_with_namespace: p.path.split('/').join(' / '),
      path: ns,
      path_with_namespace: p.path,
      created_at: '2026-01-01T00:00:00.000Z',
      default_branch: defaultBranch(p),
      tag_list: [],
      topics: [],
      ssh_url_to_repo: `git@127.0.0.1:${p.path}.git`,
      http_url_to_repo: `${opts.git.url}/${p.repo}`,
      web_url: `${base}/${p.path}`,
      readme_url: null,
      forks_count: 0,
      avatar_url: null,
      star_count: 0,
      last_activity_at: '2026-01-01T00:00:00.000Z',
      namespace: { id: 10, name: namespace, path: namespace.split('/').pop(), kind: 'group', full_path: namespace, parent_id: null, avatar_url: null, web_url: `${base}/groups/${namespace}` },
      visibility: 'private',
      ...mergeSettingsEntity(p),
    };
  }

  // ---------------------------------------------------------------------------------------- MR mechanics

  /** notices pushes to the source branch: a new diff version (and a system note) per new head */
  function refresh(p: Project, mr: Mr, at?: string, pusherId?: number): void {
    if (mr.state !== 'opened') return;
    const head = revParse(p.gitDir, `refs/heads/${mr.source}`);
    if (!head || head === mr.sha) return;
    const target = revParse(p.gitDir, `refs/heads/${mr.target}`) ?? head;
    const baseSha = git(p.gitDir, ['merge-base', target, head], { allowFail: true }).out.trim() || target;
    const commits = revList(p.gitDir, `${target}..${head}`);
    const createdAt = at ?? clock();
    const before = mr.versions[mr.versions.length - 1]?.commits ?? [];
    mr.versions.push({ id: nextVersionId++, head, base: baseSha, start: target, createdAt, commits });
    if (mr.sha) {
      const added = commits.filter((c) => !before.includes(c));
      mr.notes.push({ id: nextNoteId++, body: `added ${added.length} commit${added.length === 1 ? '' : 's'}\n\n${added.map((c) => `* ${c.slice(0, 8)} - ${commitInfo(p.gitDir, c).message.split('\n')[0]}`).join('\n')}`, authorId: pusherId ?? mr.authorId, system: true, createdAt, updatedAt: createdAt });
    }
    mr.sha = head;
    mr.updatedAt = createdAt;
    mr.mws = false;
    mr.pipeline = null;
  }

  function doMerge(p: Project, mr: Mr, userId: number, b: Record<string, unknown> = {}): void {
    mergeByMethod(p, mr, userId, b);
  }


  // ---------------------------------------------------------------------------------------- merge methods
  // (gitlab-model) How each merge method lands a merge request on its target branch, with real git objects:
  // https://docs.gitlab.com/user/project/merge_requests/methods/
  //   merge         `git merge --no-ff`: a merge commit (target, source head), always; with squash, a squash commit
  //                 (parent: the merge base, tree: the source head's) and a merge commit of it
  //   rebase_merge  "Merge commit with semi-linear history": the same merge commit, but only when the target is an
  //                 ancestor of the source (else detailed_merge_status need_rebase and the merge is refused)
  //   ff            "Fast-forward merge": no merge commit; the target moves to the source head itself (its message
  //                 and all), or to the squash commit when squashing; merge_commit_sha stays null
  //                 (app/services/merge_requests/ff_merge_service.rb: "There is no merge commit to update")
  // Squash (https://docs.gitlab.com/user/project/merge_requests/squash_and_merge/): one new commit whose message is
  // `squash_commit_message` or the default template `%{title}` (the MR title), authored by the MR's author.
  // Branch moves go through a real push into the bare repo (receive-pack), by the merging user, so that a
  // post-receive hook (test/helpers/gitlab-model.ts pushLog) sees them as GitLab's pipeline creation does.

  function squashOnMerge(p: Project, mr: Mr): boolean {
    if (p.merge.squashOption === 'always') return true;
    if (p.merge.squashOption === 'never') return false;
    return mr.squash;
  }

  function mergeSettingsEntity(p: Project) {
    return {
      merge_method: p.merge.mergeMethod,
      squash_option: p.merge.squashOption,
      only_allow_merge_if_pipeline_succeeds: p.merge.onlyAllowMergeIfPipelineSucceeds,
      allow_merge_on_skipped_pipeline: p.merge.allowMergeOnSkippedPipeline,
    };
  }

  const isAncestor = (p: Project, a: string, b: string) => git(p.gitDir, ['merge-base', '--is-ancestor', a, b], { allowFail: true }).code === 0;

  /** the merge-settings part of detailed_merge_status (https://docs.gitlab.com/api/merge_requests/#merge-status) */
  function mergeMethodStatus(p: Project, mr: Mr): string | undefined {
    // "Pipelines must succeed": a skipped pipeline counts only with "Skipped pipelines are considered successful"
    // (https://docs.gitlab.com/user/project/merge_requests/auto_merge/#allow-merge-after-skipped-pipelines)
    if (mr.pipeline === 'skipped' && p.merge.onlyAllowMergeIfPipelineSucceeds && !p.merge.allowMergeOnSkippedPipeline) return 'ci_must_pass';
    const target = revParse(p.gitDir, `refs/heads/${mr.target}`);
    if (p.merge.mergeMethod !== 'merge' && target && mr.sha && !isAncestor(p, target, mr.sha)) return 'need_rebase';
    return undefined;
  }

  /** the merge API refuses (405) what the merge checks refuse */
  function mergeChecks(p: Project, mr: Mr, b: Record<string, unknown>): void {
    void b;
    const st = mergeMethodStatus(p, mr);
    if (st) throw msg(405, '405 Method Not Allowed');
  }

  /** moves `branch` from `from` to `to` with a real push by `username` (+ push options), as GitLab's own writes */
  function advanceBranch(p: Project, branch: string, from: string | undefined, to: string, username: string, o: { force?: boolean; pushOptions?: string[] } = {}): void {
    const lease = `--force-with-lease=refs/heads/${branch}:${from ?? ''}`;
    const r = git(p.gitDir, ['push', '-q', ...(o.pushOptions ?? []).flatMap((x) => ['-o', x]), lease, p.gitDir, `${o.force ? '+' : ''}${to}:refs/heads/${branch}`], { env: { REMOTE_USER: username }, allowFail: true });
    if (r.code !== 0) throw msg(409, 'Failed to update the branch: it moved meanwhile');
  }

  function mergeByMethod(p: Project, mr: Mr, userId: number, b: Record<string, unknown>): void {
    const target = revParse(p.gitDir, `refs/heads/${mr.target}`);
    if (!target) throw msg(422, 'Branch cannot be merged');
    const u = userById(userId);
    const author = userById(mr.authorId);
    const when = clock();
    const ident = (x: User) => ({ name: x.name, email: `${x.username}@example.com` });
    const envOf = (a: User, c: User) => ({ GIT_AUTHOR_NAME: ident(a).name, GIT_AUTHOR_EMAIL: ident(a).email, GIT_COMMITTER_NAME: ident(c).name, GIT_COMMITTER_EMAIL: ident(c).email, GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when });
    const method = p.merge.mergeMethod;
    if (method !== 'merge' && !isAncestor(p, target, mr.sha)) throw msg(405, '405 Method Not Allowed');
    const mt = git(p.gitDir, ['merge-tree', '--write-tree', '--no-messages', target, mr.sha], { allowFail: true });
    if (mt.code !== 0) throw msg(422, 'Branch cannot be merged');
    const tree = mt.out.split('\n')[0].trim();
    mr.mergedCommits = revList(p.gitDir, `${target}..${mr.sha}`);
    const squash = squashOnMerge(p, mr);
    let second = mr.sha;
    if (squash) {
      const base = git(p.gitDir, ['merge-base', target, mr.sha]).out.trim();
      const sourceTree = git(p.gitDir, ['rev-parse', `${mr.sha}^{tree}`]).out.trim();
      const message = typeof b.squash_commit_message === 'string' && b.squash_commit_message ? b.squash_commit_message : mr.title;
      mr.squashCommitSha = git(p.gitDir, ['commit-tree', sourceTree, '-p', base, '-m', message], { env: envOf(author, u) }).out.trim();
      second = mr.squashCommitSha;
    }
    let head: string;
    if (method === 'ff') {
      head = second;
      mr.mergeCommitSha = null;
    } else {
      const message = typeof b.merge_commit_message === 'string' && b.merge_commit_message ? b.merge_commit_message : `Merge branch '${mr.source}' into '${mr.target}'\n\n${mr.title}\n\nSee merge request ${p.path}!${mr.iid}`;
      head = git(p.gitDir, ['commit-tree', tree, '-p', target, '-p', second, '-m', message], { env: envOf(u, u) }).out.trim();
      mr.mergeCommitSha = head;
    }
    advanceBranch(p, mr.target, target, head, u.username);
    mr.state = 'merged';
    mr.mergedAt = when;
    mr.updatedAt = when;
    mr.mergeUserId = userId;
    mr.mws = false;
    if (mr.removeSource) git(p.gitDir, ['update-ref', '-d', `refs/heads/${mr.source}`], { allowFail: true });
  }

  /**
   * PUT .../rebase (https://docs.gitlab.com/api/merge_requests/#rebase-a-merge-request): replays the source's
   * commits onto the target (messages and authors kept, committer the user who asked) and force-pushes the source
   * branch; `skip_ci` pushes with the ci.skip option. GitLab answers 202 {rebase_in_progress: true} and rebases in
   * the background; here the rebase is done when the answer comes.
   */
  function rebaseSource(p: Project, mr: Mr, user: User, skipCi: boolean): void {
    const target = revParse(p.gitDir, `refs/heads/${mr.target}`);
    const source = revParse(p.gitDir, `refs/heads/${mr.source}`);
    if (!target || !source) throw msg(409, 'Rebase failed: the branch is missing');
    if (isAncestor(p, target, source)) return;
    const work = mkdtempSync(join(tmpdir(), 'gl-rebase-'));
    const when = clock();
    const env = { ...process.env, GIT_COMMITTER_NAME: user.name, GIT_COMMITTER_EMAIL: `${user.username}@example.com`, GIT_COMMITTER_DATE: when };
    try {
      execFileSync('git', ['clone', '-q', '--no-checkout', p.gitDir, work], { stdio: 'ignore' });
      execFileSync('git', ['-C', work, 'checkout', '-q', '-B', 'rebase', source], { stdio: 'ignore' });
      try {
        execFileSync('git', ['-C', work, 'rebase', '-q', target], { env, stdio: 'ignore' });
      } catch {
        throw msg(409, 'Rebase failed: Rebase locally, resolve all conflicts, then push the branch.');
      }
      const head = execFileSync('git', ['-C', work, 'rev-parse', 'HEAD']).toString().trim();
      execFileSync('git', ['-C', work, 'push', '-q', ...(skipCi ? ['-o', 'ci.skip'] : []), `--force-with-lease=refs/heads/${mr.source}:${source}`, p.gitDir, `+${head}:refs/heads/${mr.source}`], { env: { ...env, REMOTE_USER: user.username }, stdio: 'ignore' });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    refresh(p, mr);
  }

  function createMr(p: Project, userId: number, b: Record<string, unknown>): Mr {
    const source = String(b.source_branch);
    const target = String(b.target_branch);
    const mr: Mr = {
      id: nextMrId++,
      iid: p.mrs.length + 1,
      projectId: p.id,
      title: String(b.title),
      description: b.description == null ? '' : String(b.description),
      state: 'opened',
      source,
      target,
      authorId: userId,
      assigneeIds: ids(b.assignee_ids ?? (b.assignee_id != null ? [b.assignee_id] : [])),
      reviewerIds: ids(b.reviewer_ids ?? []),
      labels: labelList(b.labels),
      createdAt: clock(),
      updatedAt: '',
      mergedAt: null,
      closedAt: null,
      mergeUserId: null,
      closedById: null,
      sha: '',
      mergeCommitSha: null,
      squashCommitSha: null,
      squash: b.squash === true || b.squash === 'true',
      removeSource: b.remove_source_branch === true || b.remove_source_branch === 'true',
      mws: false,
      pipeline: null,
      versions: [],
      approvals: [],
      notes: [],
      statusSeq: [],
      mergeFaults: [],
    };
    mr.updatedAt = mr.createdAt;
    p.mrs.push(mr);
    refresh(p, mr, mr.createdAt);
    return mr;
  }

  function ids(v: unknown): number[] {
    const arr = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : v == null ? [] : [v];
    return arr.map(Number).filter((n) => Number.isFinite(n) && n > 0 && users.some((u) => u.id === n));
  }
  function labelList(v: unknown): string[] {
    const arr = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',') : [];
    return [...new Set(arr.map((s) => s.trim()).filter(Boolean))];
  }

  function validateBranches(p: Project, source: string, target: string, exceptId?: number): void {
    if (source === target) throw msg(409, ["You can't use same project/branch for source and target"]);
    const dup = p.mrs.find((m) => m.state === 'opened' && m.source === source && m.target === target && m.id !== exceptId);
    if (dup) throw msg(409, [`Another open merge request already exists for this source branch: !${dup.iid}`]);
  }

  // ---------------------------------------------------------------------------------------- routing

  type Ctx = { method: string; seg: string[]; query: URLSearchParams; body: Record<string, unknown>; user: User; scopes: string[] };
  type Answer = { status: number; body: unknown; headers?: Record<string, string> };
  /** a route's answer; the repository routes answer asynchronously (their git questions do not block the double) */
  type Handler = (c: Ctx, params: Record<string, string>) => Answer | Promise<Answer>;
  interface Route {
    method: string;
    template: string;
    parts: string[];
    handler: Handler;
    jobToken?: boolean;
    write?: boolean;
  }
  const routes: Route[] = [];
  const on = (method: string, template: string, handler: Handler, o: { jobToken?: boolean } = {}) =>
    routes.push({ method, template, parts: template.split('/').filter(Boolean), handler, jobToken: o.jobToken, write: method !== 'GET' });

  function paginate(c: Ctx, list: unknown[]) {
    const perPage = Math.min(Math.max(Number(c.query.get('per_page')) || 20, 1), 100);
    const page = Math.max(Number(c.query.get('page')) || 1, 1);
    const total = list.length;
    const pages = Math.max(1, Math.ceil(total / perPage));
    const headers: Record<string, string> = { 'x-page': String(page), 'x-per-page': String(perPage), 'x-total': String(total), 'x-total-pages': String(pages), 'x-next-page': page < pages ? String(page + 1) : '', 'x-prev-page': page > 1 ? String(page - 1) : '' };
    const links: string[] = [];
    const link = (n: number, rel: string) => {
      const q = new URLSearchParams(c.query);
      q.set('page', String(n));
      q.set('per_page', String(perPage));
      links.push(`<${base}/api/v4/${c.seg.join('/')}?${q.toString()}>; rel="${rel}"`);
    };
    if (page < pages) link(page + 1, 'next');
    if (page > 1) link(page - 1, 'prev');
    link(1, 'first');
    link(pages, 'last');
    headers.link = links.join(', ');
    return { status: 200, body: list.slice((page - 1) * perPage, page * perPage), headers };
  }

  const needWrite = (c: Ctx) => {
    if (c.user.accessLevel < 30) throw msg(403, '403 Forbidden');
  };

  on('GET', '/user', (c) => ({ status: 200, body: { ...userEntity(c.user), bot: c.user.bot, created_at: '2026-01-01T00:00:00.000Z', email: `${c.user.username}@example.com`, commit_email: `${c.user.username}@example.com`, public_email: c.user.publicEmail, is_admin: c.user.admin } }));
  userRoutes();
  repositoryRoutes();
  on('GET', '/projects/:id', (c, a) => ({ status: 200, body: projectEntity(mustProject(a.id)) }));
  on(
    'GET',
    '/projects/:id/merge_requests',
    (c, a) => {
      const p = mustProject(a.id);
      const state = c.query.get('state') ?? 'all';
      if (!['opened', 'closed', 'locked', 'merged', 'all'].includes(state)) throw E(400, { error: 'state does not have a valid value' });
      for (const m of p.mrs) refresh(p, m);
      const list = p.mrs
        .filter((m) => (state === 'all' || m.state === state) && (!c.query.get('source_branch') || m.source === c.query.get('source_branch')) && (!c.query.get('target_branch') || m.target === c.query.get('target_branch')))
        .sort((x, y) => y.id - x.id)
        .map((m) => mrEntity(p, m));
      return paginate(c, list);
    },
    { jobToken: true },
  );
  on('POST', '/projects/:id/merge_requests', (c, a) => {
    const p = mustProject(a.id);
    needWrite(c);
    const b = c.body;
    const missing = ['source_branch', 'target_branch', 'title'].filter((k) => b[k] === undefined || b[k] === null || b[k] === '');
    if (missing.length) throw E(400, { error: `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing` });
    if (String(b.description ?? '').length > 1_048_576) throw msg(400, { description: ['is too long (maximum is 1048576 characters)'] });
    for (const k of ['source_branch', 'target_branch'] as const) {
      if (!revParse(p.gitDir, `refs/heads/${String(b[k])}`)) throw msg(422, [`${k === 'source_branch' ? 'Source' : 'Target'} branch "${String(b[k])}" does not exist`]);
    }
    if (raceCreate) {
      raceCreate = false;
      validateBranches(p, String(b.source_branch), String(b.target_branch));
      createMr(p, c.user.id, b); // "another runner" got there first
    }
    validateBranches(p, String(b.source_branch), String(b.target_branch));
    const mr = createMr(p, c.user.id, b);
    return { status: 201, body: mrEntity(p, mr) };
  });
  on(
    'GET',
    '/projects/:id/merge_requests/:iid',
    (c, a) => {
      const p = mustProject(a.id);
      const mr = mustMr(p, a.iid);
      refresh(p, mr);
      const detailed = mr.state === 'opened' ? mr.statusSeq.shift() : undefined;
      return { status: 200, body: mrEntity(p, mr, { detailed }) };
    },
    { jobToken: true },
  );
  on('PUT', '/projects/:id/merge_requests/:iid', (c, a) => {
    const p = mustProject(a.id);
    needWrite(c);
    const mr = mustMr(p, a.iid);
    const b = c.body;
    const keys = ['title', 'description', 'labels', 'add_labels', 'remove_labels', 'assignee_ids', 'assignee_id', 'reviewer_ids', 'state_event', 'target_branch', 'remove_source_branch', 'squash', 'discussion_locked', 'milestone_id', 'allow_collaboration'];
    if (!keys.some((k) => b[k] !== undefined)) throw E(400, { error: `${keys.join(', ')} are missing, at least one parameter must be provided` });
    if (b.title !== undefined) {
      if (String(b.title).trim() === '') throw msg(400, { title: ["can't be blank"] });
      mr.title = String(b.title);
    }
    if (b.description !== undefined) {
      if (String(b.description).length > 1_048_576) throw msg(400, { description: ['is too long (maximum is 1048576 characters)'] });
      mr.description = String(b.description ?? '');
    }
    if (b.labels !== undefined) mr.labels = labelList(b.labels);
    if (b.add_labels !== undefined) mr.labels = [...new Set([...mr.labels, ...labelList(b.add_labels)])];
    if (b.remove_labels !== undefined) mr.labels = mr.labels.filter((l) => !labelList(b.remove_labels).includes(l));
    if (b.assignee_ids !== undefined) mr.assigneeIds = ids(b.assignee_ids);
    if (b.reviewer_ids !== undefined) mr.reviewerIds = ids(b.reviewer_ids);
    if (b.squash !== undefined) mr.squash = b.squash === true || b.squash === 'true';
    if (b.remove_source_branch !== undefined) mr.removeSource = b.remove_source_branch === true || b.remove_source_branch === 'true';
    if (b.state_event === 'close' && mr.state === 'opened') {
      mr.state = 'closed';
      mr.closedAt = clock();
      mr.closedById = c.user.id;
    } else if (b.state_event === 'reopen' && mr.state === 'closed') {
      validateBranches(p, mr.source, mr.target, mr.id);
      mr.state = 'opened';
      mr.closedAt = null;
      mr.closedById = null;
      refresh(p, mr);
    }
    mr.updatedAt = clock();
    return { status: 200, body: mrEntity(p, mr) };
  });
  on('PUT', '/projects/:id/merge_requests/:iid/merge', (c, a) => {
    const p = mustProject(a.id);
    needWrite(c);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    const b = c.body;
    const f = mr.mergeFaults[0];
    if (f) {
      if (--f.times <= 0) mr.mergeFaults.shift();
      throw msg(f.status, f.message ?? (f.status === 405 ? '405 Method Not Allowed' : f.status === 406 ? 'Branch cannot be merged' : `${f.status}`));
    }
    if (mr.state !== 'opened') throw msg(405, '405 Method Not Allowed');
    if (computedStatus(p, mr) === 'draft_status') throw msg(405, '405 Method Not Allowed');
    if (b.sha !== undefined && b.sha !== mr.sha) throw msg(409, `SHA does not match HEAD of source branch: ${mr.sha}`);
    if (b.squash !== undefined) mr.squash = b.squash === true || b.squash === 'true';
    if (b.should_remove_source_branch !== undefined) mr.removeSource = b.should_remove_source_branch === true || b.should_remove_source_branch === 'true';
    if (conflicts(p, mr)) throw msg(422, 'Branch cannot be merged');
    const auto = b.auto_merge === true || b.auto_merge === 'true' || b.merge_when_pipeline_succeeds === true || b.merge_when_pipeline_succeeds === 'true';
    if (auto && mr.pipeline === 'running') {
      mr.mws = true;
      mr.mergeUserId = c.user.id;
      mr.updatedAt = clock();
      return { status: 200, body: mrEntity(p, mr) };
    }
    if (mr.pipeline === 'failed') throw msg(405, '405 Method Not Allowed');
    mergeChecks(p, mr, b);
    doMerge(p, mr, c.user.id, b);
    return { status: 200, body: mrEntity(p, mr) };
  });
  on('PUT', '/projects/:id/merge_requests/:iid/rebase', (c, a) => {
    const p = mustProject(a.id);
    needWrite(c);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    if (mr.state !== 'opened') throw msg(403, '403 Forbidden');
    rebaseSource(p, mr, c.user, c.body.skip_ci === true || c.body.skip_ci === 'true');
    return { status: 202, body: { rebase_in_progress: true } };
  });
  on('GET', '/projects/:id/merge_requests/:iid/commits', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    const list = mr.mergedCommits ?? mr.versions[mr.versions.length - 1]?.commits ?? [];
    return paginate(c, list.map((s) => commitEntity(p, commitInfo(p.gitDir, s))));
  });
  on('GET', '/projects/:id/merge_requests/:iid/versions', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    const list = [...mr.versions].reverse().map((v) => ({ id: v.id, head_commit_sha: v.head, base_commit_sha: v.base, start_commit_sha: v.start, created_at: v.createdAt, merge_request_id: mr.id, state: 'collected', real_size: String(v.commits.length), patch_id_sha: patchId(p, v.base, v.head) }));
    return paginate(c, list);
  });
  // one version with its diffs (https://docs.gitlab.com/api/merge_requests/#get-a-single-merge-request-diff-version):
  // each changed file's hunks from `git diff base..head`, the `diff` text starting at its first `@@` line
  on('GET', '/projects/:id/merge_requests/:iid/versions/:version_id', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    const v = mr.versions.find((x) => String(x.id) === a.version_id);
    if (!v) throw msg(404, '404 Not found');
    const paths = git(p.gitDir, ['diff', '--no-renames', '--name-only', '-z', v.base, v.head]).out.split('\0').filter(Boolean);
    const diffs = paths.map((path) => {
      const d = git(p.gitDir, ['diff', '--no-color', '--no-ext-diff', '--no-renames', v.base, v.head, '--', path]).out;
      const at = d.indexOf('\n@@');
      return { old_path: path, new_path: path, a_mode: '100644', b_mode: '100644', new_file: /^new file mode/m.test(d), renamed_file: false, deleted_file: /^deleted file mode/m.test(d), generated_file: false, diff: at >= 0 ? d.slice(at + 1) : '' };
    });
    return { status: 200, body: { id: v.id, head_commit_sha: v.head, base_commit_sha: v.base, start_commit_sha: v.start, created_at: v.createdAt, merge_request_id: mr.id, state: 'collected', real_size: String(v.commits.length), patch_id_sha: patchId(p, v.base, v.head), commits: [], diffs } };
  });
  on('GET', '/projects/:id/merge_requests/:iid/approvals', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    return { status: 200, body: approvalsEntity(mr, c.user.id) };
  });
  on('POST', '/projects/:id/merge_requests/:iid/approve', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    refresh(p, mr);
    if (c.body.sha !== undefined && c.body.sha !== mr.sha) throw msg(409, `SHA does not match HEAD of source branch: ${mr.sha}`);
    if (mr.state !== 'opened' || mr.approvals.some((x) => x.userId === c.user.id) || c.user.accessLevel < 30) throw msg(401, '401 Unauthorized');
    mr.approvals.push({ userId: c.user.id, at: clock() });
    return { status: 201, body: approvalsEntity(mr, c.user.id) };
  });
  on('POST', '/projects/:id/merge_requests/:iid/unapprove', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    const i = mr.approvals.findIndex((x) => x.userId === c.user.id);
    if (i < 0) throw msg(404, '404 Not Found');
    mr.approvals.splice(i, 1);
    return { status: 201, body: approvalsEntity(mr, c.user.id) };
  });
  on(
    'GET',
    '/projects/:id/merge_requests/:iid/notes',
    (c, a) => {
      const p = mustProject(a.id);
      const mr = mustMr(p, a.iid);
      refresh(p, mr);
      const orderBy = c.query.get('order_by') ?? 'created_at';
      const sort = c.query.get('sort') ?? 'desc';
      const key = (n: Note) => (orderBy === 'updated_at' ? n.updatedAt : n.createdAt) + String(n.id).padStart(10, '0');
      const list = [...mr.notes].sort((x, y) => (sort === 'asc' ? key(x).localeCompare(key(y)) : key(y).localeCompare(key(x)))).map((n) => noteEntity(p, mr, n));
      return paginate(c, list);
    },
    { jobToken: true },
  );
  on('POST', '/projects/:id/merge_requests/:iid/notes', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    const body = c.body.body;
    if (body === undefined || body === null || body === '') throw E(400, { error: 'body is missing' });
    if (String(body).length > 1_000_000) throw msg(400, { note: ['is too long (maximum is 1000000 characters)'] });
    const at = clock();
    const n: Note = { id: nextNoteId++, body: String(body), authorId: c.user.id, system: false, createdAt: at, updatedAt: at };
    mr.notes.push(n);
    return { status: 201, body: noteEntity(p, mr, n) };
  });
  on('PUT', '/projects/:id/merge_requests/:iid/notes/:note_id', (c, a) => {
    const p = mustProject(a.id);
    const mr = mustMr(p, a.iid);
    const n = mr.notes.find((x) => x.id === Number(a.note_id));
    if (!n) throw msg(404, '404 Note Not Found');
    if (n.authorId !== c.user.id || n.system) throw msg(403, '403 Forbidden');
    const body = c.body.body;
    if (body === undefined || body === null || body === '') throw E(400, { error: 'body is missing' });
    if (String(body).length > 1_000_000) throw msg(400, { note: ['is too long (maximum is 1000000 characters)'] });
    n.body = String(body);
    n.updatedAt = clock();
    return { status: 200, body: noteEntity(p, mr, n) };
  });
  on('GET', '/projects/:id/repository/commits/:sha/merge_requests', (c, a) => {
    const p = mustProject(a.id);
    const sha = revParse(p.gitDir, a.sha);
    if (!sha || !/^[0-9a-f]{7,40}$/i.test(a.sha)) throw msg(404, '404 Commit Not Found');
    for (const m of p.mrs) refresh(p, m);
    const list = p.mrs
      .filter((m) => m.mergeCommitSha === sha || m.squashCommitSha === sha || (m.mergedCommits ?? m.versions.flatMap((v) => v.commits)).includes(sha))
      .sort((x, y) => y.id - x.id)
      .map((m) => mrEntity(p, m));
    return paginate(c, list);
  });
  const DEPLOY_STATUS = ['running', 'success', 'failed', 'canceled'];
  function deploymentEntity(p: Project, d: Deployment) {
    const envId = environments.get(`${p.id}/${d.environment}`)!;
    return {
      id: d.id,
      iid: d.iid,
      ref: d.ref,
      sha: d.sha,
      created_at: d.createdAt,
      updated_at: d.updatedAt,
      status: d.status,
      user: userEntity(userById(d.userId)),
      deployable: null,
      environment: { id: envId, name: d.environment, slug: d.environment.replace(/[^a-z0-9]+/gi, '-').toLowerCase(), external_url: null, created_at: d.createdAt, updated_at: d.updatedAt, state: 'available', tier: /prod/.test(d.environment) ? 'production' : /stag/.test(d.environment) ? 'staging' : 'other' },
    };
  }
  // GET /projects/:id/pipelines/:pipeline_id (https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline):
  // a pipeline of another project is 404, as GitLab scopes the lookup to the project in the path
  on('GET', '/projects/:id/pipelines/:pipeline_id', (c, a) => {
    const p = mustProject(a.id);
    const pl = p.pipelines.find((x) => String(x.id) === a.pipeline_id);
    if (!pl) throw msg(404, '404 Not found');
    return {
      status: 200,
      body: {
        id: pl.id,
        iid: pl.iid,
        project_id: p.id,
        sha: pl.sha,
        ref: pl.ref,
        status: pl.status,
        source: 'push',
        created_at: pl.createdAt,
        updated_at: pl.createdAt,
        web_url: `${base}/${p.path}/-/pipelines/${pl.id}`,
        before_sha: '0'.repeat(40),
        tag: false,
        yaml_errors: null,
        user: userEntity(bot),
        started_at: pl.createdAt,
        finished_at: null,
        committed_at: null,
        duration: null,
        queued_duration: null,
        coverage: null,
        detailed_status: { icon: `status_${pl.status}`, text: pl.status, label: pl.status, group: pl.status },
      },
    };
  });
  on(
    'GET',
    '/projects/:id/deployments',
    (c, a) => {
      const p = mustProject(a.id);
      const env = c.query.get('environment');
      const st = c.query.get('status');
      const list = p.deployments.filter((d) => (!env || d.environment === env) && (!st || d.status === st));
      const sorted = c.query.get('sort') === 'desc' ? [...list].reverse() : list;
      return paginate(c, sorted.map((d) => deploymentEntity(p, d)));
    },
    { jobToken: true },
  );
  on(
    'POST',
    '/projects/:id/deployments',
    (c, a) => {
      const p = mustProject(a.id);
      needWrite(c);
      const b = c.body;
      const missing = ['environment', 'sha', 'ref', 'tag', 'status'].filter((k) => b[k] === undefined || b[k] === null || b[k] === '');
      if (missing.length) throw E(400, { error: `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing` });
      if (!DEPLOY_STATUS.includes(String(b.status))) throw E(400, { error: 'status does not have a valid value' });
      const tag = b.tag === true || b.tag === 'true';
      if (!revParse(p.gitDir, `refs/${tag ? 'tags' : 'heads'}/${String(b.ref)}`)) throw msg(400, { ref: ['The branch or tag does not exist'] });
      const sha = revParse(p.gitDir, String(b.sha));
      if (!sha) throw msg(400, { sha: ['The commit does not exist'] });
      const key = `${p.id}/${String(b.environment)}`;
      if (!environments.has(key)) environments.set(key, 800 + environments.size);
      const at = clock();
      const d: Deployment = { id: nextDeploymentId++, iid: p.deployments.length + 1, ref: String(b.ref), sha, tag, status: String(b.status), environment: String(b.environment), userId: c.user.id, createdAt: at, updatedAt: at };
      p.deployments.push(d);
      return { status: 201, body: deploymentEntity(p, d) };
    },
    { jobToken: true },
  );
  on(
    'PUT',
    '/projects/:id/deployments/:deployment_id',
    (c, a) => {
      const p = mustProject(a.id);
      needWrite(c);
      const d = p.deployments.find((x) => x.id === Number(a.deployment_id));
      if (!d) throw msg(404, '404 Not found');
      if (!DEPLOY_STATUS.includes(String(c.body.status))) throw E(400, { error: c.body.status === undefined ? 'status is missing' : 'status does not have a valid value' });
      d.status = String(c.body.status);
      d.updatedAt = clock();
      return { status: 200, body: deploymentEntity(p, d) };
    },
    { jobToken: true },
  );
  on('GET', '/groups/:id/members/all', (c, a) => {
    const g = groups.find((x) => String(x.id) === a.id || x.path.toLowerCase() === a.id.toLowerCase());
    if (!g) throw msg(404, '404 Group Not Found');
    const names = new Map<string, number>();
    for (let cur: (typeof groups)[number] | undefined = g; cur; cur = cur.parent ? groups.find((x) => x.path === cur!.parent) : undefined) {
      for (const m of cur.members) if (!names.has(m)) names.set(m, 30);
    }
    const list = [...names.keys()].map((n) => {
      const u = userByName(n);
      if (!u) throw new Error(`double: group ${g.path} member ${n} is not a user`);
      return { ...userEntity(u), access_level: names.get(n)!, created_at: '2026-01-01T00:00:00.000Z', created_by: null, expires_at: null, group_saml_identity: null, membership_state: 'active' };
    });
    return paginate(c, list);
  });

  // ---------------------------------------------------------------------------------------- users, files, patch-ids (gate)

  /** GitLab's patch-id of a diff version: git patch-id of base..head (MergeRequestDiff#patch_id_sha via Gitaly GetPatchID) */
  const patchIds = new Map<string, string | null>();
  function patchId(p: Project, baseSha: string, head: string): string | null {
    const key = `${p.id} ${baseSha} ${head}`;
    if (!patchIds.has(key)) {
      const diff = git(p.gitDir, ['diff', '--no-color', '--no-ext-diff', baseSha, head], { allowFail: true }).out;
      const id = diff ? execFileSync('git', ['patch-id', '--stable'], { input: diff }).toString().trim().split(' ')[0] : '';
      patchIds.set(key, id || null);
    }
    return patchIds.get(key)!;
  }

  /** GET /users/:id is Entities::User (public_email, bot); GET /users?search= matches username, name and public
   *  email (every email for an administrator) and answers UserBasic (admins: with `email`) */
  function userRoutes(): void {
    on('GET', '/users', (c) => {
      const u = c.query.get('username');
      const q = c.query.get('search')?.toLowerCase();
      let list = u ? users.filter((x) => x.username.toLowerCase() === u.toLowerCase()) : users;
      if (q) list = list.filter((x) => x.username.toLowerCase().includes(q) || x.name.toLowerCase().includes(q) || x.publicEmail?.toLowerCase() === q || (c.user.admin && `${x.username}@example.com` === q));
      return paginate(c, list.map((x) => (c.user.admin ? { ...userEntity(x), email: `${x.username}@example.com` } : userEntity(x))));
    });
    on('GET', '/users/:user_id', (c, a) => {
      const u = users.find((x) => String(x.id) === a.user_id);
      if (!u) throw msg(404, '404 User Not Found');
      return { status: 200, body: { ...userEntity(u), created_at: '2026-01-01T00:00:00.000Z', bio: '', public_email: u.publicEmail, bot: u.bot } };
    });
    on('GET', '/projects/:id/repository/files/:file_path/raw', (c, a) => {
      const p = mustProject(a.id);
      const ref = c.query.get('ref') || defaultBranch(p);
      const r = git(p.gitDir, ['show', `${ref}:${a.file_path}`], { allowFail: true });
      if (r.code !== 0) throw msg(404, '404 File Not Found');
      return { status: 200, body: r.out };
    });
  }

  // ---------------------------------------------------------------------------------------- repository (write-back through the API)
  // The endpoints `bump --via api` reads and writes the config repo through, answered from the real bare repo:
  //   GET  branches/:branch       https://docs.gitlab.com/api/branches/#get-single-repository-branch
  //   GET  files/:file_path       https://docs.gitlab.com/api/repository_files/#get-file-from-repository (content base64,
  //                               blob_id, commit_id, last_commit_id: the last commit at `ref` that touched the file)
  //   GET  tree                   https://docs.gitlab.com/api/repositories/#list-repository-tree (path, ref, recursive,
  //                               paginated; 404 "Tree Not Found" for a path or ref that is not there)
  //   GET  commits                https://docs.gitlab.com/api/commits/#list-repository-commits (ref_name, path; newest first)
  //   GET  commits/:sha           https://docs.gitlab.com/api/commits/#get-a-single-commit
  //   GET  merge_base             https://docs.gitlab.com/api/repositories/#merge-base (refs[] two or more)
  //   POST commits                https://docs.gitlab.com/api/commits/#create-a-commit-with-multiple-files-and-actions
  // POST commits follows GitLab's Files::MultiService (app/services/files/multi_service.rb): an update/move/delete whose
  // `last_commit_id` is not the last commit that touched the file on the branch answers 400 "The file has changed since
  // you started editing it: <path>"; the commit's committer is the token's user, its author author_name/author_email
  // (else the user); the branch moves only if it still points where it did when the request started
  // (`git update-ref refs/heads/B new old`, as Gitaly's UserCommitFiles updates the reference with the old value it
  // read): else 400 (the message of that case is the double's own; gitops-ci re-reads the branch on any 400 and
  // decides on what it finds, not on the text).
  const ZERO = '0'.repeat(40);
  const interleave = new Map<number, () => void>();
  const commitDetail = (p: Project, c: CommitInfo) => ({ ...commitEntity(p, c), status: null, project_id: p.id, last_pipeline: null });
  // Gitaly answers these from long-lived git processes; so does the double (test/doubles/gitlab/objects.ts): one
  // `git cat-file --batch` per repository, and a git process only for a path's history, merge-base and the ref update
  const readers = new Map<string, ObjectReader>();
  const reader = (p: Project) => {
    let r = readers.get(p.gitDir);
    if (!r) readers.set(p.gitDir, (r = new ObjectReader(p.gitDir)));
    return r;
  };
  const hashLen = (p: Project) => (objectFormat(p.gitDir) === 'sha256' ? 32 : 20);
  /** the commit a revision names (`git rev-parse --verify <rev>^{commit}`), or undefined */
  async function commitOf(p: Project, rev: string): Promise<string | undefined> {
    if (!rev) return undefined;
    const o = await reader(p).read(`${rev}^{commit}`);
    return o?.type === 'commit' ? o.oid : undefined;
  }
  async function commitInfoOf(p: Project, sha: string): Promise<CommitInfo> {
    const o = await reader(p).read(sha);
    if (!o || o.type !== 'commit') throw new Error(`double: ${sha} is not a commit`);
    const c = parseCommit(o.data);
    return { id: o.oid, parents: c.parents, authorName: c.author.name, authorEmail: c.author.email, authoredDate: c.author.date, committerName: c.committer.name, committerEmail: c.committer.email, committedDate: c.committer.date, message: c.message.replace(/\n+$/, '\n') };
  }
  /** a tree's entries (`git ls-tree [-r -t] <ref>:<path>`), or undefined when `path` at `ref` is not a tree */
  async function lsTree(p: Project, ref: string, path: string, recursive: boolean): Promise<Array<{ id: string; name: string; type: string; path: string; mode: string }> | undefined> {
    const R = reader(p);
    const root = await R.read(path ? `${ref}:${path}` : `${ref}^{tree}`);
    if (!root || root.type !== 'tree') return undefined;
    type Row = { id: string; name: string; type: string; path: string; mode: string };
    // depth first, a tree's entry before its contents, as `ls-tree -r -t` lists them; each level's subtrees asked for at once
    const walk = async (data: Buffer, prefix: string): Promise<Row[]> => {
      const entries = parseTree(data, hashLen(p));
      const subs = await Promise.all(entries.map((e) => (recursive && e.type === 'tree' ? R.read(e.oid) : undefined)));
      const out: Row[] = [];
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        const full = prefix ? `${prefix}/${e.name}` : e.name;
        out.push({ id: e.oid, name: e.name, type: e.type, path: full, mode: e.mode });
        const sub = subs[i];
        if (sub) out.push(...(await walk(sub.data, full)));
      }
      return out;
    };
    return walk(root.data, path);
  }
  /** the entry of `path` in `commit`'s tree (what `git ls-tree <commit> -- <path>` prints), or undefined */
  async function entryAt(p: Project, commit: string, path: string): Promise<TreeEntry | undefined> {
    const parts = path.split('/');
    if (parts.some((x) => !x || x === '.' || x === '..')) return undefined;
    const name = parts.pop()!;
    const dir = await reader(p).read(parts.length ? `${commit}:${parts.join('/')}` : `${commit}^{tree}`);
    if (!dir || dir.type !== 'tree') return undefined;
    return parseTree(dir.data, hashLen(p)).find((e) => e.name === name);
  }
  /**
   * the last commit at `commit` that touched `path` (GitLab's last_commit_id; Gitaly's LastCommitForPath, `git log -1
   * -- <path>`), kept per commit and path (neither changes). Along single-parent commits it is found from what is known:
   * `commit` itself when its entry for `path` (blob and mode) differs from its parent's, else the parent's answer, so a
   * branch that moved by a few commits costs a few object reads, not a walk of its history. A merge, a path not there,
   * or a long way without an answer asks `git log -1` (a literal path; the bench's repos carry a commit-graph with
   * changed-path Bloom filters, as Gitaly's housekeeping writes them).
   */
  const lastCommits = new Map<string, Promise<string | undefined>>();
  const lastCommitOf = (p: Project, commit: string, path: string, budget = 32): Promise<string | undefined> => {
    const key = `${p.gitDir}\0${commit}\0${path}`;
    let v = lastCommits.get(key);
    if (!v) {
      const log = () => gitAsync(p.gitDir, ['--literal-pathspecs', 'log', '-1', '--format=%H', commit, '--', path]).then((r) => r.out.trim() || undefined);
      v = (async () => {
        if (budget <= 0) return log();
        const o = await reader(p).read(commit);
        const parents = o?.type === 'commit' ? parseCommit(o.data).parents : [];
        if (parents.length !== 1) return log();
        const [here, there] = await Promise.all([entryAt(p, commit, path), entryAt(p, parents[0]!, path)]);
        if (!here) return log();
        if (!there || there.oid !== here.oid || there.mode !== here.mode) return commit;
        return lastCommitOf(p, parents[0]!, path, budget - 1);
      })();
      lastCommits.set(key, v);
    }
    return v;
  };
  function repositoryRoutes(): void {
    on('GET', '/projects/:id/repository/branches/:branch', async (c, a) => {
      const p = mustProject(a.id);
      const sha = await commitOf(p, `refs/heads/${a.branch}`);
      if (!sha) throw msg(404, '404 Branch Not Found');
      return { status: 200, body: { name: a.branch, commit: commitEntity(p, await commitInfoOf(p, sha)), merged: false, protected: false, developers_can_push: false, developers_can_merge: false, can_push: c.user.accessLevel >= 30, default: a.branch === defaultBranch(p), web_url: `${base}/${p.path}/-/tree/${a.branch}` } };
    });
    on('GET', '/projects/:id/repository/files/:file_path', async (c, a) => {
      const p = mustProject(a.id);
      const ref = c.query.get('ref');
      if (!ref) throw E(400, { error: 'ref is missing' });
      const commit = await commitOf(p, ref);
      const entry = commit ? await entryAt(p, commit, a.file_path) : undefined;
      if (!commit || !entry || entry.type !== 'blob') throw msg(404, '404 File Not Found');
      const [blob, last] = await Promise.all([reader(p).read(entry.oid), lastCommitOf(p, commit, a.file_path)]);
      const bytes = blob!.data;
      return {
        status: 200,
        body: {
          file_name: a.file_path.split('/').pop(),
          file_path: a.file_path,
          size: bytes.length,
          encoding: 'base64',
          content: bytes.toString('base64'),
          content_sha256: createHash('sha256').update(bytes).digest('hex'),
          ref,
          blob_id: entry.oid,
          commit_id: commit,
          last_commit_id: last!,
          execute_filemode: entry.mode === '100755',
        },
      };
    });
    on('GET', '/projects/:id/repository/tree', async (c, a) => {
      const p = mustProject(a.id);
      const ref = c.query.get('ref') || defaultBranch(p);
      const path = (c.query.get('path') ?? '').replace(/^\/+|\/+$/g, '');
      const list = await lsTree(p, ref, path, c.query.get('recursive') === 'true');
      if (!list) throw msg(404, '404 Tree Not Found');
      return paginate(c, list);
    });
    on('GET', '/projects/:id/repository/commits', async (c, a) => {
      const p = mustProject(a.id);
      // ref_name: a branch, tag or revision range (A..B)
      const ref = c.query.get('ref_name') || defaultBranch(p);
      const ends = ref.split('..');
      if (ends.length > 2 || (await Promise.all(ends.map((x) => commitOf(p, x)))).some((x) => !x)) throw msg(404, '404 Reference Not Found');
      const path = c.query.get('path');
      const perPage = Math.min(Math.max(Number(c.query.get('per_page')) || 20, 1), 100);
      const page = Math.max(Number(c.query.get('page')) || 1, 1);
      // only the history up to the page asked for (and one commit more: is there a next page?) is walked, as GitLab
      // asks Gitaly for offset + limit commits; a long history is not counted, so no x-total / x-total-pages / rel="last"
      // (https://docs.gitlab.com/api/rest/#pagination-response-headers: omitted where counting is too costly; the commits
      // listing sets neither, https://gitlab.com/gitlab-org/gitlab/-/issues/389582)
      const shas = (await gitAsync(p.gitDir, ['--literal-pathspecs', 'rev-list', `--max-count=${page * perPage + 1}`, ref, ...(path ? ['--', path] : [])])).out.split('\n').filter(Boolean);
      const slice = shas.slice((page - 1) * perPage, page * perPage);
      const next = shas.length > page * perPage;
      const link = (n: number, rel: string) => {
        const q = new URLSearchParams(c.query);
        q.set('page', String(n));
        q.set('per_page', String(perPage));
        return `<${base}/api/v4/${c.seg.join('/')}?${q.toString()}>; rel="${rel}"`;
      };
      const headers: Record<string, string> = { 'x-page': String(page), 'x-per-page': String(perPage), 'x-next-page': next ? String(page + 1) : '', 'x-prev-page': page > 1 ? String(page - 1) : '', link: [...(next ? [link(page + 1, 'next')] : []), ...(page > 1 ? [link(page - 1, 'prev')] : []), link(1, 'first')].join(', ') };
      return { status: 200, body: await Promise.all(slice.map(async (s) => commitEntity(p, await commitInfoOf(p, s)))), headers };
    });
    on('GET', '/projects/:id/repository/commits/:sha', async (c, a) => {
      const p = mustProject(a.id);
      const sha = await commitOf(p, a.sha);
      if (!sha) throw msg(404, '404 Commit Not Found');
      return { status: 200, body: commitDetail(p, await commitInfoOf(p, sha)) };
    });
    on('GET', '/projects/:id/repository/merge_base', async (c, a) => {
      const p = mustProject(a.id);
      const refs = c.query.getAll('refs[]');
      if (refs.length < 2) throw msg(400, 'Provide at least 2 refs');
      const shas = await Promise.all(refs.map((r) => commitOf(p, r)));
      const missing = refs.filter((_, i) => !shas[i]);
      if (missing.length) throw msg(404, `Could not find ref: ${missing[0]}`);
      const mb = (await gitAsync(p.gitDir, ['merge-base', ...(shas as string[])])).out.trim();
      if (!mb) throw msg(404, '404 Merge Base Not Found');
      return { status: 200, body: commitEntity(p, await commitInfoOf(p, mb)) };
    });
    on('POST', '/projects/:id/repository/commits', async (c, a) => {
      const p = mustProject(a.id);
      needWrite(c);
      const b = c.body;
      const missing = ['branch', 'commit_message', 'actions'].filter((k) => b[k] === undefined || b[k] === null || b[k] === '');
      if (missing.length) throw E(400, { error: `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing` });
      const branch = String(b.branch);
      // the branch as it is when the request starts: the parent, and the old value of the reference update
      const old = await commitOf(p, `refs/heads/${branch}`);
      const start = b.start_sha ? await commitOf(p, String(b.start_sha)) : b.start_branch ? await commitOf(p, `refs/heads/${String(b.start_branch)}`) : old;
      if (!start) throw msg(400, 'You can only create or edit files when you are on a branch');
      if (old && start !== old && b.force !== true) throw msg(400, `A branch called '${branch}' already exists. Switch to that branch in order to make changes`);
      const actions = Array.isArray(b.actions) ? (b.actions as Array<Record<string, unknown>>) : [];
      const R = reader(p);
      // every action is checked before anything is written, as Files::MultiService#validate! does: a refusal costs
      // a look at the paths and their last commits, nothing more
      for (const act of actions) {
        const action = String(act.action);
        const path = String(act.file_path ?? '');
        if (!['create', 'update', 'delete', 'move', 'chmod'].includes(action)) throw msg(400, `Unknown action '${action}'`);
        const exists = !!(await R.read(`${start}:${path}`));
        // Files::MultiService#validate_file_status!: the file must not have changed since last_commit_id
        if (['update', 'move', 'delete'].includes(action) && act.last_commit_id !== undefined && act.last_commit_id !== null) {
          const lastOf = await lastCommitOf(p, start, String(act.previous_path ?? path));
          if (lastOf !== String(act.last_commit_id)) throw msg(400, `The file has changed since you started editing it: ${String(act.previous_path ?? path)}`);
        }
        if (action === 'create' && exists) throw msg(400, 'A file with this name already exists');
        if ((action === 'update' || action === 'delete') && !exists) throw msg(400, "A file with this name doesn't exist");
        if (action === 'move' || action === 'chmod') throw msg(400, `the double does not implement action ${action}`);
      }
      // the new tree: only the trees on the paths of the actions are read and written again
      const dirs = new Map<string, Map<string, TreeEntry>>();
      const parentOf = (d: string) => (d.includes('/') ? d.slice(0, d.lastIndexOf('/')) : '');
      const nameOf = (d: string) => d.slice(d.lastIndexOf('/') + 1);
      const dirOf = async (d: string): Promise<Map<string, TreeEntry>> => {
        let m = dirs.get(d);
        if (m) return m;
        let oid: string | undefined;
        if (d === '') oid = (await R.read(`${start}^{tree}`))!.oid;
        else {
          const e = (await dirOf(parentOf(d))).get(nameOf(d));
          if (e && e.type !== 'tree') throw msg(400, `A file with this name already exists: ${d}`);
          oid = e?.oid;
        }
        m = new Map(oid ? parseTree((await R.read(oid))!.data, hashLen(p)).map((e) => [e.name, e]) : []);
        dirs.set(d, m);
        return m;
      };
      for (const act of actions) {
        const path = String(act.file_path ?? '').replace(/^\/+/, '');
        if (!path || path.split('/').some((x) => !x || x === '.' || x === '..')) throw msg(400, `Your changes could not be committed: ${path} is not a valid path`);
        const dir = await dirOf(parentOf(path));
        if (String(act.action) === 'delete') dir.delete(nameOf(path));
        else {
          const content = act.encoding === 'base64' ? Buffer.from(String(act.content ?? ''), 'base64') : Buffer.from(String(act.content ?? ''), 'utf8');
          dir.set(nameOf(path), { mode: act.execute_filemode === true ? '100755' : '100644', type: 'blob', oid: writeObject(p.gitDir, 'blob', content), name: nameOf(path) });
        }
      }
      // deepest first: an emptied directory disappears from its parent, as it does from an index
      for (const d of [...dirs.keys()].filter(Boolean).sort((x, y) => y.split('/').length - x.split('/').length)) {
        const m = dirs.get(d)!;
        const parent = await dirOf(parentOf(d));
        if (!m.size) parent.delete(nameOf(d));
        else parent.set(nameOf(d), { mode: '040000', type: 'tree', oid: writeObject(p.gitDir, 'tree', formatTree([...m.values()])), name: nameOf(d) });
      }
      const tree = writeObject(p.gitDir, 'tree', formatTree([...(await dirOf('')).values()]));
      const when = clock();
      const u = c.user;
      const commitEnv = { GIT_AUTHOR_NAME: typeof b.author_name === 'string' && b.author_name ? b.author_name : u.name, GIT_AUTHOR_EMAIL: typeof b.author_email === 'string' && b.author_email ? b.author_email : `${u.username}@example.com`, GIT_COMMITTER_NAME: u.name, GIT_COMMITTER_EMAIL: `${u.username}@example.com`, GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when };
      const made = await gitAsync(p.gitDir, ['commit-tree', tree, '-p', start, '-F', '-'], { input: String(b.commit_message), env: commitEnv });
      if (made.code !== 0) throw new Error(`double: commit-tree failed (${made.code})`);
      const sha = made.out.trim();
      const between = interleave.get(p.id);
      if (between) {
        interleave.delete(p.id);
        between();
      }
      // the branch moves only if it still points where it did when the request started
      const moved = await gitAsync(p.gitDir, ['update-ref', `refs/heads/${branch}`, sha, old ?? ZERO]);
      if (moved.code !== 0) throw msg(400, `Could not update refs/heads/${branch}: it moved while the commit was made. Please refresh and try again.`);
      for (const mr of p.mrs) if (mr.source === branch) refresh(p, mr, when, u.id);
      return { status: 201, body: { ...commitDetail(p, await commitInfoOf(p, sha)), stats: { additions: 0, deletions: 0, total: 0 } } };
    });
  }

  function match(method: string, seg: string[]): { route: Route; params: Record<string, string> } | { allowed: string[] } | undefined {
    const allowed: string[] = [];
    for (const r of routes) {
      if (r.parts.length !== seg.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < seg.length; i++) {
        if (r.parts[i].startsWith(':')) params[r.parts[i].slice(1)] = seg[i];
        else if (r.parts[i] !== seg[i]) ok = false;
      }
      if (!ok) continue;
      if (r.method === method) return { route: r, params };
      allowed.push(r.method);
    }
    return allowed.length ? { allowed } : undefined;
  }

  async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const ch of req) chunks.push(ch as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) return {};
    const ct = String(req.headers['content-type'] ?? '');
    if (ct.includes('json')) {
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw E(400, { error: 'The provided content-type \'application/json\' is not valid JSON' });
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of new URLSearchParams(text)) {
      const arr = /^(.*)\[\]$/.exec(k);
      if (arr) ((out[arr[1]] as string[]) ??= []).push(v);
      else out[k] = v;
    }
    return out;
  }

  function authenticate(req: http.IncomingMessage, route: Route): { user: User; scopes: string[] } {
    const pt = req.headers['private-token'];
    const bearer = /^Bearer (.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    const job = req.headers['job-token'];
    const value = (Array.isArray(pt) ? pt[0] : pt) ?? bearer;
    if (!value) {
      if (job && route.jobToken && job === jobToken) return { user: bot, scopes: ['api'] };
      throw msg(401, '401 Unauthorized');
    }
    const t = tokens.get(value);
    if (!t) throw msg(401, '401 Unauthorized');
    if (t.revoked) throw E(401, { error: 'invalid_token', error_description: 'Token was revoked. You have to re-authenticate.' });
    const scopes = t.scopes;
    const ok = scopes.includes('api') || (scopes.includes('read_api') && route.method === 'GET');
    if (!ok) throw E(403, { error: 'insufficient_scope', error_description: 'The request requires higher privileges than provided by the access token.', scope: route.method === 'GET' ? 'api read_api' : 'api' });
    return { user: userById(t.userId), scopes };
  }

  const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const t0 = performance.now();
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    const raw = url.pathname;
    let status = 500;
    let body: unknown;
    let headers: Record<string, string> = {};
    let route: Route | undefined;
    let injected = false;
    let tampered = false;
    let who: string | undefined;
    try {
      if (!raw.startsWith('/api/v4/')) throw E(404, { error: '404 Not Found' });
      // split on the raw path: %2F inside a project path stays within its segment
      const seg = raw.slice('/api/v4/'.length).split('/').filter(Boolean).map((s) => decodeURIComponent(s));
      const m = match(method, seg);
      if (!m) throw E(404, { error: '404 Not Found' });
      if ('allowed' in m) throw E(405, { error: '405 Not Allowed' });
      route = m.route;
      const key = `${method} ${route.template}`;
      const si = stalls.findIndex((f) => (!f.method || f.method === method) && (f.route === key || f.route === route!.template));
      if (si >= 0) {
        const st = stalls.splice(si, 1)[0]!;
        await new Promise((r) => setTimeout(r, st.ms));
        requests.push({ method, path: raw, status: 0 });
        res.destroy();
        return;
      }
      const fi = faults.findIndex((f) => (!f.method || f.method === method) && (!f.route || (typeof f.route === 'string' ? f.route === key || f.route === route!.template : f.route.test(raw))));
      if (fi >= 0) {
        const f = faults[fi];
        if (--f.times <= 0) faults.splice(fi, 1);
        injected = true;
        throw E(f.status, f.body ?? { message: `${f.status} ${http.STATUS_CODES[f.status] ?? ''}`.trim() });
      }
      const auth = authenticate(req, route);
      who = auth.user.username;
      const b = await readBody(req);
      const r = await route.handler({ method, seg, query: url.searchParams, body: b, user: auth.user, scopes: auth.scopes }, m.params);
      status = r.status;
      body = r.body;
      headers = r.headers ?? {};
      const ti = tampers.findIndex((t) => t.route === key || t.route === route!.template);
      if (ti >= 0) {
        const t = tampers[ti];
        if (t.times !== undefined && --t.times <= 0) tampers.splice(ti, 1);
        const out = t.rewrite({ status, body: JSON.parse(JSON.stringify(body)), headers: { ...headers }, query: url.searchParams });
        status = out.status;
        body = out.body;
        headers = out.headers ?? headers;
        tampered = true;
      }
    } catch (e) {
      if (e instanceof HttpError) {
        status = e.status;
        body = e.body;
      } else {
        status = 500;
        body = { message: '500 Internal Server Error' };
        process.stderr.write(`gitlab double: ${(e as Error).stack}\n`);
      }
    }
    requests.push({ method, path: raw, status, user: who, ms: performance.now() - t0 });
    opts.onResponse?.({ method, route: route ? `${method} ${route.template}` : undefined, path: raw, status, body, injected, tampered });
    // a raw file answer is text (GET …/repository/files/:file_path/raw), everything else JSON
    const isText = status === 200 && typeof body === 'string' && route?.template.endsWith('/raw');
    const text = isText ? (body as string) : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': isText ? 'text/plain; charset=utf-8' : 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  };

  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  base = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  // ---------------------------------------------------------------------------------------- hooks

  let nextPipelineId = 4100;
  const P = (project: string) => {
    const p = projectOf(project);
    if (!p) throw new Error(`double: no project ${project}`);
    return p;
  };
  const M = (project: string, iid: number) => {
    const p = P(project);
    const mr = p.mrs.find((m) => m.iid === iid);
    if (!mr) throw new Error(`double: no MR !${iid} in ${project}`);
    return { p, mr };
  };

  const hooks: GitlabDoubleHooks = {
    raceNextCreate: () => {
      raceCreate = true;
    },
    failNext: (f) => faults.push({ ...f, times: f.times ?? 1 }),
    mergeStatusSequence: (project, iid, statuses) => {
      M(project, iid).mr.statusSeq.push(...statuses);
    },
    failNextMerge: (project, iid, f) => {
      M(project, iid).mr.mergeFaults.push({ status: f.status, times: f.times ?? 1, message: f.message });
    },
    approve: (project, iid, username, o = {}) => {
      const { p, mr } = M(project, iid);
      refresh(p, mr);
      const u = userByName(username);
      if (!u) throw new Error(`double: no user ${username}`);
      mr.approvals = mr.approvals.filter((x) => x.userId !== u.id);
      mr.approvals.push({ userId: u.id, at: iso(o.at) });
    },
    push: (project, branch, o) => {
      const p = P(project);
      const at = iso(o.at);
      const old = revParse(p.gitDir, `refs/heads/${branch}`);
      const parent = o.onto ? revParse(p.gitDir, `refs/heads/${o.onto}`) : old ?? revParse(p.gitDir, `refs/heads/${o.from ?? defaultBranch(p)}`);
      const idx = mkdtempSync(join(tmpdir(), 'gl-idx-'));
      const email = o.email ?? `${o.author ?? 'dev'}@example.com`;
      const env = { GIT_INDEX_FILE: join(idx, 'index'), GIT_AUTHOR_NAME: o.author ?? 'Dev', GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: o.author ?? 'Dev', GIT_COMMITTER_EMAIL: email, GIT_AUTHOR_DATE: at, GIT_COMMITTER_DATE: at };
      try {
        if (parent) git(p.gitDir, ['read-tree', parent], { env });
        for (const [file, content] of Object.entries(o.files)) {
          if (content === null) git(p.gitDir, ['update-index', '--force-remove', file], { env });
          else {
            const blob = git(p.gitDir, ['hash-object', '-w', '--stdin'], { input: content }).out.trim();
            git(p.gitDir, ['update-index', '--add', '--cacheinfo', `100644,${blob},${file}`], { env });
          }
        }
        const tree = git(p.gitDir, ['write-tree'], { env }).out.trim();
        const sha = git(p.gitDir, ['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', o.message ?? `update ${Object.keys(o.files).join(', ')}`], { env }).out.trim();
        git(p.gitDir, ['update-ref', `refs/heads/${branch}`, sha, ...(old ? [old] : [])]);
        const pusher = o.pusher ? userByName(o.pusher) : undefined;
        if (o.pusher && !pusher) throw new Error(`double: no user ${o.pusher}`);
        for (const mr of p.mrs) if (mr.source === branch) refresh(p, mr, at, pusher?.id);
        return sha;
      } finally {
        rmSync(idx, { recursive: true, force: true });
      }
    },
    setPipeline: (project, iid, status) => {
      const { p, mr } = M(project, iid);
      refresh(p, mr);
      mr.pipeline = status;
      if (status === 'success' && mr.mws && mr.state === 'opened') doMerge(p, mr, mr.mergeUserId ?? bot.id);
      if (status === 'failed') mr.mws = false;
    },
    mergeSettings: (project, st) => {
      const p = P(project);
      p.merge = { ...p.merge, ...st };
    },
    setState: (project, iid, event) => {
      const { p, mr } = M(project, iid);
      if (event === 'close') {
        mr.state = 'closed';
        mr.closedAt = clock();
        mr.closedById = bot.id;
      } else {
        mr.state = 'opened';
        mr.closedAt = null;
        refresh(p, mr);
      }
    },
    mergeRequest: (project, iid) => {
      const { p, mr } = M(project, iid);
      refresh(p, mr);
      return mrEntity(p, mr);
    },
    mergeRequests: (project) => {
      const p = P(project);
      return p.mrs.map((m) => (refresh(p, m), mrEntity(p, m)));
    },
    notes: (project, iid) => {
      const { p, mr } = M(project, iid);
      return mr.notes.map((n) => noteEntity(p, mr, n));
    },
    branchSha: (project, branch) => revParse(P(project).gitDir, `refs/heads/${branch}`),
    stallNext: (f) => {
      stalls.push({ ...f });
    },
    interleaveNextCommit: (project, fn) => {
      interleave.set(P(project).id, fn);
    },
    addProject: (d) => {
      if (projectOf(d.path)) return;
      projects.push({ id: d.id ?? 1000 + projects.length, path: d.path, repo: d.repo, gitDir: opts.git.repoPath(d.repo), mrs: [], deployments: [], pipelines: [], merge: { ...DEFAULT_MERGE, ...d.merge } });
    },
    addPipeline: (project, o) => {
      const p = P(project);
      const id = nextPipelineId++;
      p.pipelines.push({ id, iid: p.pipelines.length + 1, sha: o.sha, ref: o.ref ?? defaultBranch(p) ?? 'main', status: o.status ?? 'success', createdAt: clock() });
      return id;
    },
    deployments: (project) => {
      const p = P(project);
      return p.deployments.map((d) => deploymentEntity(p, d));
    },
    tamper: (t) => {
      tampers.push({ ...t });
      const mine = tampers[tampers.length - 1];
      return () => {
        const i = tampers.indexOf(mine);
        if (i >= 0) tampers.splice(i, 1);
      };
    },
    revoke: (token) => {
      const t = tokens.get(token);
      if (t) t.revoked = true;
    },
  };

  return {
    url: base,
    apiUrl: `${base}/api/v4`,
    token: tokenByUser.get(bot.username)!,
    tokenOf: (u) => {
      const t = tokenByUser.get(u);
      if (!t) throw new Error(`double: no user ${u}`);
      return t;
    },
    jobToken,
    readApiToken,
    hooks,
    routes: routes.map((r) => `${r.method} ${r.template}`),
    get requests() {
      return requests;
    },
    stop: () =>
      new Promise<void>((r) => {
        for (const rd of readers.values()) rd.close();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
