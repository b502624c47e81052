/**
 * A hostile audit for secrets leaking (docs/security.md, promise 1): paths the other files of test/security do
 * not cover. Each case makes a real call fail or run — the real git smart-HTTP server with basic auth, the
 * real docker-registry with htpasswd, the Argo CD and GitLab doubles — and checks that the secret reached
 * nobody who should not have it: no output, file, child argv or payload (runAbused), and no server other
 * than its own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pushTree, seedBare, seedLayout } from '../helpers/config-repo.js';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { IMAGE, overlayWithTag, setup, STAGING, stopFixtures } from '../argocd/fixture.js';
import { expectNoLeak, runAbused } from './abuse.js';

const RAND = Math.random().toString(36).slice(2, 10);

describe('argocd wait --allow-descendant: the git token goes only to the config repo, not to the host Argo CD names', () => {
  // the config repo the pipeline was given (GITOPS_CONFIG_REPO), and another server that the Argo CD app
  // reads from (its repoURL, with Argo CD's own repository credentials). The other server would accept the
  // token (the same bot exists there): whether it was sent shows in what it recorded.
  const TOKEN = `glpat-ancestry-${RAND}`;
  let config: GitServer;
  let other: GitServer;
  beforeAll(async () => {
    config = await startGitServer({ user: 'bot', password: TOKEN });
    other = await startGitServer({ user: 'argocd-repo', password: `argo-${RAND}`, users: { bot: TOKEN } });
  });
  afterAll(async () => {
    await config?.stop();
    await other?.stop();
  });
  afterEach(() => stopFixtures({ checked: true }));

  /** an app on `other`, deployed one commit past `c1`: the wait for c1 asks git whether the deployed one descends from it */
  async function superseded(name: string) {
    other.createRepo(`${name}.git`);
    const bare = other.repoPath(`${name}.git`);
    const c1 = seedBare(bare, seedLayout(IMAGE));
    const fx = await setup({ repoURL: other.authUrl(`${name}.git`) });
    const c2 = pushTree(bare, { [`${STAGING}/kustomization.yaml`]: overlayWithTag('9.9.9') }, { message: 'bump 9.9.9 [skip ci]' });
    fx.argo.pollNow();
    for (let i = 0; i < 400 && fx.argo.app('shovel-staging').status.health.status !== 'Healthy' || fx.argo.app('shovel-staging').status.sync.revision !== c2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(fx.argo.app('shovel-staging').status.sync.revision).toBe(c2);
    return { fx, c1 };
  }

  it("an app whose repoURL is on another host than the config repo: no token sent there (exit 3, says why), none shown", async () => {
    const { fx, c1 } = await superseded('elsewhere');
    const before = other.requests.length;
    const res = await runAbused(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '30s'], {
      env: { ...fx.env, GITOPS_CONFIG_REPO: `${config.url}/group/config.git`, GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: TOKEN },
      secret: TOKEN,
      users: ['bot'],
    });
    // what the other server saw from this run: nothing authenticated as the bot
    const seen = other.requests.slice(before);
    expect(seen.filter((r) => r.user === 'bot'), res.all).toEqual([]);
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGIT_AUTH');
    expect(res.stderr).toMatch(/not the config repo's host/);
  });

  it('the same app when the config repo is on that host: the token is used and the wait passes', async () => {
    const { fx, c1 } = await superseded('samehost');
    const res = await runAbused(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '30s'], {
      env: { ...fx.env, GITOPS_CONFIG_REPO: `${other.url}/samehost.git`, GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: TOKEN },
      secret: TOKEN,
      users: ['bot'],
    });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/descends from/);
    expect(other.requests.some((r) => r.user === 'bot')).toBe(true);
    expectNoLeak('stderr', res.stderr, TOKEN, ['bot']);
  });
});
