/**
 * The one write-back checkout: bump, promote (--via push and --via mr) and preview all clone, read, edit,
 * render, commit and push the config repo through this module, so that what it guarantees holds for all of
 * them at once:
 *
 * - the clone lives in a temp dir made by src/core/cleanup.ts (removed on SIGTERM/SIGINT, removed by close());
 * - every file read, written or rendered goes through resolveInside() first: a kustomization, an overlay dir or
 *   a directory on the way that is a symlink out of the clone is refused (EKUSTOMIZE_OUTSIDE, exit 2) before
 *   anything reads it;
 * - the git session (credentials through the environment, never argv) is opened and closed here.
 *
 * The clone itself is src/git/clone.ts (shallow, blob-filtered, sparse); which file in an overlay holds the
 * images, and how it is edited and rendered, is the edit layer's (src/edit/). The push policies (bump's
 * race-safe retries, promote's own branch with a lease) are in src/writeback/push.ts.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTempDir, tempDir } from '../core/cleanup.js';
import type { Logger } from '../core/log.js';
import { SparseClone } from '../git/clone.js';
import { GitSession } from '../git/session.js';
import type { Remote } from '../git/url.js';
import { checkoutReferences } from '../bump/closure.js';
import { LocalTree } from './tree.js';

// the local tree (resolveInside, read/write, locate, render) is src/writeback/tree.ts, shared with the API write-back
export { autoKind, KIND_CHOICES, kindFlag, LocalTree, outsideError, type KindChoice, type Located } from './tree.js';

export interface CheckoutOptions {
  remote: Remote;
  branch: string;
  /** the directories to check out (overlays); what they reference is added by closure() */
  paths: string[];
  env: NodeJS.ProcessEnv;
  log: Logger;
  sshAcceptNew: boolean;
  /** Date.now() ms */
  deadline: number;
  /** clone here and keep it (debugging, tests); else a temp dir through core/cleanup, removed by close() */
  workdir?: string;
  /** names the temp dir and the log section: bump, promote, preview... */
  purpose: string;
}

export class Checkout extends LocalTree {
  readonly session: GitSession;
  readonly clone: SparseClone;
  readonly remote: Remote;
  readonly branch: string;
  private readonly parent: string | undefined;
  /** the directories checked out so far (overlays and what they reference) */
  private known: string[] = [];

  private constructor(o: { session: GitSession; clone: SparseClone; parent: string | undefined; remote: Remote; branch: string; log: Logger }) {
    super(o.log);
    this.session = o.session;
    this.clone = o.clone;
    this.parent = o.parent;
    this.remote = o.remote;
    this.branch = o.branch;
  }

  /** the clone's root directory */
  get dir(): string {
    return this.clone.dir;
  }

  /**
   * Open a git session and clone `branch` (shallow, blob-filtered, sparse: `paths`). `verify` runs inside the
   * clone's log section (check the overlays before anything else happens). On any failure the session is
   * closed and the temp dir removed.
   */
  static async open(o: CheckoutOptions, verify?: (c: Checkout) => Promise<void>): Promise<Checkout> {
    const session = await GitSession.open(o.remote, { env: o.env, log: o.log, sshAcceptNew: o.sshAcceptNew, deadline: o.deadline });
    let parent: string | undefined;
    try {
      parent = o.workdir ? undefined : tempDir(`gitops-ci-${o.purpose}-`); // removed on SIGTERM/SIGINT too
      const dir = o.workdir ?? join(parent!, 'config');
      return await o.log.section(`clone ${o.remote.display} ${o.branch} (shallow, sparse: ${o.paths.join(' ')})`, async () => {
        const clone = await SparseClone.clone(session, { dir, branch: o.branch, paths: o.paths });
        const c = new Checkout({ session, clone, parent, remote: o.remote, branch: o.branch, log: o.log });
        c.known = [...o.paths];
        if (verify) await verify(c);
        return c;
      });
    } catch (e) {
      await session.close();
      removeTempDir(parent);
      throw e;
    }
  }

  /** close the git session and remove the temp dir (a --workdir is kept) */
  async close(): Promise<void> {
    try {
      await this.session.close();
    } finally {
      removeTempDir(this.parent);
    }
  }

  /** 'tree' | 'blob' | undefined for a path in HEAD (a symlinked directory is a blob, not a tree) */
  typeOf(rel: string): Promise<'tree' | 'blob' | undefined> {
    return this.clone.typeOf(rel);
  }

  /**
   * Whether `rel`, a directory of the cone asked for at open(), is a directory in HEAD, answered from the work
   * tree without a git process: valid right after open() (in its `verify`), when the checkout has just written
   * HEAD's cone and nothing else. A tree of HEAD is a directory there, every step of the way a real directory;
   * a blob is a file or a symlink (a symlinked directory is a blob, as typeOf() says); a path HEAD lacks is
   * missing. (A submodule is an empty directory: it holds no file to edit, which the caller finds next.)
   */
  async isTreeInCheckout(rel: string): Promise<boolean> {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const st = await lstat(join(this.dir, ...parts.slice(0, i))).catch(() => undefined);
      if (!st?.isDirectory()) return false;
    }
    return true;
  }

  /**
   * Check out what `overlays` reference, transitively (what `kustomize build` reads). Directories already
   * checked out are re-read from disk; git is asked only about references that are new.
   */
  async closure(overlays: string[]): Promise<string[]> {
    for (const o of overlays) await this.inside(o);
    const dirs = await checkoutReferences(overlays, { root: this.dir, typeOf: (p) => this.clone.typeOf(p), add: (d) => this.clone.addSparse(d) }, this.known);
    this.known = dirs;
    this.log.debug(`sparse checkout: ${dirs.join(' ')}`);
    return dirs;
  }

  /**
   * Move the work tree to `rev` (a commit: fetched first, depth 1, when it is not here; a branch name: back to
   * it). Blobs of the sparse paths come on demand. Used to read a source at the revision Argo CD runs.
   */
  async switchTo(rev: string): Promise<void> {
    if (/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(rev) && (await this.session.run(['cat-file', '-e', `${rev}^{commit}`], { cwd: this.dir })).code !== 0) {
      const r = await this.session.run(['fetch', '--quiet', '--depth=1', '--filter=blob:none', '--no-tags', 'origin', rev], { cwd: this.dir });
      if (r.code !== 0) throw new Error(r.stderr.trim());
    }
    await this.session.must('fetch', ['checkout', '--quiet', /^[0-9a-f]{40}/.test(rev) ? '--detach' : '--no-guess', rev, '--'], { cwd: this.dir, branch: this.branch });
  }
}
