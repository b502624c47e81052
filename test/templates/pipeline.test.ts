/**
 * The component self-test: a user's pipeline that includes build.yml, bump.yml and verify.yml runs end to end
 * in gitlab-ci-local (shell executor, the bundled CLI on PATH as in the runner image) against real services: the
 * build pushes to a registry with htpasswd auth, its dotenv IMAGE reaches the bump job, the bump pins the digest in
 * the config repo over smart HTTP, and the verify job waits until the Argo CD double has deployed that commit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGitServer, startRegistry, tmp, useDocker, type GitServer, type Registry } from '../helpers/services.js';
import { git, pushTree, seedLayout } from '../helpers/config-repo.js';
import { CLI } from '../helpers/cli.js';
import { GITLAB_CI_LOCAL, gitlabCiLocalProject } from '../helpers/gitlab-ci-local.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';

const IMAGE_NAME = 'registry.example.com/shovel/app';

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('components end to end (gitlab-ci-local, shell executor)', () => {
  let srv: GitServer;
  let reg: Registry;
  let argo: ArgoCdDouble;
  beforeAll(async () => {
    srv = await startGitServer({ user: 'gitlab-ci-token' });
    reg = await startRegistry({ user: 'gitlab-ci-token' });
    srv.createRepo('shovel/config.git');
    pushTree(srv.authUrl('shovel/config.git'), seedLayout(IMAGE_NAME));
    argo = await startArgoCdDouble({
      repoURL: srv.authUrl('shovel/config.git'),
      apps: [{ name: 'shovel-staging', path: '.kubernetes/overlays/staging', targetRevision: 'main' }],
      pollIntervalMs: 500,
    });
  });
  afterAll(async () => {
    await argo?.stop();
    await reg?.stop();
    await srv?.stop();
  });

  it('build → bump → verify: the pushed digest lands in staging and Argo CD deploys that commit', async () => {
    const docker = await useDocker();
    const dir = gitlabCiLocalProject(
      {
        Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n',
        '.gitlab-ci.yml': `stages: [build, deploy, verify]
include:
  - local: templates/build.yml
    inputs:
      services: []
  - local: templates/bump.yml
    inputs:
      environment: staging
      overlay: .kubernetes/overlays/staging
      image-name: ${IMAGE_NAME}
  - local: templates/verify.yml
    inputs:
      environment: staging
      app: shovel-staging
      timeout: 60s
      notify: true
`,
      },
      { projectPath: 'shovel/app', copy: { busybox: '/bin/busybox' } },
    );
    // the runner image's gitops-ci: the bundle under test
    const bin = join(dir, '.bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'gitops-ci'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'gitops-ci'), 0o755);

    // what a project's CI/CD settings and the runner would provide
    const vars: Record<string, string> = {
      DOCKER_HOST: docker.host,
      DOCKER_TLS_VERIFY: '',
      DOCKER_CERT_PATH: '',
      CI_REGISTRY: reg.host,
      CI_REGISTRY_IMAGE: `${reg.host}/shovel/app`,
      CI_REGISTRY_USER: reg.user,
      CI_REGISTRY_PASSWORD: reg.password,
      GITOPS_CONFIG_REPO: `${srv.url}/shovel/config.git`,
      GITOPS_CONFIG_BRANCH: 'main',
      CI_JOB_TOKEN: srv.password,
      ARGOCD_SERVER: argo.url,
      ARGOCD_AUTH_TOKEN: argo.token,
      ARGOCD_PLAINTEXT: 'true',
    };
    const args = ['--force-shell-executor', '--ignore-predefined-vars', 'CI_REGISTRY,CI_REGISTRY_IMAGE,CI_JOB_TOKEN', ...Object.entries(vars).flatMap(([k, v]) => ['--variable', `${k}=${v}`])];
    const runOpts = { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1' } };
    const r = await run(GITLAB_CI_LOCAL, args, runOpts);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/PASS\s+gitops-build/);
    expect(r.out).toMatch(/PASS\s+gitops-bump-staging/);
    expect(r.out).toMatch(/PASS\s+gitops-verify-staging/);

    // the build's dotenv handed the digest to the bump, which pinned it in staging only
    const buildEnv = readFileSync(join(dir, '.gitlab-ci-local/artifacts/gitops-build/.gitlab-ci-reports/dotenv/gitops-build.env'), 'utf8');
    const image = /^IMAGE=(.+)$/m.exec(buildEnv)?.[1];
    expect(image).toMatch(new RegExp(`^${reg.host}/shovel/app@sha256:[0-9a-f]{64}$`));
    const check = tmp();
    git(check, ['clone', '-q', srv.authUrl('shovel/config.git'), 'c']);
    const staging = readFileSync(join(check, 'c/.kubernetes/overlays/staging/kustomization.yaml'), 'utf8');
    const digest = image!.split('@')[1]!;
    expect(staging).toContain(digest);
    expect(readFileSync(join(check, 'c/.kubernetes/overlays/production/kustomization.yaml'), 'utf8')).not.toContain(digest);
    const head = git(join(check, 'c'), ['log', '-1', '--format=%H%n%B']);
    expect(head).toContain('[skip ci]');
    // the verify job waited for that very commit
    expect(r.out).toContain(`shovel-staging deployed ${head.split('\n')[0]!.slice(0, 8)}`);
    expect(argo.app('shovel-staging').status.sync.revision).toBe(head.split('\n')[0]);
    // notify posted GitLab's push event for that commit to Argo CD's webhook first
    expect(r.out).not.toContain('argocd notify failed');
    expect(argo.requests.some((q) => q.method === 'POST' && q.path === '/api/webhook')).toBe(true);

    // a re-run of the same pipeline (same source commit) is not a stale bump: it lands the re-built image and the
    // verify job waits for that new config commit. (BuildKit's inline cache metadata makes the re-built image's
    // digest differ, so this is a new commit rather than a no-op.)
    const again = await run(GITLAB_CI_LOCAL, args, runOpts);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/PASS\s+gitops-verify-staging/);
    const image2 = /^IMAGE=(.+)$/m.exec(readFileSync(join(dir, '.gitlab-ci-local/artifacts/gitops-build/.gitlab-ci-reports/dotenv/gitops-build.env'), 'utf8'))?.[1];
    git(join(check, 'c'), ['pull', '-q']);
    expect(readFileSync(join(check, 'c/.kubernetes/overlays/staging/kustomization.yaml'), 'utf8')).toContain(image2!.split('@')[1]);
    const head2 = git(join(check, 'c'), ['rev-parse', 'HEAD']);
    expect(again.out).toContain(`shovel-staging deployed ${head2.slice(0, 8)}`);

    // no secret in the job logs
    for (const s of [reg.password, srv.password, argo.token]) {
      for (const out of [r.out, again.out]) {
        expect(out).not.toContain(s);
        expect(out).not.toContain(Buffer.from(`gitlab-ci-token:${s}`).toString('base64'));
      }
    }
  }, 180_000);
});
