/**
 * 20 `gitops-ci bump` processes at once, each setting a different image on the same branch of the same
 * overlay: every one lands, as its own commit, none lost, no force push. They race (--server-lock off): the loop
 * that keeps a write correct without any lock (taking turns through the server's lock: test/bump/server-lock.test.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { runCli } from '../helpers/cli.js';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { readImages } from '../../src/kustomize/edit.js';
import { configRepo, jobEnv, logOf, PROD, show } from './fixture.js';

let srv: GitServer;
beforeAll(async () => {
  srv = await startGitServer();
});
afterAll(() => srv?.stop());

it('20 concurrent bumps of different images on one branch: 20 commits, all 20 images in the file', async () => {
  const r = configRepo(srv);
  const N = 20;
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `registry.example.com/team/svc-${String(i).padStart(2, '0')}:build-${i}`], {
        env: jobEnv(srv, { GITOPS_SERVER_LOCK: 'off', CI_PROJECT_PATH: `team/svc-${i}`, CI_PIPELINE_ID: String(5000 + i), CI_COMMIT_SHA: String(i).padStart(40, 'a') }),
        timeoutMs: 170_000,
      }),
    ),
  );
  const failed = results.filter((x) => x.code !== 0);
  expect(failed.map((f) => f.all).join('\n----\n')).toBe('');
  const images = readImages(show(r.path, `${PROD}/kustomization.yaml`), 'kustomization.yaml');
  for (let i = 0; i < N; i++) {
    expect(images.find((e) => e.name === `registry.example.com/team/svc-${String(i).padStart(2, '0')}`)?.newTag).toBe(`build-${i}`);
  }
  const commits = logOf(r.path, `${r.head}..main`, '%s');
  expect(commits).toHaveLength(N);
  for (const s of commits) expect(s).toMatch(/^\[skip ci\] bump svc-\d\d to build-\d+ in production$/);
  // linear history on top of the seed: nobody force-pushed over anybody
  expect(execFileSync('git', ['-C', r.path, 'rev-list', '--merges', '--count', 'main']).toString().trim()).toBe('0');
  expect(logOf(r.path, 'main').at(-1)).toBe(r.head);
  // the retries really happened
  expect(results.some((x) => /push rejected, main moved/.test(x.stderr))).toBe(true);
}, 180_000);
