/**
 * `gitops-ci argocd wait` end to end: the built CLI against the Argo CD double over a real git repo, one
 * test per branch of the deploy predicate. Every response of the double is validated against the
 * swagger (contract.ts) in afterEach.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { git, GIT_TEST_ENV } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { readDotenv, setup, short, STAGING, tmpFile, type Fixture, stopFixtures } from './fixture.js';

let fx: Fixture;
  // every wait test talks to the double, so its responses were checked against the swagger
afterEach(() => stopFixtures({ checked: true }));

const settled = <T>(p: Promise<T>) => {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  return () => done;
};

describe('argocd wait', () => {
  it('returns at once for an app already deployed at the commit, with a summary and dotenv outputs', async () => {
    fx = await setup();
    const sha = fx.tip();
    const env = tmpFile('deploy.env');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--dotenv', env]);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`revision: ${sha}`);
    expect(r.stderr).toContain('images:   registry.example.com/shovel/shovel-gitops:3f2a9c1');
    expect(r.stderr).toMatch(/✔ argocd wait: shovel-staging deployed/);
    // it neither refreshed nor streamed: one GET was enough
    expect(fx.argo.requests.filter((q) => q.path.startsWith('/api/v1/stream'))).toHaveLength(0);
    expect(readDotenv(env)).toMatchObject({ ARGOCD_APP: 'shovel-staging', ARGOCD_REVISION: sha, ARGOCD_SYNC_STATUS: 'Synced', ARGOCD_HEALTH: 'Healthy', ARGOCD_IMAGES: 'registry.example.com/shovel/shovel-gitops:3f2a9c1' });
  });

  it('does not pass on stale health: Healthy at the previous commit when the wait starts, passes only after the new one is deployed', async () => {
    fx = await setup();
    const before = fx.tip();
    const sha = fx.bump('1.2.3');
    // Argo CD has not noticed the push (polling is slow and the wait does not ask for a refresh)
    expect(fx.argo.app('shovel-staging').status.health.status).toBe('Healthy');
    expect(fx.argo.app('shovel-staging').status.sync.revision).toBe(before);
    const run = fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--skip-refresh', '--timeout', '30s']);
    const isDone = settled(run);
    // the wait is connected and watching; the app stays Healthy at the old commit meanwhile
    for (let i = 0; i < 200 && !fx.argo.requests.some((q) => q.path === '/api/v1/stream/applications'); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(isDone()).toBe(false);
    fx.argo.pollNow(); // the controller's git poll finds the commit
    const r = await run;
    expect(r.code, r.all).toBe(0);
    // when the job exited, Argo CD had really deployed the commit and reconciled after the sync
    const app = fx.argo.app('shovel-staging');
    expect(app.status.sync.revision).toBe(sha);
    expect(app.status.operationState.syncResult.revision).toBe(sha);
    expect(app.status.health.status).toBe('Healthy');
    expect(app.status.summary.images).toEqual(['registry.example.com/shovel/shovel-gitops:1.2.3']);
    // progress lines show the way there, one per change
    const lines = r.stderr.split('\n');
    const idx = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(idx(new RegExp(`revision ${short(before)} · sync Synced · health Healthy`))).toBeGreaterThanOrEqual(0);
    expect(idx(new RegExp(`revision ${short(sha)} · sync OutOfSync`))).toBeGreaterThan(idx(new RegExp(`revision ${short(before)}`)));
    expect(idx(/operation Running/)).toBeGreaterThan(0);
    expect(idx(new RegExp(`revision ${short(sha)} · sync Synced · health Progressing`))).toBeGreaterThan(idx(/operation Running/));
    expect(r.stderr).toContain('images:   registry.example.com/shovel/shovel-gitops:1.2.3');
  });

  it('asks Argo CD to refresh when it has not seen the commit, then passes after the deploy', async () => {
    fx = await setup();
    const sha = fx.bump('2.0.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '30s']);
    expect(r.code, r.all).toBe(0);
    expect(fx.argo.requests.some((q) => q.path === '/api/v1/applications/shovel-staging' && q.query.includes('refresh=normal'))).toBe(true);
    expect(fx.argo.app('shovel-staging').status.summary.images).toEqual(['registry.example.com/shovel/shovel-gitops:2.0.0']);
  });

  it('superseded by a later commit: times out without --allow-descendant (exit 4, last state shown), passes with it', async () => {
    fx = await setup();
    const c1 = fx.bump('3.0.0');
    const c2 = fx.bump('3.0.1');
    // Argo CD picks up the branch after both pushes and deploys c2 (c1 never on its own)
    fx.argo.pollNow();
    await fx.argo.waitFor('shovel-staging', (a) => a.status.sync.revision === c2 && a.status.health.status === 'Healthy' && !a.operation && a.status.reconciledAt >= a.status.operationState?.finishedAt && a.status.sync.status === 'Synced');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--timeout', '2s']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('EARGOCD_TIMEOUT');
    expect(r.stderr).toContain(`last state: revision ${short(c2)} · sync Synced · health Healthy`);
    expect(r.stderr).toContain(`Argo CD is at ${short(c2)}, not ${short(c1)}`);
    expect(r.stderr).toContain('--allow-descendant');
    const ok = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '20s']);
    expect(ok.code, ok.all).toBe(0);
    expect(ok.stderr).toContain(`${short(c2)} descends from ${short(c1)} (git)`);
    expect(ok.stderr).toContain(`revision: ${c2} (a descendant of the requested commit)`);
  });

  it('--allow-descendant --repo DIR asks a local clone; a shallow clone that cannot tell falls back to the app\'s repo', async () => {
    fx = await setup();
    const c1 = fx.bump('3.1.0');
    const c2 = fx.bump('3.1.1');
    const full = tmp('gci-clone-');
    git(full, ['clone', '-q', fx.repo, 'c']);
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--repo', `${full}/c`, '--timeout', '20s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`${short(c2)} descends from ${short(c1)} (git)`);
    const shallow = tmp('gci-shallow-');
    git(shallow, ['clone', '-q', '--depth', '1', `file://${fx.repo}`, 'c'], GIT_TEST_ENV);
    const s = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--repo', `${shallow}/c`, '--timeout', '20s']);
    expect(s.code, s.all).toBe(0);
  });

  it('--allow-descendant does not accept an older revision or another branch', async () => {
    fx = await setup();
    const old = fx.tip();
    const c1 = fx.bump('4.0.0'); // Argo CD stays at `old`: not a descendant of c1
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--skip-refresh', '--timeout', '2s']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain(`${short(old)} does not descend from ${short(c1)} (git)`);
  });

  it('fails fast on a Degraded app at the commit, naming the resources and their messages', async () => {
    fx = await setup();
    fx.argo.setFault('shovel-staging', { degraded: true });
    const sha = fx.bump('5.0.0-broken');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '30s']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EARGOCD_DEGRADED');
    expect(r.stderr).toContain('Deployment/shovel-staging/staging-shovel: Degraded: Deployment "staging-shovel" exceeded its progress deadline');
    expect(r.stderr).toMatch(/Pod\/shovel-staging\/staging-shovel-[a-z0-9-]+: Degraded: Back-off pulling image "registry.example.com\/shovel\/shovel-gitops:5.0.0-broken"/);
  });

  it('does not fail on Degraded health that belongs to the previous commit', async () => {
    fx = await setup();
    fx.argo.setFault('shovel-staging', { degraded: true });
    const bad = fx.bump('6.0.0-bad');
    const r1 = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', bad, '--timeout', '30s']);
    expect(r1.code, r1.all).toBe(1);
    fx.argo.setFault('shovel-staging', undefined);
    const fix = fx.bump('6.0.1');
    const r2 = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fix, '--timeout', '30s']);
    expect(r2.code, r2.all).toBe(0);
    expect(r2.stderr).toContain('health Degraded'); // seen at the start, not held against the new commit
  });

  it('fails fast on a failed sync of the commit, with the resource messages', async () => {
    fx = await setup();
    fx.argo.setFault('shovel-staging', { syncFail: 'admission webhook "policy.example.com" denied the request: image tag must not be latest' });
    const sha = fx.bump('7.0.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '30s']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EARGOCD_SYNC_FAILED');
    expect(r.stderr).toContain(`the sync of ${short(sha)} failed: one or more objects failed to apply`);
    expect(r.stderr).toContain('Deployment/shovel-staging/staging-shovel: SyncFailed: admission webhook "policy.example.com" denied the request');
  });

  it('fails fast on a ComparisonError: a commit kustomize cannot build', async () => {
    fx = await setup();
    const sha = fx.bump('8.0.0', { [`${STAGING}/kustomization.yaml`]: 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../does-not-exist\n' });
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '30s']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EARGOCD_COMPARISON_ERROR');
    expect(r.stderr).toMatch(/ComparisonError: .*kustomize build \.kubernetes\/overlays\/staging failed/);
  });

  it('a sync window that keeps the deploy from starting is reported as such (exit 6, the last state), not as a timeout (exit 4)', async () => {
    fx = await setup();
    fx.argo.setFault('shovel-staging', { syncWindow: true });
    const sha = fx.bump('9.0.0');
    fx.argo.pollNow();
    await fx.argo.waitFor('shovel-staging', (a) => a.status.sync.revision === sha);
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '20s']);
    expect(r.code, r.all).toBe(6);
    expect(r.stderr).not.toContain('timed out');
    expect(r.stderr).toContain('EARGOCD_SYNC_WINDOW');
    expect(r.stderr).toContain(`last state: revision ${short(sha)} · sync OutOfSync · health Healthy · operation Succeeded`);
    expect(fx.argo.requests.some((q) => q.path === '/api/v1/applications/shovel-staging/syncwindows')).toBe(true);
  });

  it('waits for several apps, in other namespaces too (ns/name)', async () => {
    fx = await setup({
      apps: [
        { name: 'shovel-staging', path: STAGING, targetRevision: 'main' },
        { name: 'shovel-prod', namespace: 'team-a', project: 'shovel', path: '.kubernetes/overlays/production', targetRevision: 'main' },
      ],
    });
    const sha = fx.bump('10.0.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--app', 'team-a/shovel-prod', '--revision', sha, '--timeout', '30s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('[team-a/shovel-prod] revision');
    expect(r.stderr).toContain('app:      team-a/shovel-prod');
    expect(fx.argo.requests.some((q) => q.query.includes('appNamespace=team-a'))).toBe(true);
  });
});
