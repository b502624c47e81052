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
import { readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { fail, GitopsError, isGitopsError } from '../core/errors.js';
import { writeFileAtomic, resolveInside } from '../core/fsutil.js';
import { removeTempDir, tempDir } from '../core/cleanup.js';
import type { Logger } from '../core/log.js';
import { SparseClone } from '../git/clone.js';
import { GitSession } from '../git/session.js';
import type { Remote } from '../git/url.js';
import { KustomizeErrors } from '../kustomize/errors.js';
import { renderOverlay } from '../kustomize/overlay.js';
import { redactRenderError } from '../render/diff.js';
import { checkoutReferences, KUSTOMIZATION_FILES } from '../bump/closure.js';

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

/** the error for a path that leads out of the clone */
export function outsideError(rel: string, where: string): GitopsError {
  return fail.usage(KustomizeErrors.OUTSIDE, `${rel} leads outside the config repo clone through a symlink; it is not read or written`, {
    where,
    hint: 'the config repo must keep its overlays and the files they pin images in inside the repo (no symlinks out of it)',
  });
}

export class Checkout {
  readonly session: GitSession;
  readonly clone: SparseClone;
  readonly remote: Remote;
  readonly branch: string;
  private readonly parent: string | undefined;
  private readonly log: Logger;
  /** the directories checked out so far (overlays and what they reference) */
  private known: string[] = [];

  private constructor(o: { session: GitSession; clone: SparseClone; parent: string | undefined; remote: Remote; branch: string; log: Logger }) {
    this.session = o.session;
    this.clone = o.clone;
    this.parent = o.parent;
    this.remote = o.remote;
    this.branch = o.branch;
    this.log = o.log;
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

  /** the absolute path of a repo-relative path, after resolveInside says it stays in the clone; else EKUSTOMIZE_OUTSIDE */
  async inside(rel: string, where = rel): Promise<string> {
    const r = await resolveInside(this.dir, rel);
    if (!r.inside) throw outsideError(rel, where);
    return join(this.dir, rel);
  }

  async read(rel: string): Promise<string> {
    return readFile(await this.inside(rel), 'utf8');
  }

  /** write a repo-relative file (atomically: a failed write leaves the file as it was) */
  async write(rel: string, text: string): Promise<void> {
    await writeFileAtomic(await this.inside(rel), text);
  }

  /** is `rel` a regular file in the work tree (checked inside the clone first) */
  async isFile(rel: string): Promise<boolean> {
    const abs = await this.inside(rel);
    return !!(await stat(abs).catch(() => undefined))?.isFile();
  }

  /** 'tree' | 'blob' | undefined for a path in HEAD (a symlinked directory is a blob, not a tree) */
  typeOf(rel: string): Promise<'tree' | 'blob' | undefined> {
    return this.clone.typeOf(rel);
  }

  /**
   * The kustomization file of an overlay (repo-relative), or undefined. Every candidate name is checked inside
   * the clone before anything looks at it; several of them is a usage error.
   */
  async kustomizationOf(overlay: string, several: (found: string[]) => GitopsError): Promise<string | undefined> {
    const found: string[] = [];
    for (const f of KUSTOMIZATION_FILES) {
      const rel = posix.join(overlay, f);
      await this.inside(rel, overlay);
      if (await this.isFile(rel)) found.push(f);
    }
    if (found.length > 1) throw several(found);
    return found[0] ? posix.join(overlay, found[0]) : undefined;
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
   * Render an overlay as Argo CD would (`kustomize build`), after resolveInside; errors name paths relative to
   * the clone, and generator literals (Secret values) quoted by kustomize are redacted.
   */
  async render(overlay: string, when?: string): Promise<string> {
    const abs = await this.inside(overlay);
    try {
      return await this.log.section(`kustomize build ${overlay}${when ? ` (${when})` : ''}`, () => renderOverlay(abs), { collapsed: true });
    } catch (e) {
      if (!isGitopsError(e)) throw e;
      const rel = (s: string) => redactRenderError(s.split(`${this.dir}/`).join(''));
      throw new GitopsError({ kind: e.kind, code: e.code, message: rel(e.message), where: overlay, hint: e.hint, cause: e, details: e.details?.map(rel) });
    }
  }

  /**
   * The text of a repo-relative file at commit `rev`. HEAD's work tree is read through read(); another commit
   * is read from git's objects (fetched on demand), refusing a symlink entry as read() would.
   */
  async readAt(rev: string, rel: string): Promise<string | undefined> {
    if (rev === (await this.clone.head())) return (await this.isFile(rel)) ? this.read(rel) : undefined;
    // a symlink in git is a blob holding its target: followed while it stays in the repo, as on disk
    let path = rel;
    for (let hop = 0; hop < 8; hop++) {
      const ls = await this.session.run(['ls-tree', '-z', rev, '--', path], { cwd: this.dir });
      if (ls.code !== 0) return undefined;
      const entry = ls.stdout.split('\0').find((l) => l.endsWith(`\t${path}`));
      if (!entry) return undefined;
      const [mode, type] = entry.split(/\s/);
      if (type !== 'blob') return undefined;
      // blobs come on demand from the promisor remote: `show` may reach the network
      const text = await this.session.must('fetch', ['show', `${rev}:${path}`], { cwd: this.dir, branch: this.branch });
      if (mode !== '120000') return text;
      const next = posix.normalize(posix.join(posix.dirname(path), text));
      if (posix.isAbsolute(text) || next === '..' || next.startsWith('../')) throw outsideError(rel, `${rel} at ${rev.slice(0, 12)}`);
      path = next;
    }
    throw outsideError(rel, `${rel} at ${rev.slice(0, 12)} (a symlink loop)`);
  }
}
