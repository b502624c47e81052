/**
 * `argocd wait --allow-descendant` asks git whether the revision Argo CD reports descends from the commit
 * waited for. During a long wait other pipelines keep pushing to the branch, so a revision reported late can
 * be newer than every earlier fetch of the ancestry repo: each new question may fetch once more (a commit
 * still unknown after a fetch made for it is not on any branch). A local bare repo stands in for the config
 * repo (the fetch goes through src/git like any other).
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Ancestry } from '../../src/argocd/ancestry.js';
import { bareRepo, git, pushTree } from '../helpers/config-repo.js';

describe('Ancestry on a branch that keeps moving', () => {
  it('relates a revision pushed after earlier fetches, and refuses one on no branch; its temp repo is removed', async () => {
    const repo = bareRepo({ 'a.txt': '1\n' });
    const first = git(repo, ['rev-parse', 'refs/heads/main']);
    const a = new Ancestry(repo, { GIT_TERMINAL_PROMPT: '0' }, { cwd: process.cwd() });
    try {
      const second = pushTree(repo, { 'a.txt': '2\n' });
      expect(await a.isAncestor(first, second)).toBe(true);
      // the branch moves on twice after the first fetches (other pipelines' write-backs)
      pushTree(repo, { 'a.txt': '3\n' });
      const fourth = pushTree(repo, { 'a.txt': '4\n' });
      expect(await a.isAncestor(first, fourth)).toBe(true);
      expect(await a.isAncestor(fourth, second)).toBe(false);
      const fifth = pushTree(repo, { 'a.txt': '5\n' });
      expect(await a.isAncestor(second, fifth)).toBe(true);
      await expect(a.isAncestor(first, 'f'.repeat(40))).rejects.toMatchObject({ code: 'EARGOCD_ANCESTRY' });
    } finally {
      const dir = (a as unknown as { dir?: string }).dir;
      await a.cleanup();
      if (dir) expect(existsSync(dir)).toBe(false);
    }
  });
});
