/**
 * bump and promote take a target kind (--target-kind auto|kustomization|helm|manifest|application|argocd-source),
 * detected by default from the files found in the overlay through the edit layer's registry (src/edit/registry.ts,
 * the rule in src/writeback/checkout.ts autoKind):
 * - a kustomization owns its directory: the manifests and values beside it are its inputs, it is the one edited;
 * - a Helm values directory and a plain manifest directory are bumped and promoted like an overlay: one commit
 *   with the trailers, a re-run is a no-op (no commit), promote moves the digest;
 * - an Image Updater file beside a kustomization is ambiguous: refused (exit 2) naming both files, the line, and
 *   the --target-kind to pass; with it, the file asked for is edited;
 * - an unknown kind is refused with the kinds there are.
 * Against a bare config repo on disk (bump's local remote), through the CLI bundle.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { runCli } from '../helpers/cli.js';
import { bareRepo, git } from '../helpers/config-repo.js';

const REPO = 'registry.example.com/team/app';
const D1 = `sha256:${'1a'.repeat(32)}`;
const D2 = `sha256:${'2b'.repeat(32)}`;
const DEPLOY = (image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  template:
    spec:
      containers:
      - name: app
        image: ${image} # the app
`;
const KUSTOMIZATION = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deploy.yaml
images:
- name: ${REPO}
  newTag: "1.0"
`;
const VALUES = (tag: string, digest = '') => `# values of the app chart
image:
  repository: ${REPO}
  tag: "${tag}"
  digest: "${digest}"
replicas: 2
`;
const show = (bare: string, file: string) => execFileSync('git', ['-C', bare, 'show', `main:${file}`]).toString();
const count = (bare: string) => Number(git(bare, ['rev-list', '--count', 'main']));
const CI = { CI_COMMIT_SHA: 'a'.repeat(40), CI_PIPELINE_ID: '900', CI_PROJECT_PATH: 'team/app' };

describe('bump --target-kind', () => {
  it('auto: a kustomization owns its directory; the manifest beside it is left alone', async () => {
    const bare = bareRepo({ 'envs/prod/kustomization.yaml': KUSTOMIZATION, 'envs/prod/deploy.yaml': DEPLOY(`${REPO}:0.9`) });
    const res = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.1`], { env: CI });
    expect(res.code, res.all).toBe(0);
    expect(show(bare, 'envs/prod/kustomization.yaml')).toContain('newTag: "1.1"');
    expect(show(bare, 'envs/prod/deploy.yaml')).toBe(DEPLOY(`${REPO}:0.9`));
  });

  it('auto: a Helm values directory is bumped in place (one commit, trailers; the quoted tag stays a string); a re-run commits nothing', async () => {
    const bare = bareRepo({ 'envs/prod/values.yaml': VALUES('1.0') });
    const before = count(bare);
    const res = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.10`], { env: CI });
    expect(res.code, res.all).toBe(0);
    expect(show(bare, 'envs/prod/values.yaml')).toBe(VALUES('1.10'));
    expect(count(bare)).toBe(before + 1);
    const msg = git(bare, ['log', '-1', '--format=%B', 'main']);
    expect(msg).toContain(`Gitops-Image: ${REPO}=${REPO}:1.10`);
    expect(msg).toContain('Gitops-Overlay: envs/prod');
    const again = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.10`], { env: CI });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toContain('no change');
    expect(count(bare)).toBe(before + 1);
  });

  it('auto: a plain manifest directory gets the container image pinned by digest, the comment on the line kept', async () => {
    const bare = bareRepo({ 'envs/prod/deploy.yaml': DEPLOY(`${REPO}:0.9`) });
    const res = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}@${D1}`], { env: CI });
    expect(res.code, res.all).toBe(0);
    // the manifest target changes only what the pin gives (the digest): the tag beside it stays, the pull is by digest
    expect(show(bare, 'envs/prod/deploy.yaml')).toBe(DEPLOY(`${REPO}:0.9@${D1}`));
  });

  it('auto: an Image Updater file beside a kustomization is refused, naming both files, the line and what to pass; --target-kind picks one', async () => {
    const src = `kustomize:\n  images:\n  - ${REPO}:1.0\n`;
    const bare = bareRepo({ 'envs/prod/kustomization.yaml': KUSTOMIZATION, 'envs/prod/deploy.yaml': DEPLOY(REPO), 'envs/prod/.argocd-source-app-prod.yaml': src });
    const head = git(bare, ['rev-parse', 'main']);
    const res = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.1`], { env: CI });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EWRITEBACK_TARGET_AMBIGUOUS');
    expect(res.stderr).toContain('envs/prod/kustomization.yaml:1');
    expect(res.stderr).toContain('envs/prod/.argocd-source-app-prod.yaml');
    expect(res.stderr).toMatch(/--target-kind kustomization or --target-kind argocd-source/);
    expect(git(bare, ['rev-parse', 'main'])).toBe(head);

    const picked = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.1`, '--target-kind', 'argocd-source'], { env: CI });
    expect(picked.code, picked.all).toBe(0);
    expect(show(bare, 'envs/prod/.argocd-source-app-prod.yaml')).toBe(`kustomize:\n  images:\n  - ${REPO}:1.1\n`);
    expect(show(bare, 'envs/prod/kustomization.yaml')).toBe(KUSTOMIZATION);

    const viaEnv = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.2`], { env: { ...CI, GITOPS_TARGET_KIND: 'kustomization' } });
    expect(viaEnv.code, viaEnv.all).toBe(0);
    expect(show(bare, 'envs/prod/kustomization.yaml')).toContain('newTag: "1.2"');
  });

  it('an unknown kind is a usage error listing the kinds; a kind with no file in the overlay is not found', async () => {
    const bare = bareRepo({ 'envs/prod/kustomization.yaml': KUSTOMIZATION, 'envs/prod/deploy.yaml': DEPLOY(REPO) });
    const bad = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.1`, '--target-kind', 'jsonnet']);
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('--target-kind "jsonnet" is not a target kind: pass one of auto, kustomization, argocd-source, application, helm, manifest');
    const none = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', 'envs/prod', '--image', `${REPO}:1.1`, '--target-kind', 'helm']);
    expect(none.code, none.all).toBe(2);
    expect(none.stderr).toContain('EBUMP_OVERLAY_NOT_FOUND');
  });
});

describe('promote --target-kind', () => {
  it('auto: Helm values to Helm values, by digest; a re-run is a no-op', async () => {
    const bare = bareRepo({ 'envs/staging/values.yaml': VALUES('1.1', D2), 'envs/production/values.yaml': VALUES('1.0', D1) });
    const res = await runCli(['promote', '--repo', bare, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production']);
    expect(res.code, res.all).toBe(0);
    // only the digest travels: the tag in production is left as it is (a tag never moves in a promotion)
    expect(show(bare, 'envs/production/values.yaml')).toBe(VALUES('1.0', D2));
    expect(git(bare, ['log', '-1', '--format=%B', 'main'])).toContain('Gitops-Promoted-From: envs/staging');
    const n = count(bare);
    const again = await runCli(['promote', '--repo', bare, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production']);
    expect(again.code, again.all).toBe(0);
    expect(count(bare)).toBe(n);
  });
});
