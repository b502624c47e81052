/**
 * Pushing a write-back commit to a branch of our own (promote --via mr: gitops-ci/promote/<env>), never to the
 * branch under review: forced, but only over what we just saw there (--force-with-lease), skipped when the
 * branch already holds the same change on the same base, and put back as it was when what follows (the MR
 * API) fails. The race-safe push to the branch itself (retried on a moving branch, read back after a timeout)
 * is bump's loop (src/bump/bump.ts), which promote --via push goes through as well.
 */
import type { ErrorCode } from '../core/error-codes.js';
import { fail } from '../core/errors.js';
import { classifyGitFailure, tailLines } from '../git/errors.js';
import type { Checkout } from './checkout.js';

export interface OwnBranchPush {
  /** the commit the branch now holds (ours, or the same change found there) */
  commit: string;
  /** the branch's tip before, if it existed */
  old?: string;
  /** false when the branch already held the same change */
  pushed: boolean;
}

/** `code`: the error code of a refused push (the caller's catalogue) */
export async function pushOwnBranch(co: Checkout, branch: string, commit: string, o: { code: ErrorCode }): Promise<OwnBranchPush> {
  const { session, dir } = co;
  const ls = await session.must('fetch', ['ls-remote', '--heads', 'origin', `refs/heads/${branch}`], { cwd: dir, branch });
  const old = ls.trim().split(/\s+/)[0] || undefined;
  if (old && (await sameChange(co, old, commit))) return { commit: old, old, pushed: false };
  // force, but only our own branch, and only over what we just saw there
  const r = await session.run(['push', '--porcelain', '--no-verify', `--force-with-lease=refs/heads/${branch}:${old ?? ''}`, 'origin', `HEAD:refs/heads/${branch}`], { cwd: dir });
  if (r.code !== 0) {
    const e = classifyGitFailure({ op: 'push', stderr: r.stderr, stdout: r.stdout, where: co.remote.display, branch });
    if (e.kind === 'auth' || e.kind === 'transient' || e.kind === 'timeout') throw e;
    throw fail.failed(o.code, `the push of ${branch} was refused`, { where: `${co.remote.display} (${branch})`, details: tailLines(`${r.stdout}\n${r.stderr}`, 4), hint: `another run pushed ${branch} at the same time, or the branch is protected; re-run`, cause: e });
  }
  return { commit, old, pushed: true };
}

/** Puts our branch back to `old` (deleted when there was none), only over `ours`; returns what it did, for the log. */
export async function restoreOwnBranch(co: Checkout, branch: string, ours: string, old: string | undefined): Promise<{ ok: boolean; detail: string }> {
  const { session, dir } = co;
  // pushing `old` needs it here, and not as a shallow boundary: the server refuses a shallow update of a
  // commit no ref of its own reaches; with depth 2 the boundary is old's parent, an ancestor of BRANCH
  if (old) await session.run(['fetch', '--quiet', '--depth=2', '--filter=blob:none', '--no-tags', 'origin', old], { cwd: dir });
  const r = await session.run(['push', '--porcelain', '--no-verify', `--force-with-lease=refs/heads/${branch}:${ours}`, 'origin', `${old ?? ''}:refs/heads/${branch}`], { cwd: dir });
  if (r.code === 0) return { ok: true, detail: old ? `${branch} reset to ${old.slice(0, 12)} (what it held before this run)` : `${branch} removed again (this run created it)` };
  return { ok: false, detail: `could not restore ${branch} (${tailLines(`${r.stdout}\n${r.stderr}`, 4).join(' ')}): it holds ${ours.slice(0, 12)}; the next run reuses or replaces it` };
}

/**
 * `old` (the tip of our branch on the server) is the same change as `ours`: the same tree and parent, the same
 * committer (name and email: the write-back identity) and the same message but for the Gitops-Job trailer (the
 * job that made it). A commit someone else put there with the same files but their own message or committer
 * (trailers the merge would land on the branch) is not ours: it is replaced.
 */
async function sameChange(co: Checkout, old: string, ours: string): Promise<boolean> {
  const { session, dir } = co;
  const f = await session.run(['fetch', '--quiet', '--depth=1', '--filter=blob:none', '--no-tags', 'origin', old], { cwd: dir });
  if (f.code !== 0) return false;
  const info = async (c: string) => {
    const r = await session.run(['cat-file', 'commit', c], { cwd: dir });
    if (r.code !== 0) return undefined;
    const cut = r.stdout.indexOf('\n\n');
    const hdr = cut >= 0 ? r.stdout.slice(0, cut) : r.stdout;
    const message = cut >= 0 ? r.stdout.slice(cut + 2).replace(/^Gitops-Job: .*\n/m, '') : '';
    return { tree: /^tree (\S+)/m.exec(hdr)?.[1], parents: [...hdr.matchAll(/^parent (\S+)/gm)].map((m) => m[1]).join(' '), committer: /^committer (.*) <([^>]*)>/m.exec(hdr)?.slice(1).join(' '), message };
  };
  const a = await info(old);
  const b = await info(ours);
  return !!a && !!b && a.tree === b.tree && a.parents === b.parents && !!a.committer && a.committer === b.committer && a.message === b.message;
}
