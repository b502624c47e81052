/**
 * `argocd wait --allow-descendant` asks git whether the revision Argo CD reports descends from the commit
 * waited for. During a long wait other pipelines keep pushing to the branch, so a revision reported late can
 * be newer than every earlier fetch of the ancestry repo: each new question may fetch once more (a commit
 * still unknown after a fetch made for it is not on any branch). A local bare repo stands in for the config
 * repo (the fetch goes through src/git like any other).
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Ancestry, descendantChecker } from '../../src/argocd/ancestry.js';
import type { Application } from '../../src/argocd/types.js';
import { Logger } from '../../src/core/log.js';
import { freePort, startGitServer } from '../helpers/services.js';
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

describe('descendantChecker on a multi-source app', () => {
  // Argo CD's multi-source apps (spec.sources) list a chart repo or a values repo beside the config repo, and
  // status.sync.revisions holds one revision per source
  // (https://argo-cd.readthedocs.io/en/stable/user-guide/multiple_sources/). A revision of another repo cannot
  // descend from a config commit, and asking git would fetch that repo (maybe private, on another host).
  it("another source's revision is not a descendant and its repo is never fetched; the config source's is asked as before", async () => {
    const srv = await startGitServer();
    const lines: string[] = [];
    const log = new Logger({ color: false, sink: { out: () => undefined, err: (s) => void lines.push(s) } });
    const configUrl = srv.createRepo('group/config.git');
    const first = pushTree(srv.authUrl('group/config.git'), { 'a.txt': '1\n' });
    const second = pushTree(srv.authUrl('group/config.git'), { 'a.txt': '2\n' });
    // nothing listens there: a fetch would fail (exit 75), not answer
    const chartUrl = `http://127.0.0.1:${await freePort()}/charts/app.git`;
    const app = { metadata: { name: 'web' }, spec: { sources: [{ repoURL: chartUrl, path: 'chart' }, { repoURL: configUrl, path: 'overlays/production', ref: 'values' }] } } as unknown as Application;
    const env = { GIT_TERMINAL_PROMPT: '0', GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, GITOPS_CONFIG_REPO: `${configUrl.replace(/\.git$/, '')}` };
    const d = descendantChecker({ env, cwd: process.cwd(), log });
    try {
      expect(await d.isDescendant(first, 'b'.repeat(40), app, chartUrl)).toBe(false);
      expect(lines.join('')).toContain('is the revision of another source of the app');
      expect(await d.isDescendant(first, second, app, configUrl)).toBe(true);
      expect(await d.isDescendant(second, first, app, configUrl)).toBe(false);
    } finally {
      await d.cleanup();
      await srv.stop();
    }
  });
});
