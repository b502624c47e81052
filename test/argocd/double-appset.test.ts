/**
 * The Argo CD double's ApplicationSets, deletion, history and live resources against Argo CD's contract: a git
 * directories generator creates an app per directory (review apps: one overlay per merge request), a directory
 * removed from git deletes its app (deletionTimestamp and finalizer, then a DELETED watch event, then 403/404),
 * and every response is validated against the v3.5.1 swagger (contract.ts, in afterEach).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pushTree, seedLayout } from '../helpers/config-repo.js';
import { IMAGE, setup, stopFixtures, type Fixture } from './fixture.js';

let fx: Fixture;
afterEach(() => stopFixtures({ checked: true }));

const review = (slug: string, tag: string) => ({
  [`review/${slug}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../.kubernetes/overlays/staging
nameSuffix: -${slug}
namespace: review-${slug}
images:
  - name: ${IMAGE}
    newTag: "${tag}"
`,
});

describe('Argo CD double: ApplicationSets and deletion', () => {
  it('a git directories generator creates an app per directory and deletes it when the directory goes', async () => {
    fx = await setup({
      apps: [],
      appsets: [{ name: 'shovel-review', directories: 'review/*', template: { name: 'shovel-review-{{path.basename}}', path: '{{path}}', targetRevision: 'main', destinationNamespace: 'review-{{path.basename}}', labels: { env: 'review' } } }],
    });
    const auth = { Authorization: `Bearer ${fx.argo.token}` };
    const u = fx.argo.url;
    expect(fx.argo.appNames()).toEqual([]);
    const sha = pushTree(fx.repo, review('mr-7', '7.0.0'), { message: 'review mr-7 [skip ci]' });
    fx.argo.pollNow();
    // the ApplicationSet controller generates the app on its next pass (the poll)
    for (let i = 0; i < 400 && !fx.argo.appNames().includes('argocd/shovel-review-mr-7'); i++) await new Promise((res) => setTimeout(res, 50));
    const app = await fx.argo.waitFor('shovel-review-mr-7', (a) => a.status?.sync?.revision === sha && a.status?.health?.status === 'Healthy' && !a.operation);
    expect(app.metadata.ownerReferences).toEqual([expect.objectContaining({ apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', name: 'shovel-review', controller: true })]);
    expect(app.status.summary.images).toEqual([`${IMAGE}:7.0.0`]);
    expect(app.status.history.map((h: any) => h.revision)).toEqual([sha]);
    // the set lists what it generated; the list endpoint filters by label
    let r = await fetch(`${u}/api/v1/applicationsets/shovel-review`, { headers: auth });
    expect(r.status).toBe(200);
    expect((await r.json()).status.resources).toEqual([expect.objectContaining({ kind: 'Application', name: 'shovel-review-mr-7', status: 'Synced' })]);
    r = await fetch(`${u}/api/v1/applications?selector=${encodeURIComponent('env=review')}`, { headers: auth });
    expect((await r.json()).items.map((a: any) => a.metadata.name)).toEqual(['shovel-review-mr-7']);
    r = await fetch(`${u}/api/v1/applications?selector=${encodeURIComponent('env in (x')}`, { headers: auth });
    expect(r.status).toBe(400);
    r = await fetch(`${u}/api/v1/applicationsets/nope`, { headers: auth });
    expect([r.status, (await r.json()).code]).toEqual([404, 5]);
    // the stop: the directory goes, the app is deleted (finalizer first, then gone)
    const gone = fx.argo.waitGone('shovel-review-mr-7');
    pushTree(fx.repo, {}, { remove: ['review/mr-7'], message: 'review mr-7 stopped [skip ci]' });
    fx.argo.pollNow();
    await fx.argo.waitFor('shovel-review-mr-7', (a) => !!a.metadata.deletionTimestamp);
    await gone;
    r = await fetch(`${u}/api/v1/applications/shovel-review-mr-7`, { headers: auth });
    expect(r.status).toBe(403);
    r = await fetch(`${u}/api/v1/applications/shovel-review-mr-7?project=default`, { headers: auth });
    expect(r.status).toBe(404);
  });

  it('DELETE /api/v1/applications/{name} deletes with a finalizer; the watch stream ends the app with DELETED', async () => {
    fx = await setup();
    const auth = { Authorization: `Bearer ${fx.argo.token}` };
    const u = fx.argo.url;
    const ctl = new AbortController();
    const events: string[] = [];
    const stream = fetch(`${u}/api/v1/stream/applications?name=shovel-staging`, { headers: auth, signal: ctl.signal }).then(async (res) => {
      const reader = res.body!.getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += new TextDecoder().decode(value);
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)).result.type);
          buf = buf.slice(i + 1);
        }
        if (events.includes('DELETED')) return;
      }
    });
    for (let i = 0; i < 100 && !events.length; i++) await new Promise((r) => setTimeout(r, 20));
    const r = await fetch(`${u}/api/v1/applications/shovel-staging?cascade=true`, { method: 'DELETE', headers: { ...auth, 'Content-Type': 'application/json' } });
    expect([r.status, await r.json()]).toEqual([200, {}]);
    await fx.argo.waitGone('shovel-staging');
    await stream;
    ctl.abort();
    expect(events[0]).toBe('ADDED');
    expect(events.at(-1)).toBe('DELETED');
    expect(fx.argo.app('shovel-staging')).toBeUndefined();
  });

  it('GET …/syncwindows and …/resource answer as the contract says', async () => {
    fx = await setup();
    const auth = { Authorization: `Bearer ${fx.argo.token}` };
    const u = fx.argo.url;
    let r = await fetch(`${u}/api/v1/applications/shovel-staging/syncwindows`, { headers: auth });
    expect(await r.json()).toEqual({ canSync: true });
    fx.argo.setFault('shovel-staging', { syncWindow: { kind: 'deny', schedule: '0 22 * * *', duration: '8h' } });
    r = await fetch(`${u}/api/v1/applications/shovel-staging/syncwindows`, { headers: auth });
    expect(await r.json()).toEqual({ activeWindows: [{ kind: 'deny', schedule: '0 22 * * *', duration: '8h' }], assignedWindows: [{ kind: 'deny', schedule: '0 22 * * *', duration: '8h' }], canSync: false });
    r = await fetch(`${u}/api/v1/applications/shovel-staging/resource?kind=Deployment&resourceName=staging-shovel&namespace=shovel-staging&group=apps&version=v1`, { headers: auth });
    const live = JSON.parse((await r.json()).manifest);
    expect(live).toMatchObject({ kind: 'Deployment', metadata: { name: 'staging-shovel' } });
    r = await fetch(`${u}/api/v1/applications/shovel-staging/resource?kind=Rollout&resourceName=nope`, { headers: auth });
    expect(r.status).toBe(404);
    void seedLayout;
  });
});
