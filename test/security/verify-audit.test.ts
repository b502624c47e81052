/**
 * A hostile audit of "no deploy is reported before it happened" (`argocd wait` and its predicate): each test
 * is a state of a real Argo CD in which the app is NOT running the commit, synced and healthy, and checks
 * that gitops-ci does not say it is. Cases the argocd tests already cover (stale health, an old operation,
 * a running operation, no post-sync reconcile, multi-source, descendants) are not repeated here.
 * Every response of the Argo CD double is checked against the swagger (test/argocd/contract.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { evaluate } from '../../src/argocd/predicate.js';
import type { Application } from '../../src/argocd/types.js';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { IMAGE, setup, short, STAGING, stopFixtures, tmpFile, type Fixture } from '../argocd/fixture.js';
import { release } from '../argocd/ops-fixture.js';

let fx: Fixture;
afterEach(() => stopFixtures({ checked: true }));

const C = 'c'.repeat(40);
const T0 = '2026-01-02T03:04:00Z';
const T1 = '2026-01-02T03:04:05Z';
const T2 = '2026-01-02T03:04:09Z';
const deployed = (extra: Partial<Application['metadata']> = {}): Application => ({
  metadata: { name: 'web', resourceVersion: '7', ...extra },
  status: {
    sync: { status: 'Synced', revision: C },
    health: { status: 'Healthy' },
    operationState: { phase: 'Succeeded', operation: { sync: { revision: C } }, syncResult: { revision: C }, startedAt: T0, finishedAt: T1 },
    reconciledAt: T2,
  },
});

describe('verify audit: the predicate on states no other test builds', () => {
  const ev = (a: Application) => evaluate(a, { revision: C, startedAt: Date.parse(T0) });
  const withHealth = (status: string): Application => ({ ...deployed(), status: { ...deployed().status, health: { status } } });
  it('Suspended without an Argo Rollouts canary (a paused Deployment, a suspended CronJob), Missing and Unknown health are waiting, never done', () => {
    for (const h of ['Suspended', 'Missing', 'Unknown', 'Progressing']) expect(ev(withHealth(h)), h).toMatchObject({ kind: 'waiting', reason: `health ${h}` });
  });
  it('a revision that is only a prefix of the commit, or the commit with a suffix, is not the commit', () => {
    for (const rev of [C.slice(0, 7), C.slice(0, 39), `${C}0`]) {
      const a = deployed();
      a.status!.sync = { status: 'Synced', revision: rev };
      expect(ev(a), rev).toMatchObject({ kind: 'waiting' });
    }
  });
  it('an operation on the commit that is Terminating, or Succeeded with a new operation requested (a retry), is waiting', () => {
    const term = deployed();
    term.status!.operationState = { ...term.status!.operationState!, phase: 'Terminating' };
    expect(ev(term)).toMatchObject({ kind: 'waiting', reason: 'operation Terminating' });
    expect(ev({ ...deployed(), operation: { sync: { revision: C } } })).toMatchObject({ kind: 'waiting', reason: 'an operation is requested' });
  });
});

describe('verify audit: an app being deleted is not deployed', () => {
  it('predicate: Synced and Healthy at C with a deletionTimestamp is waiting, not done', () => {
    expect(evaluate(deployed(), { revision: C, startedAt: Date.parse(T0) })).toMatchObject({ kind: 'done' });
    expect(evaluate(deployed({ deletionTimestamp: T2 }), { revision: C, startedAt: Date.parse(T0) })).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('being deleted') });
  });

  it('argocd wait does not report a deploy of an app that Argo CD is deleting (cascade: its resources are being pruned)', async () => {
    fx = await setup({ delays: { refreshMs: 40, operationStartMs: 30, syncMs: 150, reconcileMs: 60, healthyMs: 150, deleteMs: 60_000 } });
    const sha = fx.tip();
    const r0 = await fetch(`${fx.argo.url}/api/v1/applications/shovel-staging?cascade=true`, { method: 'DELETE', headers: { Authorization: `Bearer ${fx.argo.token}`, 'Content-Type': 'application/json' } });
    expect(r0.status).toBe(200);
    // the app still shows the commit Synced and Healthy: the status a deletion leaves until the finalizer ends
    const app = fx.argo.app('shovel-staging');
    expect([app.status.sync.revision, app.status.sync.status, app.status.health.status, !!app.metadata.deletionTimestamp]).toEqual([sha, 'Synced', 'Healthy', true]);
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '2s', '--poll', '--poll-interval', '200ms']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('EARGOCD_TIMEOUT');
    expect(r.stderr).toContain('being deleted');
    expect(r.stderr).not.toMatch(/✔ argocd wait/);
    // status shows the same: the state the app last had, and that it is going away (not counted as deployed)
    const st = await fx.cli(['status', '--repo', fx.repo, '--branch', 'main', '--json', '--app', 'staging=shovel-staging']);
    expect(st.code, st.all).toBe(0);
    const apps = (JSON.parse(st.stdout) as { environments: Array<{ env: string; apps: Array<{ deleting?: string }> }> }).environments.find((e) => e.env === 'staging')!.apps;
    expect(apps[0]!.deleting).toBe(app.metadata.deletionTimestamp);
    const table = await fx.cli(['status', '--repo', fx.repo, '--branch', 'main', '--app', 'staging=shovel-staging']);
    expect(table.stdout).toContain(`shovel-staging: Synced/Healthy (being deleted since ${app.metadata.deletionTimestamp})`);
    expect(table.stderr).toMatch(/not Synced\/Healthy: shovel-staging \(being deleted\)/);
  });
});

describe('verify audit: status does not call an image deployed from an older deploy of its commit', () => {
  it('after a sync back to an earlier commit (a rollback in Argo CD), the image pinned at the tip is not "deployed since" its first deploy', async () => {
    // auto-sync off, as Argo CD requires for a sync to a revision other than targetRevision
    fx = await setup({ repoURL: bareRepo(seedLayout(IMAGE)), apps: [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main', destinationNamespace: 'shovel-staging', automated: false }] });
    const deploy = async (sha: string) => {
      const s = await fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--revision', sha]);
      expect(s.code, s.all).toBe(0);
      await fx.argo.waitFor('shovel-staging', (a) => a.status.history?.at(-1)?.revision === sha && !a.operation && !!a.status.operationState?.finishedAt, 30_000);
    };
    const one = await release(fx, 1, { wait: false });
    await deploy(one.config);
    const two = await release(fx, 2, { wait: false });
    await deploy(two.config);
    const status = async () => {
      const r = await fx.cli(['status', '--repo', fx.repo, '--branch', 'main', '--json', '--app', 'staging=shovel-staging']);
      expect(r.code, r.all).toBe(0);
      return (JSON.parse(r.stdout) as { environments: any[] }).environments.find((e) => e.env === 'staging');
    };
    const history = () => fx.argo.app('shovel-staging').status.history as Array<{ revision: string; deployedAt: string }>;
    expect((await status()).images[0]).toMatchObject({ setBy: two.config, deployedSince: history().find((h) => h.revision === two.config)!.deployedAt });
    // Argo CD goes back to the first release: the tip still pins 1.2.0, which no longer runs
    await deploy(one.config);
    expect(history().map((h) => h.revision).slice(-3)).toEqual([one.config, two.config, one.config]);
    const after = await status();
    expect(after.images[0].setBy).toBe(two.config);
    expect(after.images[0].deployedSince).toBeUndefined();
  });
});

describe('verify audit: a refresh alone is not a deploy', () => {
  it('auto-sync off: the refresh makes Argo CD compare at the commit (OutOfSync, still Healthy on the old pods); the wait times out (exit 4) and writes no outputs', async () => {
    fx = await setup({ apps: [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main', automated: false }] });
    const sha = fx.bump('31.0.0');
    const env = tmpFile('deploy.env');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '3s', '--dotenv', env]);
    expect(r.code, r.all).toBe(4);
    // the refresh it asked for did happen: Argo CD is at the commit, but nothing synced it
    const app = fx.argo.app('shovel-staging');
    expect([app.status.sync.revision, app.status.sync.status, app.status.health.status]).toEqual([sha, 'OutOfSync', 'Healthy']);
    expect(fx.argo.requests.some((q) => q.query.includes('refresh=normal'))).toBe(true);
    expect(r.stderr).toContain('EARGOCD_TIMEOUT');
    expect(r.stderr).toContain(`revision ${short(sha)} · sync OutOfSync · health Healthy`);
    expect(r.stderr).not.toMatch(/✔ argocd wait/);
    expect(existsSync(env) ? readFileSync(env, 'utf8') : '').not.toContain('ARGOCD_REVISION');
  });
});
