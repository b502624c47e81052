/**
 * gitops-ci promote --via push, end to end through the CLI bundle: against the smart-HTTP git server, the real
 * registry (tag resolution, --copy-to) and the Argo CD double (--from-app).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { parseDotenv } from '../../src/core/dotenv.js';
import { bareRepo, pushTree, seedLayout } from '../helpers/config-repo.js';
import { startGitServer, startRegistry, tmp, type GitServer, type Registry } from '../helpers/services.js';
import { configRepo, headOf, jobEnv, leakForms, logOf, show } from '../bump/fixture.js';
import { setup, stopFixtures } from '../argocd/fixture.js';
import { DIGEST, IMAGE, PROD, STAGING, dockerAuth, layout, manifestDigest, messageOf, pushTinyImage, withImages, repoWithDigest } from './fixture.js';

let srv: GitServer;
let reg: Registry;
beforeAll(async () => {
  [srv, reg] = await Promise.all([startGitServer(), startRegistry()]);
});
afterAll(async () => {
  await stopFixtures();
  srv?.stop();
  await reg?.stop();
});

const CI = {
  CI_PROJECT_PATH: 'shovel/config',
  CI_PIPELINE_ID: '2001',
  CI_PIPELINE_URL: 'https://gitlab.example.com/shovel/config/-/pipelines/2001',
  CI_JOB_URL: 'https://gitlab.example.com/shovel/config/-/jobs/9001',
};

const args = (url: string, ...more: string[]) => ['promote', '--repo', url, '--branch', 'main', '--from', STAGING, '--to', PROD, ...more];

describe('promote --via push', () => {
  it('pins the staging digest in production, commits once with source trailers, and a re-run is a no-op', async () => {
    const r = repoWithDigest(srv);
    const dotenv = join(tmp(), 'promote.env');
    const res = await runCli(args(r.url, '--dotenv', dotenv), { env: jobEnv(srv, CI) });
    expect(res.code, res.all).toBe(0);
    const after = show(r.path, `${PROD}/kustomization.yaml`);
    expect(after).toContain(`digest: ${DIGEST}`);
    expect(after).not.toContain('newTag');
    expect(after).toContain('# production overlay: CI bumps the image below; keep the comments');
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
    const msg = messageOf(r.path);
    expect(msg.split('\n')[0]).toBe(`[skip ci] promote shovel-gitops:${DIGEST.slice(0, 19)} from staging to production`);
    expect(msg).toContain(`Gitops-Promoted-From: ${STAGING}`);
    expect(msg).toContain(`Gitops-Promoted-From-Commit: ${r.head}`);
    // the provenance of the image (from staging's bump commit), so that bump's stale guard keeps working on production
    expect(msg).toContain(`Gitops-Source-Commit: ${'c'.repeat(40)}`);
    expect(msg).toContain('Gitops-Pipeline-Id: 1500');
    expect(msg).toContain(`Gitops-Job: ${CI.CI_JOB_URL}`);
    expect(msg).toContain(`Gitops-Image: ${IMAGE}=${IMAGE}@${DIGEST}`);
    const out = parseDotenv(readFileSync(dotenv, 'utf8'));
    expect(out.GITOPS_PROMOTED).toBe(`${IMAGE}=${IMAGE}@${DIGEST}`);
    expect(out.GITOPS_CHANGED).toBe('true');
    expect(out.GITOPS_COMMIT_SHA).toBe(headOf(r.path));
    expect(out.GITOPS_SOURCE_COMMIT).toBe(r.head);
    expect(res.stderr).toMatch(/✔ promote: pushed [0-9a-f]{12} to main: promote shovel-gitops 3f2a9c1 → sha256:ab12ab12ab12… from staging to production/);

    const tip = headOf(r.path);
    const again = await runCli(args(r.url, '--dotenv', dotenv), { env: jobEnv(srv, CI) });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toContain('no change: production already runs what staging runs');
    expect(headOf(r.path)).toBe(tip);
    expect(parseDotenv(readFileSync(dotenv, 'utf8')).GITOPS_CHANGED).toBe('false');
  });

  it('--dry-run prints the diff and changes nothing', async () => {
    const r = repoWithDigest(srv);
    const res = await runCli(args(r.url, '--dry-run'), { env: jobEnv(srv, CI) });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`+    digest: ${DIGEST}`);
    expect(res.stdout).toContain('-    newTag: "3f2a9c1" # set by gitops-ci');
    expect(res.stderr).toContain('dry run: would promote');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('--image promotes only the named image; an unknown name is a usage error, nothing pushed', async () => {
    const r = configRepo(srv);
    const other = 'registry.example.com/shovel/worker';
    const t = withImages(seedLayout(IMAGE), STAGING, `  - name: ${IMAGE}\n    digest: ${DIGEST}\n  - name: ${other}\n    digest: sha256:${'cd34'.repeat(16)}\n`);
    const head = pushTree(r.authUrl, { [`${STAGING}/kustomization.yaml`]: t[`${STAGING}/kustomization.yaml`]! });
    const bad = await runCli(args(r.url, '--image', 'registry.example.com/shovel/nope'), { env: jobEnv(srv) });
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('EPROMOTE_NO_IMAGE');
    expect(bad.stderr).toContain(other);
    expect(headOf(r.path)).toBe(head);
    const res = await runCli(args(r.url, '--image', other), { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    const after = show(r.path, `${PROD}/kustomization.yaml`);
    expect(after).toContain(`name: ${other}`);
    expect(after).toContain(`newTag: "3f2a9c1"`); // IMAGE untouched
  });

  it('refuses a source pinned by tag with --require-digest (exit 1, nothing pushed)', async () => {
    const r = configRepo(srv);
    const res = await runCli(args(r.url, '--require-digest'), { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EPROMOTE_NOT_PINNED');
    expect(res.stderr).toContain('pinned by tag only');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('resolves a tag-only source to its digest through the real registry, and never pins the tag', async () => {
    const repo = `${reg.host}/shovel/app`;
    const digest = await pushTinyImage(reg, 'shovel/app', 'v1.4.2');
    const r = configRepo(srv);
    const t = layout(`  - name: ${IMAGE}\n    newName: ${repo}\n    newTag: v1.4.2\n`);
    const head = pushTree(r.authUrl, { [`${STAGING}/kustomization.yaml`]: t[`${STAGING}/kustomization.yaml`]! });
    const res = await runCli(args(r.url), { env: jobEnv(srv, { DOCKER_AUTH_CONFIG: dockerAuth(reg) }) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain(`${repo}:v1.4.2 resolved to ${digest}`);
    const after = show(r.path, `${PROD}/kustomization.yaml`);
    expect(after).toContain(`newName: ${repo}`);
    expect(after).toContain(`digest: ${digest}`);
    expect(after).not.toContain('v1.4.2');
    expect(logOf(r.path, `${head}..main`)).toHaveLength(1);
  });

  it('a tag missing from the registry fails (exit 1) with nothing pushed; the registry password never shows', async () => {
    const r = configRepo(srv);
    const t = layout(`  - name: ${IMAGE}\n    newName: ${reg.host}/shovel/app\n    newTag: no-such-tag\n`);
    const head = pushTree(r.authUrl, { [`${STAGING}/kustomization.yaml`]: t[`${STAGING}/kustomization.yaml`]! });
    const res = await runCli(args(r.url), { env: jobEnv(srv, { DOCKER_AUTH_CONFIG: dockerAuth(reg) }) });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EPROMOTE_TAG_UNRESOLVED');
    expect(headOf(r.path)).toBe(head);
    // wrong password: a real 401 from the registry, masked
    const wrong = 'wrong-pass-Zx81q';
    const denied = await runCli(args(r.url), { env: jobEnv(srv, { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${wrong}`).toString('base64') } } }) }) });
    expect(denied.code, denied.all).toBe(3);
    for (const f of [...leakForms(wrong, [reg.user]), ...leakForms(srv.password, [srv.user])]) expect(denied.all).not.toContain(f);
    expect(headOf(r.path)).toBe(head);
  });

  it('--copy-to copies the image first (digest preserved, real registry) and pins the copy', async () => {
    const digest = await pushTinyImage(reg, 'shovel/app', 'v2', 'copy-test');
    const r = configRepo(srv);
    const t = layout(`  - name: ${IMAGE}\n    newName: ${reg.host}/shovel/app\n    digest: ${digest}\n`);
    pushTree(r.authUrl, { [`${STAGING}/kustomization.yaml`]: t[`${STAGING}/kustomization.yaml`]! });
    const dst = `${reg.host}/shovel/app-production`;
    expect(await manifestDigest(reg, 'shovel/app-production', digest)).toBeUndefined();
    const dry = await runCli(args(r.url, '--copy-to', dst, '--dry-run'), { env: jobEnv(srv, { DOCKER_AUTH_CONFIG: dockerAuth(reg) }) });
    expect(dry.code, dry.all).toBe(0);
    expect(await manifestDigest(reg, 'shovel/app-production', digest)).toBeUndefined(); // a dry run copies nothing
    const res = await runCli(args(r.url, '--copy-to', dst), { env: jobEnv(srv, { DOCKER_AUTH_CONFIG: dockerAuth(reg) }) });
    expect(res.code, res.all).toBe(0);
    expect(await manifestDigest(reg, 'shovel/app-production', digest)).toBe(digest);
    const after = show(r.path, `${PROD}/kustomization.yaml`);
    expect(after).toContain(`newName: ${dst}`);
    expect(after).toContain(`digest: ${digest}`);
  });

  it('bad flags: every problem at once, exit 2', async () => {
    const res = await runCli(['promote', '--repo', '/nonexistent', '--branch', 'main', '--from', '../x', '--to', PROD, '--via', 'carrier-pigeon', '--label', 'x', '--image', 'app:1.0']);
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EPROMOTE_CONFIG');
    expect(res.stderr).toContain('--from "../x"');
    expect(res.stderr).toContain('--via must be push, mr or api');
    expect(res.stderr).toContain('--image "app:1.0"');
  });
});

describe('promote --from-app', () => {
  it('reads --from at the commit Argo CD reports deployed, synced and healthy, not at the branch tip', async () => {
    const seeded = layout();
    const repo = bareRepo(seeded);
    const fx = await setup({ repoURL: repo });
    const deployed = fx.tip();
    await fx.argo.waitFor('shovel-staging', (a) => a.status?.sync?.status === 'Synced' && a.status?.health?.status === 'Healthy' && a.status?.sync?.revision === deployed);
    // a newer staging pin lands on main, not yet deployed
    const newer = `sha256:${'ef56'.repeat(16)}`;
    pushTree(repo, withImages(seeded, STAGING, `  - name: ${IMAGE}\n    digest: ${newer}\n`));
    const dotenv = join(tmp(), 'p.env');
    const res = await fx.cli([...args(repo, '--from-app', 'shovel-staging', '--argocd-plaintext', '--dotenv', dotenv)]);
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain(`runs config commit ${deployed.slice(0, 12)}: Synced, Healthy`);
    const after = show(repo, `${PROD}/kustomization.yaml`);
    expect(after).toContain(`digest: ${DIGEST}`);
    expect(after).not.toContain(newer);
    expect(parseDotenv(readFileSync(dotenv, 'utf8')).GITOPS_SOURCE_COMMIT).toBe(deployed);
    expect(messageOf(repo)).toContain(`Gitops-Promoted-From-App: shovel-staging`);
  });

  it('refuses an app that deploys from another repo than the config repo (exit 2, nothing pushed)', async () => {
    const repo = bareRepo(layout());
    const other = bareRepo(layout());
    const fx = await setup({ repoURL: other });
    const head = headOf(repo);
    await fx.argo.waitFor('shovel-staging', (a) => a.status?.sync?.status === 'Synced' && a.status?.health?.status === 'Healthy');
    const res = await fx.cli([...args(repo, '--from-app', 'shovel-staging', '--argocd-plaintext')]);
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EPROMOTE_APP_MISMATCH');
    expect(res.stderr).toContain(`not from the config repo ${repo}`);
    expect(headOf(repo)).toBe(head);
  });

  it('refuses when the app is not synced and healthy (exit 1, nothing pushed)', async () => {
    const seeded = layout();
    const repo = bareRepo(seeded);
    const fx = await setup({ repoURL: repo });
    fx.argo.setFault('shovel-staging', { degraded: 'Back-off pulling image' });
    const head = pushTree(repo, withImages(seeded, STAGING, `  - name: ${IMAGE}\n    digest: sha256:${'0f'.repeat(32)}\n`));
    fx.argo.pollNow();
    await fx.argo.waitFor('shovel-staging', (a) => a.status?.sync?.revision === head && a.status?.health?.status === 'Degraded', 20_000);
    const res = await fx.cli([...args(repo, '--from-app', 'shovel-staging', '--argocd-plaintext')]);
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EPROMOTE_APP_NOT_READY');
    expect(res.stderr).toContain('Degraded');
    expect(fx.tip()).toBe(head);
  });
});
