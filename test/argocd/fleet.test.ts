/**
 * Fleets, Argo Rollouts and sync windows in `gitops-ci argocd wait`: the built CLI against the Argo CD double
 * (ApplicationSets, label selectors, Rollout health, GET …/syncwindows and …/resource) over a real git repo.
 * Every response of the double is validated against the v3.5.1 swagger in afterEach (contract.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { IMAGE, readDotenv, setup, STAGING, stopFixtures, tmpFile, type Fixture } from './fixture.js';
import { blocking, cronMatcher, goDurationMs } from '../../src/argocd/windows.js';

let fx: Fixture;
afterEach(() => stopFixtures({ checked: true }));

const CLUSTERS = ['eu-west', 'us-east', 'ap-south'];
const fleet = () =>
  setup({
    apps: [],
    appsets: [{ name: 'shovel-staging', clusters: CLUSTERS, template: { name: 'shovel-staging-{{name}}', path: STAGING, targetRevision: 'main', destinationNamespace: 'shovel-staging', labels: { env: 'staging', cluster: '{{name}}' } } }],
  });

const ROLLOUT = '.kubernetes/canary';
function rolloutTree(tag: string) {
  return {
    [`${ROLLOUT}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - rollout.yaml
images:
  - name: ${IMAGE}
    newTag: "${tag}"
`,
    [`${ROLLOUT}/rollout.yaml`]: `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: shovel
spec:
  replicas: 4
  selector:
    matchLabels:
      app: shovel
  template:
    metadata:
      labels:
        app: shovel
    spec:
      containers:
        - name: shovel
          image: ${IMAGE}:latest
  strategy:
    canary:
      steps:
        - setWeight: 25
        - pause: {}
        - setWeight: 75
        - pause: {duration: 10m}
`,
  };
}

describe('argocd wait: fleets', () => {
  it('--appset waits for every app the ApplicationSet generated and passes when all run the commit', async () => {
    fx = await fleet();
    const sha = fx.bump('4.0.0');
    const env = tmpFile('deploy.env');
    const r = await fx.cli(['argocd', 'wait', '--appset', 'shovel-staging', '--revision', sha, '--timeout', '60s', '--dotenv', env]);
    expect(r.code, r.all).toBe(0);
    for (const c of CLUSTERS) {
      expect(r.stderr).toContain(`[shovel-staging-${c}] `);
      const app = fx.argo.app(`shovel-staging-${c}`);
      expect(app.status.sync.revision).toBe(sha);
      expect(app.status.health.status).toBe('Healthy');
      expect(app.metadata.ownerReferences[0]).toMatchObject({ kind: 'ApplicationSet', name: 'shovel-staging' });
    }
    expect(readDotenv(env).ARGOCD_APP.split(',').sort()).toEqual(CLUSTERS.map((c) => `shovel-staging-${c}`).sort());
    expect(fx.argo.requests.some((q) => q.path === '/api/v1/applicationsets/shovel-staging')).toBe(true);
  });

  it('--selector: one degraded cluster fails the fleet, naming it and how far the others got', async () => {
    fx = await fleet();
    fx.argo.setFault('shovel-staging-us-east', { degraded: 'Deployment "shovel" exceeded its progress deadline' });
    const sha = fx.bump('4.1.0');
    const r = await fx.cli(['argocd', 'wait', '--selector', 'env=staging,cluster in (eu-west,us-east)', '--revision', sha, '--timeout', '60s']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EARGOCD_DEGRADED');
    expect(r.stderr).toMatch(/1 of 2 apps do not run [0-9a-f]{8} synced and healthy: shovel-staging-us-east|2 of 2 apps do not run/);
    expect(r.stderr).toMatch(/\| shovel-staging-us-east: EARGOCD_DEGRADED: the app is Degraded/);
    // the selector left the third cluster out
    expect(r.stderr).not.toContain('shovel-staging-ap-south');
    expect(fx.argo.requests.some((q) => q.path === '/api/v1/applications' && decodeURIComponent(q.query).includes('selector=env=staging'))).toBe(true);
  });

  it('a selector that matches nothing and an unknown ApplicationSet are usage errors, not a pass on nothing', async () => {
    fx = await fleet();
    const sha = fx.tip();
    const none = await fx.cli(['argocd', 'wait', '--selector', 'env=nowhere', '--revision', sha]);
    expect(none.code, none.all).toBe(2);
    expect(none.stderr).toContain('EARGOCD_FLEET_EMPTY');
    const missing = await fx.cli(['argocd', 'wait', '--appset', 'no-such-set', '--revision', sha]);
    expect(missing.code, missing.all).toBe(2);
    expect(missing.stderr).toContain('EARGOCD_APPSET_NOT_FOUND');
    const bad = await fx.cli(['argocd', 'wait', '--appset', 'Bad/Name/x', '--revision', sha]);
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('is not an ApplicationSet name');
  });
});

describe('argocd wait: Argo Rollouts and sync windows', () => {
  it('a canary paused at a step ends the wait with exit 5 and names the step, not a timeout', async () => {
    fx = await setup({ repoURL: bareRepo({ ...seedLayout(IMAGE), ...rolloutTree('1.0.0') }), apps: [{ name: 'shovel-canary', path: ROLLOUT, targetRevision: 'main' }] });
    fx.argo.setFault('shovel-canary', { rollout: 'paused' });
    const { pushTree } = await import('../helpers/config-repo.js');
    const sha = pushTree(fx.repo, rolloutTree('1.1.0'), { message: 'bump canary [skip ci]' });
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-canary', '--revision', sha, '--timeout', '60s']);
    expect(r.code, r.all).toBe(5);
    expect(r.stderr).toContain('EARGOCD_ROLLOUT_PAUSED');
    expect(r.stderr).toMatch(/canary shovel is paused at [0-9a-f]{8} \(Rollout is paused\), at step 2 of 4 \(a pause without duration: waits for a promote\) \[CanaryPauseStep\]/);
    expect(r.stderr).toContain('kubectl argo rollouts promote shovel');
    expect(r.stderr).not.toContain('timed out');
  });

  it('an aborted canary is a failed deploy (exit 1, EARGOCD_ROLLOUT_ABORTED) with the analysis message', async () => {
    fx = await setup({ repoURL: bareRepo({ ...seedLayout(IMAGE), ...rolloutTree('1.0.0') }), apps: [{ name: 'shovel-canary', path: ROLLOUT, targetRevision: 'main' }] });
    fx.argo.setFault('shovel-canary', { rollout: 'aborted' });
    const { pushTree } = await import('../helpers/config-repo.js');
    const sha = pushTree(fx.repo, rolloutTree('1.2.0'), { message: 'bump canary [skip ci]' });
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-canary', '--revision', sha, '--timeout', '60s']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EARGOCD_ROLLOUT_ABORTED');
    expect(r.stderr).toContain('Rollout aborted update to revision 2: Metric "success-rate" assessed Failed');
  });

  it('a sync window that holds the sync ends the wait with exit 6 and says when it opens', async () => {
    fx = await setup();
    const start = new Date(Date.now() - 10 * 60_000);
    const schedule = `${start.getUTCMinutes()} ${start.getUTCHours()} * * *`;
    fx.argo.setFault('shovel-staging', { syncWindow: { kind: 'deny', schedule, duration: '1h' } });
    const sha = fx.bump('5.0.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '60s']);
    expect(r.code, r.all).toBe(6);
    expect(r.stderr).toContain('EARGOCD_SYNC_WINDOW');
    const opens = new Date(Math.floor(start.getTime() / 60_000) * 60_000 + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    expect(r.stderr).toContain(`a sync window blocks the sync of ${sha.slice(0, 8)}; it opens at ${opens}`);
    expect(r.stderr).toContain(`deny window "${schedule}" for 1h`);
    // nothing was deployed meanwhile
    expect(fx.argo.app('shovel-staging').status.sync.status).toBe('OutOfSync');
  });

  it('--wait-blocked waits through the window and, at the timeout, reports the window (exit 6), not a timeout (4)', async () => {
    fx = await setup();
    fx.argo.setFault('shovel-staging', { syncWindow: { kind: 'allow', schedule: '0 3 * * *', duration: '2h' } });
    const sha = fx.bump('5.1.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '4s', '--wait-blocked']);
    expect(r.code, r.all).toBe(6);
    expect(r.stderr).toContain('waiting (--wait-blocked)');
    expect(r.stderr).toMatch(/it opens at \d{4}-\d\d-\d\dT03:00:00Z/);
  });
});

describe('sync window arithmetic', () => {
  it('reads cron schedules and Go durations', () => {
    const m = cronMatcher('*/15 9-17 * * mon-fri')!;
    expect(m(new Date('2026-12-07T09:30:00Z'))).toBe(true); // a Monday
    expect(m(new Date('2026-12-06T09:30:00Z'))).toBe(false); // a Sunday
    expect(m(new Date('2026-12-07T09:31:00Z'))).toBe(false);
    expect(cronMatcher('61 * * * *')).toBeUndefined();
    expect(cronMatcher('* * *')).toBeUndefined();
    expect(goDurationMs('1h30m')).toBe(5_400_000);
    expect(goDurationMs('1d')).toBeUndefined();
  });

  it('a deny window opens at its start plus its duration; an inactive allow window at its next start', () => {
    const now = Date.parse('2026-12-07T23:10:00Z');
    expect(blocking({ activeWindows: [{ kind: 'deny', schedule: '0 22 * * *', duration: '8h' }], canSync: false }, now).opensAt).toBe(Date.parse('2026-12-08T06:00:00Z'));
    expect(blocking({ assignedWindows: [{ kind: 'allow', schedule: '0 6 * * 1-5', duration: '2h' }], canSync: false }, now).opensAt).toBe(Date.parse('2026-12-08T06:00:00Z'));
    // Saturday night: the next weekday window is Monday
    expect(blocking({ assignedWindows: [{ kind: 'allow', schedule: '0 6 * * 1-5', duration: '2h' }], canSync: false }, Date.parse('2026-12-05T23:00:00Z')).opensAt).toBe(Date.parse('2026-12-07T06:00:00Z'));
    expect(blocking({ activeWindows: [{ kind: 'deny', schedule: 'not cron', duration: '1h' }], canSync: false }, now).opensAt).toBeUndefined();
  });
});
