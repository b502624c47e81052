/**
 * A minimal working copy of one branch of the config repo: shallow (depth 1), blob-filtered
 * (--filter=blob:none: commits and trees only, blobs on demand) and sparse (cone mode: only the overlays and
 * the bases they reference are checked out, hence only their blobs fetched). Its cost follows the size of
 * what we edit, not the repo's history or size.
 *
 * The index is sparse (`index.sparse`, git ≥ 2.32; older git ignores the setting): outside the cone it holds
 * one entry per directory instead of one per file, so add/commit/reset on a 20,000-file repo read and write
 * a few dozen entries, not 20,000. Under contention (many bumps on one small runner) that is most of their
 * local CPU.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../core/errors.js';
import { classifyGitFailure, isPushRace, tailLines } from './errors.js';
import type { GitSession } from './session.js';

/** blobs up to this size come with a fetch of new commits (see resetToRemoteTip); larger ones on demand */
const FETCH_BLOB_LIMIT = '256k';

export interface Identity {
  name: string;
  email: string;
}

/**
 * A push refused because the branch moved: `collided` when another push reached the server at the same moment
 * (refused at the ref update: `cannot lock ref`, `failed to update ref`, GitLab's `incorrect old value`), not
 * when the branch had moved before this push began (`fetch first`, `non-fast-forward`).
 */
export type PushOutcome = { ok: true } | { ok: false; race: true; collided: boolean; detail: string[] };

export interface LogEntry {
  sha: string;
  trailers: string;
  /** who made the commit (the stale guard trusts trailers only from the write-back identity) */
  committer: Identity;
}

export class SparseClone {
  readonly dir: string;
  readonly branch: string;
  private readonly git: GitSession;

  private constructor(git: GitSession, dir: string, branch: string) {
    this.git = git;
    this.dir = dir;
    this.branch = branch;
  }

  /**
   * clone `branch` into `dir` (which must not exist or be empty) with `paths` checked out. Two git processes:
   * the clone, and the checkout that fetches the blobs of the sparse paths in one batch. The cone is written
   * here (`.git/info/sparse-checkout`, in the format `git sparse-checkout set --cone` writes, with
   * core.sparseCheckout and core.sparseCheckoutCone given to the clone) instead of by a `sparse-checkout set`
   * process; a path that git would have to escape there goes through `sparse-checkout set` as before.
   */
  static async clone(git: GitSession, o: { dir: string; branch: string; paths: string[] }): Promise<SparseClone> {
    const cone = conePatterns(o.paths);
    // no auto-maintenance: it would start one more process after every fetch and commit of a short-lived clone
    await git.must('clone', ['clone', '--config=index.sparse=true', '--config=maintenance.auto=false', '--config=gc.auto=0', ...(cone ? ['--config=core.sparseCheckout=true', '--config=core.sparseCheckoutCone=true'] : []), '--quiet', '--no-checkout', '--depth=1', '--filter=blob:none', '--single-branch', '--no-tags', `--branch=${o.branch}`, '--', git.remote.url, o.dir], { branch: o.branch });
    const c = new SparseClone(git, o.dir, o.branch);
    if (cone) {
      await mkdir(join(o.dir, '.git', 'info'), { recursive: true });
      await writeFile(join(o.dir, '.git', 'info', 'sparse-checkout'), cone);
    } else await c.local(['sparse-checkout', 'set', '--cone', '--', ...o.paths]);
    // fetches the blobs of the sparse paths in one batch
    await c.remoteOp('fetch', ['checkout', '--quiet', o.branch]);
    return c;
  }

  /** git in the clone, for local operations (no network expected): failures are plain errors */
  async local(args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const r = await this.git.run(args, { cwd: this.dir, ...o });
    if (r.code !== 0) throw fail.failed('EGIT_FAILED', `git ${args[0]} failed in the config repo clone`, { where: this.git.remote.display, details: tailLines(r.stderr) });
    return r.stdout;
  }

  /** git in the clone for an operation that may reach the remote (lazy blob fetches, fetch) */
  private async remoteOp(op: 'fetch', args: string[], o: { deadline?: number } = {}): Promise<string> {
    return this.git.must(op, args, { cwd: this.dir, branch: this.branch, ...o });
  }

  async addSparse(paths: string[]): Promise<void> {
    if (!paths.length) return;
    const r = await this.git.run(['sparse-checkout', 'add', '--', ...paths], { cwd: this.dir });
    if (r.code !== 0) throw classifyGitFailure({ op: 'fetch', stderr: r.stderr, where: this.git.remote.display, branch: this.branch });
  }

  /**
   * The commit HEAD names. Read from the repository's files as git keeps them (gitrepository-layout(5): HEAD
   * holds a commit or `ref: refs/heads/<b>`, a loose ref holds its commit) rather than by a `rev-parse`
   * process; anything else (a packed ref, another ref storage) is asked of git.
   */
  async head(): Promise<string> {
    try {
      const gitDir = join(this.dir, '.git');
      let v = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
      const ref = /^ref: (refs\/heads\/[^\s]+)$/.exec(v)?.[1];
      if (ref && !ref.split('/').some((p) => p === '..' || p === '.')) v = readFileSync(join(gitDir, ref), 'utf8').trim();
      if (/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(v)) return v;
    } catch {
      /* not a loose ref: git knows */
    }
    return (await this.local(['rev-parse', 'HEAD'])).trim();
  }

  /** 'tree' | 'blob' | undefined for a path in HEAD (trees are always present in a blob-filtered clone) */
  async typeOf(path: string): Promise<'tree' | 'blob' | undefined> {
    const r = await this.git.run(['cat-file', '-t', `HEAD:${path}`], { cwd: this.dir });
    const t = r.stdout.trim();
    return r.code === 0 && (t === 'tree' || t === 'blob') ? t : undefined;
  }

  /**
   * Move to the branch's current tip on the remote, dropping our local commit and edits. Returns the tip.
   *
   * The fetch is not `--depth=1`: the new commits attach to the history already here, so history read or
   * deepened for the stale guard stays valid and is not fetched again on every retry. What is fetched is
   * what was pushed since our last look: its commits and trees, and its blobs up to a size (the edited
   * files of the other writers), so that the reset that follows has what the sparse checkout needs at
   * hand instead of asking the server for it in a second round trip (which blob:none would make).
   */
  async resetToRemoteTip(o: { deadline?: number } = {}): Promise<string> {
    const tip = await this.fetchTip(o);
    // only tracked files are ever edited: reset --hard is enough (no clean)
    await this.remoteOp('fetch', ['reset', '--quiet', '--hard', tip], o);
    return tip;
  }

  /**
   * Fetch the branch's tip (see resetToRemoteTip) without touching the work tree; returns the tip. Only the
   * commits pushed since the last look come (the clone's shallow history is extended, not fetched again), with
   * the blob filter kept. The new tip is read from fetch's own report of the ref update (full object names
   * with core.abbrev=no): one git process less per retry; `rev-parse` only when fetch did not name it.
   */
  async fetchTip(o: { deadline?: number } = {}): Promise<string> {
    const r = await this.git.run(['-c', 'core.abbrev=no', '-c', 'advice.fetchShowForcedUpdates=false', 'fetch', '--no-progress', `--filter=blob:limit=${FETCH_BLOB_LIMIT}`, '--no-tags', '--no-write-fetch-head', '--no-show-forced-updates', 'origin', `+refs/heads/${this.branch}:refs/remotes/origin/${this.branch}`], { cwd: this.dir, ...o });
    if (r.code !== 0) throw classifyGitFailure({ op: 'fetch', stderr: r.stderr, stdout: r.stdout, where: this.git.remote.display, branch: this.branch });
    // ` + <old>...<new> main -> origin/main (forced update)`, `   <old>..<new>  main -> origin/main`, ` * [new branch] …`
    const moved = new RegExp(`^ [ +] [0-9a-f]{40,64}\\.\\.\\.?([0-9a-f]{40,64}) +${this.branch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +-> `, 'm').exec(r.stderr);
    if (moved) return moved[1]!;
    return (await this.local(['rev-parse', `refs/remotes/origin/${this.branch}`])).trim();
  }

  /** the branch's tip on the remote (ls-remote: one request, nothing fetched); undefined when the branch is gone */
  async remoteTip(o: { deadline?: number } = {}): Promise<string | undefined> {
    const out = await this.git.must('ls-remote', ['ls-remote', '--heads', 'origin', `refs/heads/${this.branch}`], { cwd: this.dir, branch: this.branch, ...o });
    return /^([0-9a-f]{40,64})\s/.exec(out)?.[1];
  }

  /** true when `a` is an ancestor of (or equal to) `b` in the history fetched so far */
  async isAncestor(a: string, b: string): Promise<boolean> {
    const r = await this.git.run(['merge-base', '--is-ancestor', a, b], { cwd: this.dir });
    return r.code === 0;
  }

  /**
   * commit `files` as `author`, made by `committer` (the write-back identity; default: the author); returns
   * the new commit. One git process: `commit --include` stages the files into the (sparse) index and commits
   * (not `--only`, which builds a temporary full index: 20,000 entries on the bench repo), and with
   * core.abbrev=no its summary line names the full commit, so no `rev-parse` follows. `added`: some of `files`
   * are new or removed (a whole-directory write), staged with `git add --all` first.
   */
  async commit(files: string[], message: string, author: Identity, committer: Identity = author, o: { added?: boolean } = {}): Promise<string> {
    const env = { GIT_AUTHOR_NAME: author.name, GIT_AUTHOR_EMAIL: author.email, GIT_COMMITTER_NAME: committer.name, GIT_COMMITTER_EMAIL: committer.email };
    // `commit --include` knows only tracked paths: files created or removed (review up/down) are staged first
    if (o.added) await this.local(['add', '--all', '--', ...files]);
    const out = await this.local(['-c', 'commit.gpgsign=false', '-c', 'core.abbrev=no', 'commit', '--include', '--no-verify', '--no-status', '--cleanup=verbatim', '-F', '-', '--', ...files], { input: message, env });
    // `[main 0123…] subject` (`[detached HEAD 0123…]`, `[main (root-commit) 0123…]`)
    return /^\[[^\n]*? ([0-9a-f]{40,64})\] /.exec(out)?.[1] ?? this.head();
  }

  /** push HEAD to the branch, never forced; a rejection because the branch moved is returned, not thrown */
  async push(o: { pushOptions?: string[]; deadline?: number } = {}): Promise<PushOutcome> {
    const args = ['push', '--porcelain', '--no-verify', ...(o.pushOptions ?? []).flatMap((p) => ['-o', p]), 'origin', `HEAD:refs/heads/${this.branch}`];
    const r = await this.git.run(args, { cwd: this.dir, deadline: o.deadline });
    if (r.code === 0) return { ok: true };
    const text = `${r.stdout}\n${r.stderr}`;
    // a hook or protected branch also reports `[remote rejected]`; only the branch-moved reasons are a race
    if (isPushRace(text) && !/pre-receive hook declined|protected branch/i.test(text)) {
      return { ok: false, race: true, collided: /cannot lock ref|failed to update ref|incorrect old value|failed to lock/i.test(text), detail: tailLines(text, 4) };
    }
    throw classifyGitFailure({ op: 'push', stderr: r.stderr, stdout: r.stdout, where: this.git.remote.display, branch: this.branch });
  }

  async isShallow(): Promise<boolean> {
    return (await this.local(['rev-parse', '--is-shallow-repository'])).trim() === 'true';
  }

  /** fetch `n` more commits of history behind the shallow boundary (commits and trees only) */
  async deepen(n: number): Promise<void> {
    await this.remoteOp('fetch', ['fetch', '--quiet', `--deepen=${n}`, '--filter=blob:none', '--no-tags', 'origin', `refs/heads/${this.branch}`]);
  }

  /**
   * Commits that touched `path`, newest first, with their trailers; within the history fetched so far.
   * With `since`, only the commits after it (`since..HEAD`).
   */
  async logTrailers(path: string, max: number, since?: string): Promise<LogEntry[]> {
    const out = await this.local(['log', `-n${max}`, '--format=%H%x1f%cn%x1f%ce%x1f%(trailers:only,unfold)%x1e', since ? `${since}..HEAD` : 'HEAD', '--', path]);
    return out
      .split('\x1e')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        const [sha, name, email, trailers] = s.split('\x1f');
        return { sha: sha!.trim(), committer: { name: name ?? '', email: email ?? '' }, trailers: trailers ?? '' };
      });
  }

  async commitCount(): Promise<number> {
    return Number((await this.local(['rev-list', '--count', 'HEAD'])).trim());
  }
}

/**
 * The cone-mode pattern file `git sparse-checkout set --cone -- <paths>` writes (its sorted parents, each with
 * its files only, then the sorted directories taken whole; a directory under another taken whole is left out),
 * or undefined when a path holds a character git would escape or refuse there (then git writes it).
 */
export function conePatterns(paths: string[]): string | undefined {
  const dirs = paths.map((p) => p.replace(/^\/+|\/+$/g, ''));
  if (!dirs.length || dirs.some((d) => !d || !/^[A-Za-z0-9._@+=,~-]+(\/[A-Za-z0-9._@+=,~-]+)*$/.test(d) || d.split('/').some((s) => s === '.' || s === '..'))) return undefined;
  const whole = [...new Set(dirs)].filter((d, _, all) => !all.some((a) => a !== d && d.startsWith(`${a}/`))).sort();
  const parents = new Set<string>();
  for (const d of whole) {
    const parts = d.split('/');
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join('/'));
  }
  const inWhole = (p: string) => whole.some((w) => p === w || p.startsWith(`${w}/`));
  return ['/*', '!/*/', ...[...parents].filter((p) => !inWhole(p)).sort().flatMap((p) => [`/${p}/`, `!/${p}/*/`]), ...whole.map((w) => `/${w}/`)].join('\n') + '\n';
}
