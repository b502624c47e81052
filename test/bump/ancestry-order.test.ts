/**
 * compareCommits (src/git/ancestry.ts), which the stale guard asks of the source repo for every guarded image:
 * one `rev-parse` and one `merge-base` answer what `cat-file`, `rev-parse` and `merge-base --is-ancestor` both
 * ways answered before. Every answer on real repositories: same, older, newer, diverged, and unknown for a
 * commit that is not there and for a link beyond a shallow clone's boundary.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareCommits, setAncestryEnv } from '../../src/git/ancestry.js';
import { tmp } from '../helpers/services.js';

const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.test' };
const git = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, env }).toString().trim();
const commit = (cwd: string, msg: string) => {
  git(cwd, ['commit', '-q', '--allow-empty', '-m', msg]);
  return git(cwd, ['rev-parse', 'HEAD']);
};

describe('compareCommits', () => {
  setAncestryEnv(process.env);
  const repo = tmp('gci-anc-');
  git(repo, ['init', '-q', '-b', 'main']);
  const c1 = commit(repo, '1');
  const c2 = commit(repo, '2');
  const c3 = commit(repo, '3');
  git(repo, ['checkout', '-q', '-b', 'side', c1]);
  const s1 = commit(repo, 'side');
  git(repo, ['checkout', '-q', 'main']);

  it('same, older, newer, diverged, in a full clone', async () => {
    expect(await compareCommits(repo, c2, c2)).toBe('same');
    expect(await compareCommits(repo, c2.slice(0, 10), c2)).toBe('same');
    expect(await compareCommits(repo, c1, c3)).toBe('older');
    expect(await compareCommits(repo, c3.slice(0, 8), c1)).toBe('newer');
    expect(await compareCommits(repo, s1, c3)).toBe('diverged');
    expect(await compareCommits(repo, c2, s1)).toBe('diverged');
  });

  it('unknown: a commit the repo does not hold, a malformed name, a repo that is none', async () => {
    expect(await compareCommits(repo, c1, 'f'.repeat(40))).toBe('unknown');
    expect(await compareCommits(repo, 'HEAD', c1)).toBe('unknown');
    expect(await compareCommits(tmp('gci-anc-none-'), c1, c2)).toBe('unknown');
  });

  it('in a shallow clone: what the history at hand shows, unknown where the link is beyond the boundary', async () => {
    const shallow = join(tmp('gci-anc-sh-'), 's');
    git(repo, ['branch', '-q', 'both', s1]);
    execFileSync('git', ['clone', '-q', '--depth=1', '--no-single-branch', `file://${repo}`, shallow], { env });
    // c3 (main) and s1 (side) are both boundaries: their link (c1) is not here
    expect(await compareCommits(shallow, s1, c3)).toBe('unknown');
    expect(await compareCommits(shallow, c3, c3)).toBe('same');
    git(shallow, ['fetch', '-q', '--deepen=1', 'origin', 'main']);
    expect(await compareCommits(shallow, c2, c3)).toBe('older');
    expect(await compareCommits(shallow, c3, c2)).toBe('newer');
  });
});
