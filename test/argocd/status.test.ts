/**
 * `gitops-ci status` end to end: real `bump` runs write the staging overlay back (trailers), the Argo CD double
 * deploys each commit; status reads both and prints what runs where (table, JSON, GitLab annotations report).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE, stopFixtures, type Fixture } from './fixture.js';
import { jobEnv, opsSetup, release, workDir } from './ops-fixture.js';

let fx: Fixture | undefined;
afterEach(async () => {
  fx = undefined;
  await stopFixtures();
});

describe('status', () => {
  it('prints per environment and image the digest, source commit, pipeline, config commit, deployed since, sync and health', async () => {
    fx = await opsSetup();
    await release(fx, 1);
    const two = await release(fx, 2);
    const r = await fx.cli(['status', '--repo', fx.repo, '--branch', 'main', '--json', '--app', 'staging=shovel-staging', '--app', 'production=shovel-production']);
    expect(r.code, r.all).toBe(0);
    const out = JSON.parse(r.stdout) as { environments: any[] };
    const staging = out.environments.find((e) => e.env === 'staging');
    expect(staging.images).toEqual([
      expect.objectContaining({ image: IMAGE, tag: two.tag, digest: two.digest, sourceCommit: two.source, sourceProject: 'shovel/shovel', pipelineId: two.pipeline, setBy: two.config }),
    ]);
    const history = fx.argo.app('shovel-staging').status.history;
    expect(staging.images[0].deployedSince).toBe(history.find((h: any) => h.revision === two.config).deployedAt);
    expect(staging.apps).toEqual([expect.objectContaining({ app: 'shovel-staging', sync: 'Synced', health: 'Healthy', revision: two.config })]);
    // production was never written back: no provenance, but Argo CD's state
    const production = out.environments.find((e) => e.env === 'production');
    expect(production.images[0].setBy).toBeUndefined();
    expect(production.apps[0]).toMatchObject({ app: 'shovel-production', sync: 'Synced', health: 'Healthy' });
  });

  it('prints a table, and writes a GitLab annotations report linking the Argo CD app, pipeline, commits and MRs', async () => {
    fx = await opsSetup();
    const one = await release(fx, 3);
    const cwd = workDir();
    const { runCli } = await import('../helpers/cli.js');
    const r = await runCli(['status', '--repo', fx.repo, '--env', 'staging', '--annotations', 'status.json'], { env: jobEnv(fx, '999', 'f'.repeat(40)), cwd });
    expect(r.code, r.all).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ENV\s+IMAGE\s+TAG\s+DIGEST\s+SOURCE COMMIT\s+PIPELINE\s+CONFIG COMMIT\s+DEPLOYED SINCE\s+ARGO CD$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`staging  ${IMAGE}`);
    expect(lines[1]).toContain(`#${one.pipeline}`);
    expect(lines[1]).toContain(one.source.slice(0, 8));
    expect(lines[1]).toContain(one.config.slice(0, 8));
    expect(lines[1]).toContain(`shovel-staging: Synced/Healthy @${one.config.slice(0, 8)}`);
    const report = JSON.parse(readFileSync(join(cwd, 'status.json'), 'utf8'));
    const links = report['gitops-ci status: staging'].map((l: any) => l.external_link);
    expect(links).toEqual(
      expect.arrayContaining([
        { label: 'Argo CD shovel-staging: Synced/Healthy', url: `${fx.argo.url}/applications/argocd/shovel-staging` },
        { label: `shovel-gitops: pipeline #${one.pipeline}`, url: `https://gitlab.example.com/shovel/shovel/-/pipelines/${one.pipeline}` },
        { label: `shovel-gitops: source commit ${one.source.slice(0, 8)}`, url: `https://gitlab.example.com/shovel/shovel/-/commit/${one.source}` },
        { label: `shovel-gitops: merge requests of ${one.source.slice(0, 8)}`, url: `https://gitlab.example.com/shovel/shovel/-/commit/${one.source}/merge_requests` },
      ]),
    );
  });

  it('an environment without an overlay is a usage error; a bad --app is listed with the other problems', async () => {
    fx = await opsSetup();
    const r = await fx.cli(['status', '--repo', fx.repo, '--env', 'qa']);
    expect(r.code, r.all).toBe(2);
    expect(r.stderr).toContain('ESTATUS_OVERLAY');
    const bad = await fx.cli(['status', '--repo', fx.repo, '--app', 'nope', '--env', 'Bad Env']);
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('2 configuration problems');
    expect(bad.stderr).toContain('ESTATUS_CONFIG');
  });
});
