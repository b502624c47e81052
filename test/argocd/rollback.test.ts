/**
 * `gitops-ci rollback` and GitLab's "Rollback environment" button, end to end: real `bump` runs write the
 * staging overlay back, the Argo CD double deploys each (its history is what "verified" means), then the
 * rollback pushes a new write-back commit; a re-run of an old deploy job is refused, or rolls back with
 * GITOPS_ON_RERUN=rollback, and a late older pipeline is still skipped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { git } from '../helpers/config-repo.js';
import { runCli } from '../helpers/cli.js';
import { IMAGE, readDotenv, STAGING, stopFixtures, tmpFile, type Fixture } from './fixture.js';
import { digestOf, jobEnv, opsSetup, release, sourceOf } from './ops-fixture.js';

let fx: Fixture | undefined;
afterEach(async () => {
  fx = undefined;
  await stopFixtures();
});

const overlayAt = (f: Fixture, rev = 'refs/heads/main') => git(f.repo, ['show', `${rev}:${STAGING}/kustomization.yaml`]);
const messageAt = (f: Fixture, rev = 'refs/heads/main') => git(f.repo, ['log', '-1', '--format=%B', rev]);

describe('rollback', () => {
  it('returns staging to the verified state before the current one with a new write-back commit, provenance carried over, and Argo CD deploys it', async () => {
    fx = await opsSetup();
    const one = await release(fx, 1);
    const two = await release(fx, 2);
    const env = tmpFile('rollback.env');
    const r = await fx.cli(['rollback', '--repo', fx.repo, '--branch', 'main', '--env', 'staging', '--app', 'shovel-staging', '--dotenv', env]);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`rolled staging back to ${one.config.slice(0, 12)}`);
    const head = fx.tip();
    // a new commit on top, not a revert: the history of two stays, its parent is two's commit
    expect(git(fx.repo, ['rev-parse', `${head}^`])).toBe(two.config);
    expect(overlayAt(fx)).toContain(`digest: ${one.digest}`);
    expect(overlayAt(fx)).not.toContain(two.digest);
    const msg = messageAt(fx);
    expect(msg).toMatch(new RegExp(`^\\[skip ci\\] rollback shovel-gitops:sha256:1{12} in staging to ${one.config.slice(0, 12)}`));
    expect(msg).toContain(`Gitops-Rollback-To: ${one.config}`);
    expect(msg).toContain(`Gitops-Source-Commit: ${one.source}`);
    expect(msg).toContain(`Gitops-Pipeline-Id: ${one.pipeline}`);
    expect(readDotenv(env)).toMatchObject({ GITOPS_ROLLBACK_TO: one.config, GITOPS_CHANGED: 'true', GITOPS_COMMIT_SHA: head });
    // Argo CD deploys the rollback, and status shows the old build running again
    const w = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', head, '--timeout', '60s']);
    expect(w.code, w.all).toBe(0);
    const s = await fx.cli(['status', '--repo', fx.repo, '--env', 'staging', '--app', 'staging=shovel-staging', '--json']);
    expect(s.code, s.all).toBe(0);
    expect(JSON.parse(s.stdout).environments[0].images[0]).toMatchObject({ digest: one.digest, sourceCommit: one.source, pipelineId: one.pipeline, setBy: head });
  }, 180_000);

  it('--to takes a config commit or a digest; a state Argo CD never deployed is refused (exit 1), nothing pushed', async () => {
    fx = await opsSetup();
    const one = await release(fx, 1);
    const two = await release(fx, 2);
    // three was pushed but Argo CD never ran it (no wait, no refresh, polling is off)
    const three = await release(fx, 3, { wait: false });
    const four = await release(fx, 4);
    const tip = fx.tip();
    const refused = await fx.cli(['rollback', '--repo', fx.repo, '--env', 'staging', '--app', 'shovel-staging', '--to', three.config.slice(0, 10)]);
    expect(refused.code, refused.all).toBe(1);
    expect(refused.stderr).toContain('EROLLBACK_NOT_VERIFIED');
    expect(fx.tip()).toBe(tip);
    // --to 1 skips the unverified state: two
    const dry = await fx.cli(['rollback', '--repo', fx.repo, '--env', 'staging', '--app', 'shovel-staging', '--dry-run']);
    expect(dry.code, dry.all).toBe(0);
    expect(dry.stderr).toContain(`would roll staging back to ${two.config.slice(0, 12)}`);
    expect(fx.tip()).toBe(tip);
    const byDigest = await fx.cli(['rollback', '--repo', fx.repo, '--env', 'staging', '--app', 'shovel-staging', '--to', one.digest]);
    expect(byDigest.code, byDigest.all).toBe(0);
    expect(overlayAt(fx)).toContain(`digest: ${one.digest}`);
    const none = await fx.cli(['rollback', '--repo', fx.repo, '--env', 'staging', '--app', 'shovel-staging', '--to', digestOf(9)]);
    expect(none.code, none.all).toBe(1);
    expect(none.stderr).toContain('EROLLBACK_NO_TARGET');
    const bad = await fx.cli(['rollback', '--repo', fx.repo, '--env', 'staging', '--to', 'yesterday']);
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('EROLLBACK_CONFIG');
    void four;
  }, 240_000);
});

describe("GitLab's Rollback environment button (a re-run of an old deploy job)", () => {
  const rerun = (f: Fixture, n: number, extra: NodeJS.ProcessEnv = {}) =>
    runCli(['bump', '--repo', f.repo, '--branch', 'main', '--dir', STAGING, '--image', `${IMAGE}:1.${n}.0@${digestOf(n)}`], { env: jobEnv(f, String(100 + n), sourceOf(n), extra), timeoutMs: 60_000 });

  it('is refused with a clear message and exit 1, never a skip reported as success; nothing is pushed', async () => {
    fx = await opsSetup();
    const one = await release(fx, 1, { wait: false });
    await release(fx, 2, { wait: false });
    const tip = fx.tip();
    const r = await rerun(fx, 1);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EROLLBACK_RERUN_REFUSED');
    expect(r.stderr).toContain(`re-runs pipeline 101's deploy to staging`);
    expect(r.stderr).toContain(`gitops-ci rollback --env staging --to ${one.config}`);
    expect(fx.tip()).toBe(tip);
  });

  it('with GITOPS_ON_RERUN=rollback, rolls back for real', async () => {
    fx = await opsSetup();
    const one = await release(fx, 1, { wait: false });
    const two = await release(fx, 2, { wait: false });
    const r = await rerun(fx, 1, { GITOPS_ON_RERUN: 'rollback' });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('this job is a re-run of pipeline 101');
    expect(git(fx.repo, ['rev-parse', 'refs/heads/main^'])).toBe(two.config);
    expect(overlayAt(fx)).toContain(`digest: ${one.digest}`);
  });

  it('a late older pipeline on its first run (its trailer never landed) is still skipped by the stale guard, exit 0', async () => {
    fx = await opsSetup();
    await release(fx, 2, { wait: false });
    const tip = fx.tip();
    // pipeline 101 ran late: it never landed anything
    const r = await rerun(fx, 1);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toMatch(/skipped .* pipeline 101 is older than pipeline 102/);
    expect(fx.tip()).toBe(tip);
  });
});
