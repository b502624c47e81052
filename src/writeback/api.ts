/**
 * Write-back without a clone: bump (and promote --via api) through GitLab's repository and commits APIs.
 *
 *   read    the branch's head (GET …/repository/branches/:branch), the overlays' files at that commit
 *           (GET …/repository/tree, recursive, and …/repository/files/:path: content, blob_id, last_commit_id) into
 *           a temp dir: a LocalTree (src/writeback/tree.ts), so locate, resolveInside, the edit layer and the render
 *           are the git path's own; --render fetches the kustomization's closure the same way (src/bump/closure.ts)
 *   plan    src/bump/plan.ts, the git path's: the stale guard reads history through the API (ApiHistory: commits
 *           listed by path, ancestry through merge_base)
 *   write   one commit of `update` actions (POST …/repository/commits,
 *           https://docs.gitlab.com/api/commits/#create-a-commit-with-multiple-files-and-actions), each with the
 *           file's `last_commit_id`: GitLab refuses (400 "The file has changed since you started editing it: <path>",
 *           Files::MultiService) an update of a file that changed on the branch since it was read, and creates the
 *           commit atomically on the server (a branch moved by another writer in between is refused as well)
 *   retry   on a 400 with the branch moved: re-read (only the files whose blob changed), re-plan, commit again, with
 *           bump's backoff (src/bump/bump.ts backoffMs), bounded by --max-attempts and --timeout. A 400 with the
 *           branch where it was is a real refusal (exit 1). 401/403 → 3, 5xx/network → 75 (after a look at the
 *           branch: a commit that landed is reported as landed), timeout → 4, a branch that is gone → 2.
 *
 * Identity: GitLab makes the token's user the committer of an API commit; `author_name`/`author_email` set the
 * author only (the pipeline's user, as on the git path). So the guard trusts, beside the write-back identity,
 * the committer GitLab records for this token (its user's name and commit email, GET /user): an identity that only
 * GitLab can stamp on an API commit. See docs/commands/bump.md "Write-back through the API".
 */
import { lapTimer } from '../core/timing.js';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fail, isGitopsError } from '../core/errors.js';
import { removeTempDir, tempDir } from '../core/cleanup.js';
import { resolveInside } from '../core/fsutil.js';
import type { Logger } from '../core/log.js';
import type { Identity, LogEntry } from '../git/clone.js';
import type { Remote } from '../git/url.js';
import type { GitlabClient, RepoFile } from '../gitlab/client.js';
import type { GitlabConfig } from '../gitlab/config.js';
import { checkoutReferences } from '../bump/closure.js';
import { Guard, writebackIdentity, type HistorySource } from '../bump/guard.js';
import { buildMessage, type SkipCi } from '../bump/message.js';
import { renderOverlays } from '../bump/kustomize.js';
import { BumpErrors } from '../bump/errors.js';
import { findFile, plan } from '../bump/plan.js';
import type { BumpConfig, BumpOutcome } from '../bump/bump.js';
import { LocalTree } from './tree.js';
import { WritebackErrors } from './errors.js';
import { writebackLock, type HeldLock } from './lock.js';
import { retryAttempts } from '../core/flags.js';

// ------------------------------------------------------------------------------------------ which path

export type ViaChoice = 'auto' | 'git' | 'api';
export const VIA_CHOICES: readonly ViaChoice[] = ['auto', 'git', 'api'];

export interface ViaDecision {
  via: 'git' | 'api';
  /** why, for the log */
  why: string;
  /** the connection, with via api */
  gitlab?: GitlabConfig;
}

/**
 * `--via auto|git|api` (input `write-via`, GITOPS_WRITE_VIA). The API is usable when the config repo is an https
 * URL on the GitLab instance of the pipeline (its host is CI_API_V4_URL's / CI_SERVER_URL's), a write token is
 * there (GITOPS_GITLAB_TOKEN > GITLAB_TOKEN), `--skip-ci` is not push-option (a push option needs a push) and
 * no --workdir is asked for (a work tree is a clone's). auto takes the API then, git otherwise; api refuses
 * (exit 2) when it cannot be used, saying what is missing.
 */
export async function decideVia(choice: ViaChoice, o: { remote: Remote; env: NodeJS.ProcessEnv; skipCi: SkipCi; workdir?: string; gitWhy?: string }): Promise<ViaDecision> {
  if (choice === 'git') return { via: 'git', why: o.gitWhy ?? 'git asked for (--via git or GITOPS_WRITE_VIA=git)' };
  const missing: string[] = [];
  let gitlab: GitlabConfig | undefined;
  if (o.remote.kind !== 'http') missing.push(`the config repo is ${o.remote.kind === 'ssh' ? 'an ssh URL (ssh credentials are git\'s)' : 'a local path'}, not an https URL of a GitLab project`);
  if (o.skipCi === 'push-option') missing.push('--skip-ci push-option needs a git push (the commits API takes no push options)');
  if (o.workdir) missing.push('--workdir asks for a clone');
  if (!missing.length) {
    const { resolveGitlabConfig } = await import('../gitlab/config.js');
    try {
      const project = o.env.GITOPS_CONFIG_PROJECT?.trim();
      gitlab = resolveGitlabConfig(o.env, project ? { project } : {}, { repoUrl: o.remote.url, token: 'write' });
      // auto: the same host and port (GitLab serves git over https where it serves its API); --via api: the same host
      // name (a GitLab whose git HTTP is on another port, behind a proxy: the user says so)
      const api = new URL(gitlab.apiUrl);
      const repo = new URL(o.remote.url);
      const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
      if (api.hostname.toLowerCase() !== repo.hostname.toLowerCase() || (choice === 'auto' && port(api) !== port(repo))) {
        missing.push(`the config repo (${repo.host}) is not on the pipeline's GitLab (${api.host})`);
      }
    } catch (e) {
      if (!isGitopsError(e)) throw e;
      missing.push(e.kind === 'auth' ? e.message : (e.details?.length ? e.details.join('; ') : e.message));
    }
  }
  if (!missing.length) return { via: 'api', why: `${choice === 'api' ? '--via api' : 'auto'}: the config repo is on ${new URL(gitlab!.apiUrl).host} and ${gitlab!.tokenSource} is set`, gitlab };
  if (choice === 'api') {
    throw fail.usage(WritebackErrors.API_UNAVAILABLE, `--via api cannot write to this config repo: ${missing.join('; ')}`, {
      where: o.remote.display,
      details: missing.length > 1 ? missing.map((m) => `- ${m}`) : undefined,
      hint: 'use --via git (or auto), or give the job what the API needs: an https config repo on this GitLab and GITOPS_GITLAB_TOKEN (Developer, scope api)',
    });
  }
  return { via: 'git', why: `auto: ${missing.join('; ')}` };
}

// ------------------------------------------------------------------------------------------ files

/** the mode a file read through the API has (the files API says whether it is executable, not whether it is a link) */
const modeOf = (f: RepoFile) => (f.executable ? '100755' : '100644');

const NAMED = /^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[^\0]+$/;

/**
 * The config repo's files at one commit, read through the API into a temp dir: the overlays (each directory
 * whole, as a sparse checkout in cone mode holds it) and, for --render, what they reference.
 */
export class ApiTree extends LocalTree {
  /** the commit the files were read at */
  head = '';
  private readonly root: string;
  /** per file: the blob, mode and last commit it was read with */
  private readonly files = new Map<string, { blobId: string; mode: string; lastCommitId?: string }>();
  /** the directories read (recursively) */
  private known: string[] = [];
  /** per directory listed at `head`: its entries */
  private listings = new Map<string, Map<string, string>>();

  private constructor(
    private readonly gl: GitlabClient,
    private readonly project: string | number,
    readonly branch: string,
    private readonly parent: string,
    log: Logger,
  ) {
    super(log);
    this.root = join(parent, 'config');
  }

  get dir(): string {
    return this.root;
  }

  static async open(gl: GitlabClient, o: { project: string | number; branch: string; log: Logger; purpose: string }): Promise<ApiTree> {
    const parent = tempDir(`gitops-ci-${o.purpose}-api-`); // removed on SIGTERM/SIGINT too
    const t = new ApiTree(gl, o.project, o.branch, parent, o.log);
    try {
      await mkdir(t.root, { recursive: true });
      const head = await gl.branchHead(o.project, o.branch);
      if (!head) throw branchGone(o.branch, o.project);
      t.head = head;
      return t;
    } catch (e) {
      removeTempDir(parent);
      throw e;
    }
  }

  close(): void {
    removeTempDir(this.parent);
  }

  /** the last commit that touched `file` at `head` (the lock of its update); read when not known */
  async lastCommitOf(file: string): Promise<string> {
    const f = this.files.get(file);
    if (f?.lastCommitId) return f.lastCommitId;
    const got = await this.gl.getFile(this.project, file, this.head);
    if (!got) throw fail.failed(BumpErrors.CONFLICT, `${file} is not on ${this.branch} at ${this.head.slice(0, 12)} any more`, { where: `${file} on ${this.branch}`, hint: 'another change removed it while this bump ran; re-run' });
    const had = this.files.get(file);
    this.files.set(file, { blobId: got.blobId, mode: had?.mode ?? modeOf(got), lastCommitId: got.lastCommitId });
    return got.lastCommitId;
  }

  /** 'tree' | 'blob' | undefined for a path at `head` (a symlink is a blob, as in git) */
  async typeOf(rel: string): Promise<'tree' | 'blob' | undefined> {
    const p = posix.normalize(rel).replace(/\/+$/, '');
    if (p === '' || p === '.') return 'tree';
    const parentDir = posix.dirname(p) === '.' ? '' : posix.dirname(p);
    let l = this.listings.get(parentDir);
    if (!l) {
      const entries = await this.gl.listTree(this.project, { path: parentDir, ref: this.head });
      l = new Map((entries ?? []).map((e) => [e.path, e.type]));
      this.listings.set(parentDir, l);
    }
    const t = l.get(p);
    return t === 'tree' ? 'tree' : t === 'blob' ? 'blob' : undefined;
  }

  /** read directories (recursively) at `head` into the temp dir; files whose blob is already here are kept */
  async add(dirs: string[]): Promise<boolean> {
    let all = true;
    for (const d of dirs) {
      const dir = posix.normalize(d).replace(/\/+$/, '');
      if (!NAMED.test(dir)) throw fail.usage(BumpErrors.OVERLAY, `${d} is not a path inside the config repo`, { where: d });
      const listed = await this.gl.listTree(this.project, { path: dir, ref: this.head, recursive: true });
      if (!listed) all = false;
      else await mkdir(await this.outside(dir), { recursive: true });
      const entries = listed ?? [];
      const wanted = new Set<string>();
      const fetches: Array<() => Promise<void>> = [];
      for (const e of entries) {
        // every path GitLab names must be inside the directory asked for, and plain (no `..`)
        if (!NAMED.test(e.path) || !e.path.startsWith(`${dir}/`)) throw fail.failed(WritebackErrors.API_ANSWER, `GitLab listed ${JSON.stringify(e.path)} in ${dir}: not a path inside it`, { where: `${dir} at ${this.head.slice(0, 12)}`, hint: 'a proxy or an incompatible GitLab answered; nothing was written' });
        if (e.type === 'tree') {
          await mkdir(await this.outside(e.path), { recursive: true });
          continue;
        }
        if (e.type !== 'blob') continue; // a submodule: not ours to read, as a sparse checkout does not fill it
        wanted.add(e.path);
        const had = this.files.get(e.path);
        if (had?.blobId === e.id && had.mode === e.mode) continue;
        fetches.push(async () => this.put(e.path, e.mode, await this.fetch(e.path)));
      }
      // the files of a directory that are gone at this head
      for (const f of [...this.files.keys()]) {
        if (f.startsWith(`${dir}/`) && !wanted.has(f)) {
          this.files.delete(f);
          await rm(await this.outside(f), { force: true });
        }
      }
      // a few requests at a time
      for (let i = 0; i < fetches.length; i += 8) await Promise.all(fetches.slice(i, i + 8).map((f) => f()));
      if (listed && !this.known.includes(dir)) this.known.push(dir);
    }
    return all;
  }

  private async fetch(path: string): Promise<RepoFile> {
    const f = await this.gl.getFile(this.project, path, this.head);
    if (!f) throw fail.failed(BumpErrors.CONFLICT, `${path} was listed at ${this.head.slice(0, 12)} but could not be read`, { where: `${path} on ${this.branch}`, hint: 'the branch changed while it was read; re-run' });
    return f;
  }

  /** the absolute path for a file being written from the API: its parent must stay inside the tree */
  private async outside(rel: string): Promise<string> {
    const abs = join(this.root, rel);
    const r = await resolveInside(this.root, posix.dirname(rel));
    if (!r.inside) throw fail.usage('EKUSTOMIZE_OUTSIDE', `${rel} leads outside the config repo through a symlink; it is not read or written`, { where: rel, hint: 'the config repo must keep its overlays and the files they pin images in inside the repo (no symlinks out of it)' });
    return abs;
  }

  private async put(rel: string, mode: string, f: RepoFile): Promise<void> {
    const abs = await this.outside(rel);
    await mkdir(dirname(abs), { recursive: true });
    await rm(abs, { force: true });
    // a symlink stays a symlink (its content is the target), so resolveInside refuses one out of the tree as in a clone
    if (mode === '120000') await symlink(f.content.toString('utf8'), abs);
    else await writeFile(abs, f.content, { mode: mode === '100755' ? 0o755 : 0o644 });
    this.files.set(rel, { blobId: f.blobId, mode, lastCommitId: f.lastCommitId });
  }

  /**
   * move to a new head of the branch: re-read the directories read so far (only changed blobs are fetched). `fresh`:
   * files already read at `head` (the files a refused commit wrote, read with the branch's new head in one round
   * trip): put as they are, not asked for again.
   */
  async moveTo(head: string, forget: string[] = [], fresh?: Map<string, RepoFile>): Promise<void> {
    this.head = head;
    this.listings.clear();
    // files this writer's refused commit touched: read again, whatever their blob (their last commit moved)
    for (const f of forget) this.files.delete(f);
    // every file's last commit may have moved with the head; kept only where the blob is unchanged and read again below
    for (const v of this.files.values()) v.lastCommitId = undefined;
    for (const [f, got] of fresh ?? []) if (got.commitId === head) await this.put(f, modeOf(got), got);
    await this.add(this.known);
  }

  /** what the overlays reference, transitively (src/bump/closure.ts, as the git checkout does) */
  async closure(overlays: string[]): Promise<string[]> {
    const dirs = await checkoutReferences(overlays, { root: this.root, typeOf: (p) => this.typeOf(p), add: async (d) => void (await this.add(d)) }, this.known);
    this.log.debug(`read through the API: ${dirs.join(' ')}`);
    return dirs;
  }

  /** the guard's history through the API */
  history(): HistorySource {
    return new ApiHistory(this.gl, this.project, () => this.head);
  }
}

function branchGone(branch: string, project: string | number) {
  return fail.usage('EGIT_BRANCH_NOT_FOUND', `branch ${JSON.stringify(branch)} does not exist in the config repo (project ${project})`, {
    where: `project ${project}`,
    hint: 'check --branch (default: GITOPS_CONFIG_BRANCH, then CI_DEFAULT_BRANCH); bump does not create branches',
  });
}

// ------------------------------------------------------------------------------------------ history

/** the trailer block of a commit message: its last paragraph (what `git log --format=%(trailers:only)` reads) */
export function trailerBlock(message: string): string {
  const paras = message.replace(/\s+$/, '').split(/\n\s*\n/);
  return paras.length > 1 ? paras[paras.length - 1]! : '';
}

/** The stale guard's history, read through the commits API: never shallow (a listing is as deep as asked). */
class ApiHistory implements HistorySource {
  constructor(
    private readonly gl: GitlabClient,
    private readonly project: string | number,
    private readonly tip: () => string,
  ) {}

  async head(): Promise<string> {
    return this.tip();
  }

  async isAncestor(a: string, b: string): Promise<boolean> {
    if (a === b) return true;
    return (await this.gl.mergeBase(this.project, [a, b])) === a;
  }

  async logTrailers(path: string, max: number, since?: string): Promise<LogEntry[]> {
    // ref_name takes a revision range (https://docs.gitlab.com/api/commits/#list-repository-commits): since..tip
    const list = await this.gl.listCommits(this.project, { ref: since ? `${since}..${this.tip()}` : this.tip(), path, max });
    return list.map((c) => ({ sha: c.id, trailers: trailerBlock(c.message), committer: { name: c.committerName, email: c.committerEmail } }));
  }

  async isShallow(): Promise<boolean> {
    return false;
  }

  async deepen(): Promise<void> {
    /* a listing is as deep as asked */
  }
}

// ------------------------------------------------------------------------------------------ the connection

/** the GitLab client of an API write-back or read: no request outlives the command's deadline (each gets at most 30 s, as everywhere) */
export async function apiClient(conn: GitlabConfig, o: { deadline: number; env: NodeJS.ProcessEnv; log: Logger; onRequest?: (method: string, ms: number) => void }): Promise<GitlabClient> {
  const { gitlabClient } = await import('../gitlab/client.js');
  const requestTimeoutMs = Math.max(1000, Math.min(conn.requestTimeoutMs ?? 30_000, o.deadline - Date.now()));
  return gitlabClient({ ...conn, requestTimeoutMs }, { log: o.log, attempts: retryAttempts(o.env), onRequest: o.onRequest });
}

/**
 * GitLab commits through the API as the token's user (`author_*` set only the author): its name and commit email
 * (GET /user: commit_email, else email) are trusted beside the write-back identity, by bump's guard and by
 * promote's source read. Empty when GitLab does not show the email.
 */
export function tokenCommitter(u: { name: string; email?: string; commitEmail?: string }, log: Logger): Identity[] {
  const email = u.commitEmail || u.email;
  if (email) return [{ name: u.name, email }];
  log.debug("the token user's email is not shown (GET /user): only the write-back identity's trailers are trusted");
  return [];
}

// ------------------------------------------------------------------------------------------ the bump

export interface ApiWriteback {
  gitlab: GitlabConfig;
}

/** Where an API bump's time went (ms), printed with --verbose as one `bump timing {json}` line, as the git path's. */
interface ApiTiming {
  via: 'api';
  /** process start to bump() */
  start: number;
  /** the first read: branch, overlays, closure, guard's identity */
  clone: number;
  /** per attempt: re-read (fetch), plan, the commit request (push), and the wait after a refusal (backoff) */
  attempts: Array<{ fetch?: number; plan: number; commit: number; push: number; result: 'ok' | 'race' | 'error'; backoff?: number }>;
  /** waiting for --lock-file and the server's lock */
  wait?: number;
  /** HTTP requests made to GitLab, and their summed time */
  requests: number;
  requestMs: number;
  /** CPU time of this process (user + system) at the end */
  cpu?: number;
  total?: number;
}

/**
 * bump through the API: the same plan, guard, render and message as the git path (src/bump/bump.ts), one API
 * commit instead of a clone and a push. Called by bump() when cfg.api is set.
 */
export async function bumpViaApi(cfg: BumpConfig, backoffMs: (attempt: number, windowMs: number) => number): Promise<BumpOutcome> {
  const { log } = cfg;
  const conn = cfg.api!.gitlab;
  const timing: ApiTiming = { via: 'api', start: Math.round(performance.now()), clone: 0, attempts: [], requests: 0, requestMs: 0 };
  const lap = lapTimer();
  const gl = await apiClient(conn, {
    deadline: cfg.deadline,
    env: cfg.env,
    log,
    onRequest: (_m, ms) => {
      timing.requests++;
      timing.requestMs += ms;
    },
  });
  const committer = writebackIdentity(cfg.env);
  const project = conn.project;
  let tree: ApiTree | undefined;
  let guard: Guard | undefined;
  let lock: HeldLock | undefined;
  const where = `${conn.apiUrl.replace(/\/api\/v4$/, '')} project ${project} (${cfg.branch})`;
  try {
    tree = await ApiTree.open(gl, { project, branch: cfg.branch, log, purpose: 'bump' });
    const t = tree;
    await log.section(`read ${cfg.overlays.join(' ')} of ${cfg.branch} at ${t.head.slice(0, 12)} through the GitLab API`, async () => {
      const missing: string[] = [];
      for (const o of cfg.overlays) {
        // one listing per overlay: a path that is no directory at this commit (missing, a file, a symlink) lists nothing
        if (!(await t.add([o]))) {
          missing.push(o);
          continue;
        }
        if (!(await findFile(t, o, cfg.targetKind))) missing.push(o);
      }
      if (missing.length) {
        throw fail.usage(BumpErrors.OVERLAY_NOT_FOUND, `overlay${missing.length > 1 ? 's' : ''} not found on branch ${cfg.branch}: ${missing.join(', ')}`, {
          where,
          hint: '--dir is relative to the config repo root and must hold a kustomization.yaml, e.g. .kubernetes/overlays/production',
        });
      }
      if (cfg.render) await t.closure(cfg.overlays);
    });
    // GitLab commits as the token's user: its commits carry that committer, which the guard then trusts too. Asked for
    // only when something reads it: the guard (a pipeline to compare) or the look after a lost answer
    let me: Awaited<ReturnType<GitlabClient['currentUser']>> | undefined;
    const whoami = async () => (me ??= await gl.currentUser());
    const also: Identity[] = [];
    if (!cfg.allowDowngrade && (cfg.origin.commit || cfg.origin.pipelineId)) also.push(...tokenCommitter(await whoami(), log));
    guard = new Guard(t.history(), { historyDepth: cfg.historyDepth, env: cfg.env, log, origin: cfg.origin, sourceRepo: cfg.sourceRepo, also });
    await guard.history.moved(t.head);
    log.info(`config repo ${where} at ${t.head.slice(0, 12)} (through the GitLab API)`);
    timing.clone = lap();
    // --lock-file and the server's lock (src/writeback/lock.ts): the turn starts after the first read (a few requests;
    // the git path takes its turn before its clone, src/bump/bump.ts), so a wait for the other writers is followed by
    // a look at the branch, which one of them may have moved
    if (!cfg.dryRun) {
      lap();
      lock = await writebackLock(cfg, timing, { apiToken: conn.token, apiUrl: conn.apiUrl });
      lap();
      if (lock?.waited) {
        const now = await gl.branchHead(project, cfg.branch);
        if (!now) throw branchGone(cfg.branch, project);
        if (now !== t.head) {
          await t.moveTo(now);
          await guard.history.moved(now);
          if (cfg.render) await t.closure(cfg.overlays);
        }
      }
      lap();
    }
    let window = Infinity;
    let attemptStart = Date.now();
    let fetchMs: number | undefined;
    for (let attempt = 1; ; attempt++) {
      lap();
      const p = await plan(t, cfg, attempt, guard);
      if (!p.changes.length) return { changed: false, dryRun: cfg.dryRun, head: t.head, attempts: attempt, changes: [], skipped: p.skipped };
      if (cfg.render) await renderOverlays(t, p.written, log);
      if (cfg.dryRun) return { changed: false, dryRun: true, head: t.head, attempts: attempt, changes: p.changes, skipped: p.skipped, diff: p.diff };
      const message = buildMessage({ changes: p.changes, origin: cfg.origin, skipCi: cfg.skipCi, template: cfg.template, shortSha: cfg.shortSha, trailers: cfg.trailers });
      const planMs = lap();
      const actions = [];
      for (const f of p.files) actions.push({ action: 'update' as const, filePath: f, content: await t.read(f), lastCommitId: await t.lastCommitOf(f) });
      const tm = { fetch: fetchMs, plan: planMs, commit: lap(), push: 0, result: 'error' as 'ok' | 'race' | 'error', backoff: undefined as number | undefined };
      timing.attempts.push(tm);
      const base = t.head;
      let refused: Error;
      try {
        const c = await gl.createCommit(project, { branch: cfg.branch, commitMessage: message, actions, authorName: cfg.author.name, authorEmail: cfg.author.email });
        tm.push = lap();
        tm.result = 'ok';
        return { changed: true, dryRun: false, commit: c.id, head: c.id, attempts: attempt, changes: p.changes, skipped: p.skipped };
      } catch (e) {
        tm.push = lap();
        if (!isGitopsError(e)) throw e;
        const status = (e as { status?: number }).status ?? 0;
        if (e.kind === 'auth' || (status !== 400 && e.kind !== 'transient' && e.kind !== 'timeout')) {
          throw fail[e.kind](e.code, e.message, { where: e.where, details: e.details, hint: `${e.hint ? `${e.hint}; ` : ''}nothing was committed`, cause: e });
        }
        refused = e;
      }
      // A refusal (400: a file changed since it was read, or the branch moved under the commit) waits here, before
      // the branch is read back: what is read after the wait is what the next attempt applies on. The wait is bump's
      // backoff (full jitter in units of this writer's shortest read + commit window): a refusal costs GitLab little
      // (Files::MultiService checks last_commit_id before it writes anything), but every loser of a burst re-reads,
      // re-plans and asks again; measured (bench/bump API rows, docs/commands/bump.md), retrying at once lost.
      const status = (refused as { status?: number }).status ?? 0;
      // the unit: a read-back, a plan and a commit, as this writer last measured them. The first attempt had no
      // read-back, and its plan was the process's first (the YAML and edit code compiled, every job of a burst
      // starting at once): it counts its commit request twice instead (measured: the first plan of 8 writers started
      // together took 0.5-0.9 s, a later one 25-60 ms; in units of the first, the losers slept 1-2 s per attempt)
      window = Math.min(window, attempt === 1 ? 2 * tm.push : Date.now() - attemptStart);
      if (status === 400 && attempt < cfg.maxAttempts && Date.now() + window <= cfg.deadline) {
        // holding the write-back lock: no wait (the other writers wait for us; see src/bump/bump.ts)
        const wait = lock ? 0 : Math.min(backoffMs(attempt, window), Math.max(0, cfg.deadline - Date.now() - window));
        log.debug(`commit refused (${refused.message}); reading ${cfg.branch} again${wait ? ` in ${wait} ms` : ''}`);
        lap();
        if (wait) await sleep(wait);
        tm.backoff = lap();
        attemptStart = Date.now();
      }
      // the branch now: moved (a conflict, or our own commit that landed before the answer was lost), or where it was.
      // Read with the files this commit wrote, in one round trip: each answer names the commit the branch was at
      // (commit_id) and holds what a re-apply needs (content, last_commit_id). Answers at different commits (the
      // branch moved between them) or a file gone: the branch alone, and the files again from it (moveTo).
      const readBack = async (): Promise<{ now?: string; fresh?: Map<string, RepoFile> }> => {
        const got = await Promise.all(p.files.map((f) => gl.getFile(project, f, cfg.branch)));
        if (got.length && got[0] && got.every((g) => g?.commitId === got[0]!.commitId)) return { now: got[0].commitId, fresh: new Map(p.files.map((f, i) => [f, got[i]!])) };
        return { now: await gl.branchHead(project, cfg.branch) };
      };
      let now: string | undefined;
      let fresh: Map<string, RepoFile> | undefined;
      try {
        ({ now, fresh } = await readBack());
      } catch (e2) {
        const e = refused as ReturnType<typeof fail.failed>;
        throw fail[e.kind](e.code, `${e.message}; the branch could not be read afterwards${e.kind === 'transient' || e.kind === 'timeout' ? ': the commit may or may not have landed' : ''}`, {
          where,
          details: isGitopsError(e2) ? [e2.message] : undefined,
          hint: `look at ${cfg.branch} before re-running (a re-run is safe: it finds the image already set)`,
          cause: e,
        });
      }
      if (!now) throw branchGone(cfg.branch, project);
      const e = refused as ReturnType<typeof fail.failed>;
      if (now === base) {
        // the branch did not move: a refusal of this commit itself, or a failure before GitLab made it
        if (e.kind === 'transient' && attempt < cfg.maxAttempts && Date.now() + 1000 < cfg.deadline) {
          log.warn(`the commit failed (${e.message}); ${cfg.branch} did not move, so it did not land: trying again`);
          await sleep(backoffMs(attempt, Math.min(window, Date.now() - attemptStart)));
          tm.backoff = lap();
          attemptStart = Date.now();
          // the local tree holds this attempt's edit: the files go back to what the branch holds
          await t.moveTo(now, p.files, fresh);
          fetchMs = lap();
          continue;
        }
        if (e.kind === 'timeout') {
          // GitLab may still be making it: say so, rather than that nothing was committed
          throw fail.timeout(e.code, `${e.message}; ${cfg.branch} had not moved when it was read afterwards, but GitLab may still finish the commit`, { where, hint: `look at ${cfg.branch} before re-running (a re-run is safe: it finds the image already set); check GitLab's health`, cause: e });
        }
        throw fail[e.kind](e.code, `${e.message}; ${cfg.branch} did not move: nothing was committed`, { where, hint: e.hint, cause: e });
      }
      if (e.kind !== 'failed') {
        // our commit may be the one that moved it: the newest commits since `base` by us with our message
        const recent = await gl.listCommits(project, { ref: `${base}..${now}`, max: 20 });
        const who = apiCommitterOf(await whoami());
        const mine = recent.find((c) => c.message.trim() === message.trim() && (!who || c.committerEmail.toLowerCase() === who));
        if (mine) {
          log.warn(`the commit did not answer (${e.message}), but ${mine.id.slice(0, 12)} on ${cfg.branch} is it: it landed`);
          return { changed: true, dryRun: false, commit: mine.id, head: now, attempts: attempt, changes: p.changes, skipped: p.skipped };
        }
      }
      tm.result = 'race';
      if (attempt >= cfg.maxAttempts) {
        throw fail.failed(BumpErrors.RACE_EXHAUSTED, `the commit was still refused after ${attempt} attempts: ${cfg.branch} kept moving`, {
          where,
          details: [e.message],
          hint: 'other jobs write to this branch heavily: raise --max-attempts, or serialise the jobs with a GitLab resource_group; nothing was committed',
        });
      }
      if (Date.now() + window > cfg.deadline) {
        throw fail.timeout(BumpErrors.TIMEOUT, `out of time after ${attempt} commit attempts: ${cfg.branch} kept moving`, { where, hint: 'raise --timeout, or serialise the jobs with a GitLab resource_group; nothing was committed' });
      }
      const reread = lap();
      if (status !== 400) {
        // moved, after a failure that was not a refusal (5xx, a lost answer): the same wait, then the branch again
        const wait = Math.min(backoffMs(attempt, window), Math.max(0, cfg.deadline - Date.now() - window));
        log.info(`${cfg.branch} moved to ${now.slice(0, 12)} (${e.message}; attempt ${attempt}/${cfg.maxAttempts}); re-applying on the new tip${wait ? ` in ${wait} ms` : ''}`);
        if (wait) await sleep(wait);
        tm.backoff = lap();
        attemptStart = Date.now();
        const again = await readBack();
        if (!again.now) throw branchGone(cfg.branch, project);
        ({ now, fresh } = again);
      } else log.info(`commit refused, ${cfg.branch} moved to ${now.slice(0, 12)} (${e.message}; attempt ${attempt}/${cfg.maxAttempts}); re-applying on the new tip`);
      await t.moveTo(now!, p.files, fresh);
      await guard.history.moved(now!);
      if (cfg.render) await t.closure(cfg.overlays);
      fetchMs = reread + lap();
    }
  } finally {
    // the lock is given back while the temp tree is cleaned up
    const released = lock?.release();
    await guard?.close();
    tree?.close();
    gl.close();
    await released;
    timing.total = Math.round(performance.now());
    const cpu = process.cpuUsage();
    timing.cpu = Math.round((cpu.user + cpu.system) / 1000);
    timing.requestMs = Math.round(timing.requestMs);
    log.debug(`bump timing ${JSON.stringify(timing)}`);
  }
}

const apiCommitterOf = (me: { email?: string; commitEmail?: string }) => (me.commitEmail || me.email)?.toLowerCase();

export type { Identity };
