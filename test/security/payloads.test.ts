/**
 * No credentials in what leaves the process (High 4 of issue #10): `argocd notify` with a credentialed repo URL
 * (--repo-url $CI_REPOSITORY_URL, GITOPS_CONFIG_REPO, CI_PROJECT_URL) sends a push event whose URLs carry no
 * userinfo; checked on the bodies the Argo CD double received, and by runAbused on every output.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';
import { stripUserinfo } from '../../src/core/mask.js';
import { runAbused } from './abuse.js';

const started: ArgoCdDouble[] = [];
afterEach(async () => {
  for (const a of started.splice(0)) await a.stop();
});

async function setup(): Promise<{ argo: ArgoCdDouble; env: NodeJS.ProcessEnv }> {
  const repo = bareRepo(seedLayout());
  const argo = await startArgoCdDouble({ repoURL: repo, apps: [{ name: 'shovel-staging', path: '.kubernetes/overlays/staging', targetRevision: 'main', destinationNamespace: 'shovel-staging' }], pollIntervalMs: 60_000 });
  started.push(argo);
  return { argo, env: { ARGOCD_SERVER: argo.url } };
}

const TOKEN = `glcbt-64_${Math.random().toString(36).slice(2, 10)}+/=`;
const SHA = 'b'.repeat(40);

describe('argocd notify payloads', () => {
  const cases: Array<{ name: string; args: (u: string) => string[]; env: (u: string) => NodeJS.ProcessEnv }> = [
    { name: '--repo-url with the job token in it ($CI_REPOSITORY_URL)', args: (u) => ['--repo-url', u, '--branch', 'main', '--after', SHA], env: () => ({}) },
    { name: 'GITOPS_CONFIG_REPO with credentials', args: () => [], env: (u) => ({ GITOPS_CONFIG_REPO: u, GITOPS_CONFIG_BRANCH: 'main', GITOPS_COMMIT_SHA: SHA }) },
    { name: 'CI_PROJECT_URL with credentials and a `/` and `@` in the password', args: () => [], env: () => ({ CI_PROJECT_URL: `https://user:${encodeURIComponent(`a/b@${TOKEN}`)}@gitlab.example.com/platform/config`, CI_COMMIT_BRANCH: 'main', CI_COMMIT_SHA: SHA }) },
  ];
  for (const c of cases) {
    it(`${c.name}: the event's URLs carry no userinfo`, async () => {
      const fx = await setup();
      const url = `https://gitlab-ci-token:${encodeURIComponent(TOKEN)}@gitlab.example.com/platform/config.git`;
      const res = await runAbused(['argocd', 'notify', ...c.args(url)], {
        env: { ...fx.env, ARGOCD_AUTH_TOKEN: '', ...c.env(url) },
        secret: TOKEN,
        users: ['gitlab-ci-token', 'user'],
        payloads: () => fx.argo.webhookBodies,
      });
      expect(res.code, res.all).toBe(0);
      expect(fx.argo.webhookBodies.length).toBe(1);
      const body = JSON.parse(fx.argo.webhookBodies[0]!) as { project: { web_url: string; git_http_url: string }; repository: { url: string } };
      expect(body.project.web_url).toBe('https://gitlab.example.com/platform/config');
      expect(body.repository.url).toBe('https://gitlab.example.com/platform/config.git');
      expect(fx.argo.webhookBodies[0]).not.toMatch(/:\/\/[^/"]*@/);
    });
  }

  it('stripUserinfo: userinfo out of every URL in a value, whatever it holds; image digests and paths with @ kept', () => {
    expect(
      stripUserinfo({ a: ['https://u:p/w@d@host/x', 'git+ssh://git@host/y'], b: 'see http://tok@h:1/z and https://h/app@sha256:' + 'a'.repeat(64), c: 'https://host/users/@me', n: 3 }),
    ).toEqual({ a: ['https://host/x', 'git+ssh://host/y'], b: 'see http://h:1/z and https://h/app@sha256:' + 'a'.repeat(64), c: 'https://host/users/@me', n: 3 });
  });
});
