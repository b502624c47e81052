/**
 * The Argo CD double against Argo CD's contract (behaviour of v3.5.1's API server), so that
 * tests passing against it mean something: auth rules, 415, 403 vs 404, sync preconditions, terminate,
 * session, webhook rules, stream shapes, blocking refresh; and the double over a git smart-HTTP remote with
 * credentials (which never show in the Application). Every response is validated against the swagger.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGitServer } from '../helpers/services.js';
import { pushTree, seedLayout } from '../helpers/config-repo.js';
import { IMAGE, setup, short, STAGING, type Fixture, stopFixtures } from './fixture.js';

let fx: Fixture | undefined;
afterEach(stopFixtures);

const json = { 'Content-Type': 'application/json' };

describe('Argo CD double: REST contract', () => {
  it('auth, content type, existence hiding', async () => {
    fx = await setup({ users: { 'ci-bot': 'pw-123456' } });
    const u = fx.argo.url;
    const auth = { Authorization: `Bearer ${fx.argo.token}` };
    let r = await fetch(`${u}/api/v1/applications/shovel-staging`);
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({ error: 'no session information', code: 16, message: 'no session information' });
    r = await fetch(`${u}/api/v1/applications/shovel-staging`, { headers: { Authorization: 'Bearer test-token' } });
    expect((await r.json()).message).toBe('no session information'); // non-JWT bearer is ignored
    r = await fetch(`${u}/api/v1/applications/shovel-staging/sync`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json; charset=utf-8' }, body: '{}' });
    expect([r.status, await r.text()]).toEqual([415, 'Invalid content type']);
    r = await fetch(`${u}/api/v1/applications/nope`, { headers: auth });
    expect([r.status, (await r.json()).message]).toEqual([403, 'permission denied']);
    r = await fetch(`${u}/api/v1/applications/nope?project=default`, { headers: auth });
    expect([r.status, (await r.json()).message]).toEqual([404, 'applications.argoproj.io "nope" not found']);
    r = await fetch(`${u}/api/v1/applications/shovel-staging?project=other`, { headers: auth });
    expect(r.status).toBe(404);
    // session: token and cookie
    r = await fetch(`${u}/api/v1/session`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'ci-bot', password: 'nope' }) });
    expect([r.status, (await r.json()).message]).toEqual([401, 'Invalid username or password']);
    r = await fetch(`${u}/api/v1/session`, { method: 'POST', headers: json, body: JSON.stringify({ username: 'ci-bot', password: 'pw-123456' }) });
    const { token } = await r.json();
    expect(token.split('.')).toHaveLength(3);
    expect(r.headers.get('set-cookie')).toContain(`argocd.token=${token}`);
    r = await fetch(`${u}/api/v1/session/userinfo`, { headers: { Cookie: `argocd.token=${token}` } });
    expect((await r.json()).loggedIn).toBe(true);
  });

  it('sync preconditions, terminate, blocking refresh, resource tree', async () => {
    fx = await setup({ delays: { refreshMs: 40, operationStartMs: 30, syncMs: 1500, reconcileMs: 60, healthyMs: 150 } });
    const u = fx.argo.url;
    const auth = { Authorization: `Bearer ${fx.argo.token}` };
    const sha = fx.bump('30.0.0');
    // auto-sync app: a revision other than targetRevision is refused, even the tip's SHA
    let r = await fetch(`${u}/api/v1/applications/shovel-staging/sync`, { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ revision: sha }) });
    expect([r.status, await r.json()]).toEqual([400, { error: `Cannot sync to ${sha}: auto-sync currently set to main`, code: 9, message: `Cannot sync to ${sha}: auto-sync currently set to main` }]);
    r = await fetch(`${u}/api/v1/applications/shovel-staging/operation`, { method: 'DELETE', headers: { ...auth, ...json } });
    expect([r.status, (await r.json()).code]).toEqual([400, 3]);
    r = await fetch(`${u}/api/v1/applications/shovel-staging/sync`, { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ prune: true }) });
    const app = await r.json();
    expect(app.operation.sync).toEqual({ revision: sha, prune: true });
    expect(app.status.operationState).toBeUndefined();
    r = await fetch(`${u}/api/v1/applications/shovel-staging/sync`, { method: 'POST', headers: { ...auth, ...json }, body: '{}' });
    expect((await r.json()).message).toBe('error setting app operation: another operation is already in progress');
    await fx.argo.waitFor('shovel-staging', (a) => a.status.operationState?.phase === 'Running');
    r = await fetch(`${u}/api/v1/applications/shovel-staging/operation`, { method: 'DELETE', headers: { ...auth, ...json } });
    expect([r.status, await r.json()]).toEqual([200, {}]);
    const ended = await fx.argo.waitFor('shovel-staging', (a) => !!a.status.operationState?.finishedAt);
    expect(ended.status.operationState).toMatchObject({ phase: 'Failed', message: 'Operation terminated' });
    // a refresh blocks until the controller reconciled: the answer is fresh and the annotation gone
    r = await fetch(`${u}/api/v1/applications/shovel-staging?refresh=hard`, { headers: auth });
    const fresh = await r.json();
    expect(fresh.metadata.annotations?.['argocd.argoproj.io/refresh']).toBeUndefined();
    expect(fresh.status.sync.revision).toBe(sha);
    r = await fetch(`${u}/api/v1/applications/shovel-staging/resource-tree`, { headers: auth });
    const tree = await r.json();
    expect(tree.nodes.find((n: { kind: string }) => n.kind === 'Pod').images).toEqual([`${IMAGE}:3f2a9c1`]);
  });

  it('watch stream: ADDED then MODIFIED as NDJSON with growing resourceVersions; 401 as a stream error object', async () => {
    fx = await setup();
    const u = fx.argo.url;
    let r = await fetch(`${u}/api/v1/stream/applications?name=shovel-staging`);
    expect([r.status, await r.json()]).toEqual([401, { error: { grpc_code: 16, http_code: 401, message: 'no session information', http_status: 'Unauthorized' } }]);
    const ctl = new AbortController();
    r = await fetch(`${u}/api/v1/stream/applications?name=shovel-staging`, { headers: { Authorization: `Bearer ${fx.argo.token}` }, signal: ctl.signal });
    expect(r.headers.get('content-type')).toBe('application/json');
    const reader = r.body!.getReader();
    const first = JSON.parse(new TextDecoder().decode((await reader.read()).value).split('\n')[0]);
    expect(first.result.type).toBe('ADDED');
    fx.bump('31.0.0');
    fx.argo.pollNow();
    const next = JSON.parse(new TextDecoder().decode((await reader.read()).value).split('\n')[0]);
    expect(next.result.type).toBe('MODIFIED');
    expect(Number(next.result.application.metadata.resourceVersion)).toBeGreaterThan(Number(first.result.application.metadata.resourceVersion));
    ctl.abort();
  });

  it('webhook: provider header, method, secret, event type; a push refreshes matching apps at once', async () => {
    fx = await setup({ webhookSecret: 's3cr3t-hook' });
    const u = `${fx.argo.url}/api/webhook`;
    const sha = fx.bump('32.0.0');
    const payload = { object_kind: 'push', ref: 'refs/heads/main', before: '0'.repeat(40), after: sha, project: { web_url: fx.repo.replace(/\.git$/, ''), default_branch: 'main' }, commits: [{ id: sha, timestamp: '2026-01-02T03:04:05+00:00', added: [], modified: [], removed: [] }] };
    const post = (h: Record<string, string>, body: unknown = payload, method = 'POST') => fetch(u, { method, headers: { ...json, ...h }, body: method === 'GET' ? undefined : JSON.stringify(body) });
    let r = await post({});
    expect([r.status, (await r.text()).trim()]).toEqual([400, 'Unknown webhook event']);
    r = await post({ 'X-Gitlab-Event': 'Push Hook' }, payload, 'GET');
    expect(r.status).toBe(405);
    r = await post({ 'X-Gitlab-Event': 'Push Hook', 'X-Gitlab-Token': 'wrong' });
    expect([r.status, (await r.text()).trim()]).toEqual([400, 'Webhook processing failed']);
    r = await post({ 'X-Gitlab-Event': 'Merge Request Hook', 'X-Gitlab-Token': 's3cr3t-hook' });
    expect(r.status).toBe(400);
    r = await post({ 'X-Gitlab-Event': 'Push Hook', 'X-Gitlab-Token': 's3cr3t-hook' }, { ...payload, commits: [{ ...payload.commits[0], timestamp: 'yesterday' }] });
    expect(r.status).toBe(400);
    r = await post({ 'X-Gitlab-Event': 'Push Hook', 'X-Gitlab-Token': 's3cr3t-hook' });
    expect([r.status, await r.text()]).toEqual([200, '']);
    await fx.argo.waitFor('shovel-staging', (a) => a.status.sync.revision === sha, 5000);
  });
});

describe('Argo CD double over git smart-HTTP with credentials', () => {
  it('deploys from an http remote; the Application shows no credentials; --allow-descendant fetches with GITOPS_GIT_TOKEN, unprinted', async () => {
    const srv = await startGitServer();
    try {
      srv.createRepo('platform/config.git');
      const remote = srv.authUrl('platform/config.git');
      pushTree(remote, seedLayout(IMAGE));
      fx = await setup({ repoURL: remote });
      expect(fx.argo.app('shovel-staging').spec.source.repoURL).toBe(`${srv.url}/platform/config.git`);
      const c1 = pushTree(remote, { [`${STAGING}/kustomization.yaml`]: seedLayout(IMAGE, { tag: '33.0.0' })[`${STAGING}/kustomization.yaml`] });
      const c2 = pushTree(remote, { [`${STAGING}/kustomization.yaml`]: seedLayout(IMAGE, { tag: '33.0.1' })[`${STAGING}/kustomization.yaml`] });
      // the token goes to the app's repoURL only on the config repo's host (src/git/session.ts isConfigRepoHost)
      const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '30s', '--verbose'], { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, GITOPS_CONFIG_REPO: `${srv.url}/platform/config.git` });
      expect(r.code, r.all).toBe(0);
      expect(r.stderr).toContain(`${short(c2)} descends from ${short(c1)} (git)`);
      expect(JSON.stringify(fx.argo.app('shovel-staging'))).not.toContain(srv.password);
      expect(r.all).not.toContain(srv.password);
      expect(r.all).not.toContain(Buffer.from(`${srv.user}:${srv.password}`).toString('base64'));
      // without credentials git cannot fetch: an auth failure (exit 3) from the git layer, not a hang
      const bad = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '30s']);
      expect(bad.code, bad.all).toBe(3);
      expect(bad.stderr).toContain('EGIT_AUTH');
    } finally {
      await srv.stop();
    }
  });
});
