/**
 * Push mode against the double: `argocd notify` (GitLab push event to /api/webhook), `argocd sync` (with
 * a revision, prune, waiting out a sync window and "another operation is already in progress", --wait),
 * `argocd refresh` (normal and hard).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readDotenv, setup, short, STAGING, tmpFile, type Fixture, stopFixtures } from './fixture.js';

let fx: Fixture | undefined;
afterEach(stopFixtures);

describe('argocd notify', () => {
  it('posts a GitLab push event with the secret; Argo CD refreshes at once and auto-sync deploys the commit', async () => {
    const secret = 'hook-secret-5f2a9';
    fx = await setup({ webhookSecret: secret });
    const before = fx.tip();
    const sha = fx.bump('20.0.0');
    const r = await fx.cli(['argocd', 'notify', '--repo-url', fx.repo, '--branch', 'main', '--before', before, '--after', sha, '--verbose'], { ARGOCD_WEBHOOK_SECRET: secret, ARGOCD_AUTH_TOKEN: '' });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`push event sent: ${fx.repo.replace(/\.git$/, '')} main ${short(before)} → ${short(sha)}`);
    expect(r.all).not.toContain(secret);
    await fx.argo.waitFor('shovel-staging', (a) => a.status.sync.revision === sha, 10_000);
    const w = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--skip-refresh', '--timeout', '30s']);
    expect(w.code, w.all).toBe(0);
  });

  it('takes its defaults from GitLab CI variables', async () => {
    fx = await setup();
    const sha = fx.bump('20.1.0');
    const r = await fx.cli(['argocd', 'notify'], { ARGOCD_AUTH_TOKEN: '', CI_PROJECT_URL: fx.repo.replace(/\.git$/, ''), CI_COMMIT_BRANCH: 'main', CI_COMMIT_SHA: sha, CI_DEFAULT_BRANCH: 'main' });
    expect(r.code, r.all).toBe(0);
    await fx.argo.waitFor('shovel-staging', (a) => a.status.sync.revision === sha, 10_000);
  });

  it('in an app repo pipeline it takes the config repo of bump (GITOPS_CONFIG_REPO, GITOPS_CONFIG_BRANCH, GITOPS_COMMIT_SHA), not CI_PROJECT_URL', async () => {
    fx = await setup();
    const sha = fx.bump('20.2.0');
    const r = await fx.cli(['argocd', 'notify'], {
      ARGOCD_AUTH_TOKEN: '',
      CI_PROJECT_URL: 'https://gitlab.example.com/shovel/shovel-gitops',
      CI_COMMIT_BRANCH: 'feature',
      CI_COMMIT_SHA: 'f'.repeat(40),
      GITOPS_CONFIG_REPO: fx.repo,
      GITOPS_CONFIG_BRANCH: 'main',
      GITOPS_COMMIT_SHA: sha,
    });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`push event sent: ${fx.repo.replace(/\.git$/, '')} main 00000000 → ${short(sha)}`);
    await fx.argo.waitFor('shovel-staging', (a) => a.status.sync.revision === sha, 10_000);
  });

  it('web_url of clone URLs: credentials out, ssh as https, no .git', async () => {
    const { webUrlOf } = await import('../../src/commands/argocd-notify.js');
    expect(webUrlOf('https://oauth2:tok3n-value@gitlab.example.com/platform/config.git', '/')).toBe('https://gitlab.example.com/platform/config');
    expect(webUrlOf('git@gitlab.example.com:platform/config.git', '/')).toBe('https://gitlab.example.com/platform/config');
    expect(webUrlOf('ssh://git@gitlab.example.com:2222/platform/config.git', '/')).toBe('https://gitlab.example.com/platform/config');
  });

  it('a wrong secret is refused: exit 3 with the hint, the secret not printed', async () => {
    fx = await setup({ webhookSecret: 'the-right-secret' });
    const r = await fx.cli(['argocd', 'notify', '--repo-url', fx.repo, '--branch', 'main', '--after', fx.tip()], { ARGOCD_WEBHOOK_SECRET: 'a-wrong-secret-value' });
    expect(r.code, r.all).toBe(3);
    expect(r.stderr).toContain('Argo CD refused the push event (400 Webhook processing failed)');
    expect(r.stderr).toContain('webhook.gitlab.secret');
    expect(r.all).not.toContain('a-wrong-secret-value');
    expect(r.all).not.toContain(Buffer.from('a-wrong-secret-value').toString('base64'));
  });

  it('says what is missing when not in a pipeline (exit 2)', async () => {
    fx = await setup();
    const r = await fx.cli(['argocd', 'notify'], { ARGOCD_AUTH_TOKEN: '' });
    expect(r.code, r.all).toBe(2);
    expect(r.stderr).toContain('no repo URL');
    expect(r.stderr).toContain('no branch');
    expect(r.stderr).toContain('no commit');
  });
});

describe('argocd sync', () => {
  const manual = [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main', automated: false }];

  it('syncs a manual app to a revision with prune and waits until it is deployed', async () => {
    fx = await setup({ apps: manual });
    const sha = fx.bump('21.0.0');
    await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging']);
    expect(fx.argo.app('shovel-staging').status.sync.status).toBe('OutOfSync'); // manual: nothing happens by itself
    const env = tmpFile('sync.env');
    const r = await fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--revision', sha, '--prune', '--wait', '--timeout', '30s', '--dotenv', env]);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`sync requested to ${short(sha)} with prune`);
    expect(fx.argo.app('shovel-staging').status.operationState.operation.sync).toMatchObject({ revision: sha, prune: true });
    expect(readDotenv(env)).toMatchObject({ ARGOCD_REVISION: sha, ARGOCD_HEALTH: 'Healthy' });
  });

  it('waits out a sync window instead of failing', async () => {
    fx = await setup({ apps: manual });
    const sha = fx.bump('22.0.0');
    fx.argo.setFault('shovel-staging', { syncWindow: true });
    const run = fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--revision', sha, '--wait', '--retry-interval', '200ms', '--timeout', '30s']);
    for (let i = 0; i < 100 && !fx.argo.requests.some((q) => q.path.endsWith('/sync')); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    fx.argo.setFault('shovel-staging', undefined); // the window closes
    const r = await run;
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('a sync window blocks syncing; retrying every 200ms');
    expect(fx.argo.requests.filter((q) => q.path.endsWith('/sync')).length).toBeGreaterThan(1);
  });

  it('a sync window that does not close in time: exit 4', async () => {
    fx = await setup({ apps: manual });
    fx.argo.setFault('shovel-staging', { syncWindow: true });
    const r = await fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--retry-interval', '200ms', '--timeout', '1s']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('could not start a sync within 1.0s: a sync window blocks syncing');
  });

  it('retries while another operation is in progress', async () => {
    fx = await setup({ apps: manual });
    fx.argo.setFault('shovel-staging', { busy: 2 });
    const r = await fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--retry-interval', '100ms', '--wait', '--timeout', '30s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('another operation is in progress; retrying every 100ms');
  });

  it('on an auto-sync app it does not send a revision (Argo CD would refuse it) and --wait verifies the commit', async () => {
    fx = await setup();
    const sha = fx.bump('23.0.0');
    const r = await fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--revision', sha, '--wait', '--timeout', '30s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('syncs automatically from main');
    expect(fx.argo.app('shovel-staging').status.sync.revision).toBe(sha);
  });

  it('a failed sync with --wait: exit 1 with the message', async () => {
    fx = await setup({ apps: manual });
    fx.argo.setFault('shovel-staging', { syncFail: 'namespaces "shovel-staging" not found' });
    const sha = fx.bump('24.0.0');
    const r = await fx.cli(['argocd', 'sync', '--app', 'shovel-staging', '--revision', sha, '--wait', '--timeout', '30s']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('namespaces "shovel-staging" not found');
  });
});

describe('argocd refresh', () => {
  it('refreshes (normal and hard) and prints the state after the reconcile', async () => {
    fx = await setup({ apps: [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main', automated: false }] });
    const sha = fx.bump('25.0.0');
    const r = await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`refreshed (normal): ${short(sha)}, OutOfSync, Healthy`);
    const h = await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging', '--hard']);
    expect(h.code, h.all).toBe(0);
    expect(fx.argo.requests.some((q) => q.query.includes('refresh=hard'))).toBe(true);
  });

  it('a refresh that does not finish in time: exit 4', async () => {
    fx = await setup();
    fx.argo.setFault('shovel-staging', { slowRefreshMs: 5000 });
    const r = await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging', '--timeout', '500ms']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('did not finish the normal refresh within 500ms');
  });
});
