/**
 * The README's first pipeline example, verbatim, as a GitLab user includes it (issue #9 item 10): gitlab-ci-local
 * (shell executor, the bundled CLI on PATH as in the runner image) resolves the `component:` includes from this
 * repository's templates/ (placed where gitlab-ci-local caches a fetched component version) and runs the jobs
 * against the harness's real registry and git server and the Argo CD double. The only variables are those GitLab
 * itself provides (CI_*), the masked CI/CD variables the README tells the user to set, and what the runner's
 * environment provides (DOCKER_HOST: the shell executor stands in for the docker:dind service).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/services.js';
import { git, seedLayout } from '../helpers/config-repo.js';
import { ARGO_POLL_MS, readmeExample, startPipelineHarness, type PipelineHarness } from '../helpers/pipeline-harness.js';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import { placeComponents } from '../helpers/gitlab-model.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';

/** the component version the README pins (…/build@0.2.0) */
function readmeVersion(ci: string): string {
  const m = /gitops-ci\/gitops-ci\/[\w-]+@([\w.-]+)/.exec(ci);
  if (!m) throw new Error('README example includes no gitops-ci component');
  return m[1]!;
}

const IMAGE_NAME = 'registry.example.com/shovel/shovel-gitops'; // the name the README's example (and the seed) uses

describe("the README's pipeline, verbatim, in gitlab-ci-local", () => {
  let h: PipelineHarness;
  let argo: ArgoCdDouble;
  /** what the scenarios hand on, in the seed's order: staging's digest, the MR into main */
  let stagingDigest = 'sha256:unset';
  let mrIid = '0';
  const ci = readmeExample();
  const version = readmeVersion(ci);
  const P = 'shovel/app';

  beforeAll(async () => {
    // the application project, laid out as the seed: its manifests in .kubernetes/, branches main and staging
    h = await startPipelineHarness([
      {
        path: P,
        branches: ['main', 'staging'],
        tree: { ...seedLayout(IMAGE_NAME), '.gitlab-ci.yml': ci, Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n' },
        binaries: { busybox: '/bin/busybox' },
      },
    ]);
    argo = await startArgoCdDouble({
      repoURL: h.srv.authUrl(`${P}.git`), // Argo CD's repository credentials
      apps: [
        { name: 'shovel-staging', path: '.kubernetes/overlays/staging', targetRevision: 'staging' },
        { name: 'shovel-production', path: '.kubernetes/overlays/production', targetRevision: 'main' },
      ],
      pollIntervalMs: ARGO_POLL_MS,
    });
  });
  afterAll(async () => {
    await argo?.stop();
    await h?.stop();
  });

  // the components as GitLab resolves the README's include (a released version: $[[ component.version ]] is it)
  const checkout = (branch: string) => {
    const dir = h.checkout(P, branch);
    const ctx = placeComponents(dir, join(ROOT, 'templates'));
    expect(Object.values(ctx).map((c) => c.version)).toEqual(Object.values(ctx).map(() => version));
    return dir;
  };
  const vars = (o: { protectedRef: boolean }) => h.vars(P, { ...o, argo });
  const gcl = (dir: string, extra: string[], v: Record<string, string>, unset: string[] = []) => h.gcl(dir, extra, v, unset);
  const jobs = (dir: string, v: Record<string, string>, unset: string[] = []) => h.jobs(dir, v, unset);

  it('a push to a feature branch, or to an unprotected staging, runs none of our jobs', async () => {
    const dir = checkout('main');
    git(dir, ['checkout', '-q', '-b', 'feature/login']);
    expect(await jobs(dir, vars({ protectedRef: false }))).toEqual([]);
    // even a protected branch that no input names deploys nothing
    expect(await jobs(dir, vars({ protectedRef: true }))).toEqual([]);
    const stg = checkout('staging');
    expect(await jobs(stg, vars({ protectedRef: false }))).toEqual([]);
  }, 60_000);

  it('a push to staging builds once, pins that digest in staging and waits until Argo CD runs it', async () => {
    const dir = checkout('staging');
    expect(await jobs(dir, vars({ protectedRef: true }))).toEqual(['gitops-build', 'gitops-deploy-staging']);
    const r = await gcl(dir, [], vars({ protectedRef: true }));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/PASS\s+gitops-build/);
    expect(r.out).toMatch(/PASS\s+gitops-deploy-staging/);
    expect(r.out).not.toMatch(/gitops-promote-production/);

    // the build's output, named after its job, reached the deploy job, which pinned it in staging only
    const buildEnv = readFileSync(join(dir, '.gitlab-ci-local/artifacts/gitops-build/.gitlab-ci-reports/dotenv/gitops-image.env'), 'utf8');
    const image = /^GITOPS_BUILD_IMAGE=(.+)$/m.exec(buildEnv)?.[1];
    expect(image).toMatch(new RegExp(`^${h.reg.host}/shovel/app@sha256:[0-9a-f]{64}$`));
    const check = tmp();
    git(check, ['clone', '-q', '--branch', 'staging', h.srv.authUrl(`${P}.git`), 'c']);
    const digest = image!.split('@')[1]!;
    stagingDigest = digest;
    expect(readFileSync(join(check, 'c/.kubernetes/overlays/staging/kustomization.yaml'), 'utf8')).toContain(digest);
    expect(readFileSync(join(check, 'c/.kubernetes/overlays/production/kustomization.yaml'), 'utf8')).not.toContain(digest);
    const head = git(join(check, 'c'), ['rev-parse', 'HEAD']);
    // manifests in this repository: no [skip ci] (GitLab would skip the staging → main MR pipeline for that head:
    // docs/gitlab.md#write-backs-and-pipelines); the pipeline of the write-back commit runs nothing of ours
    expect(git(join(check, 'c'), ['log', '-1', '--format=%B'])).not.toMatch(/\[(skip ci|ci skip)\]/i);
    const writeBack = checkout('staging');
    expect(git(writeBack, ['rev-parse', 'HEAD'])).toBe(git(join(check, 'c'), ['rev-parse', 'HEAD']));
    expect(await jobs(writeBack, { ...vars({ protectedRef: true }), CI_COMMIT_MESSAGE: git(writeBack, ['log', '-1', '--format=%B']) })).toEqual([]);
    // the deploy job waited for that very commit, and Argo CD runs it
    expect(r.out).toContain(`shovel-staging deployed ${head.slice(0, 8)}`);
    expect(argo.app('shovel-staging').status.sync.revision).toBe(head);
    const deployEnv = readFileSync(join(dir, '.gitlab-ci-local/artifacts/gitops-deploy-staging/.gitlab-ci-reports/dotenv/gitops-deploy.env'), 'utf8');
    expect(deployEnv).toContain(`GITOPS_DEPLOY_STAGING_CONFIG_HEAD=${head}`);
    // no secret in the job logs
    for (const s of [h.reg.password, h.srv.password, argo.token]) {
      expect(r.out).not.toContain(s);
      expect(r.out).not.toContain(Buffer.from(`gitlab-ci-token:${s}`).toString('base64'));
    }
  }, 180_000);
  it('a merge request from staging into main runs the production preview and the gate, which passes once someone other than the author approves', async () => {
    // the developer opens the promotion MR staging → main (staging now carries the bump commit)
    const res = await fetch(`${h.gl.apiUrl}/projects/${h.ids[P]}/merge_requests`, {
      method: 'POST',
      headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('dev'), 'content-type': 'application/json' },
      body: JSON.stringify({ source_branch: 'staging', target_branch: 'main', title: 'Release to production' }),
    });
    expect(res.status).toBe(201);
    const iid = String(((await res.json()) as { iid: number }).iid);
    const dir = checkout('staging');
    const mr = (target: string) => ({
      ...vars({ protectedRef: false }),
      CI_PIPELINE_SOURCE: 'merge_request_event',
      CI_MERGE_REQUEST_IID: iid,
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'staging',
      CI_MERGE_REQUEST_TARGET_BRANCH_NAME: target,
    });
    // GitLab sets no CI_COMMIT_BRANCH in merge-request pipelines
    const unset = ['CI_COMMIT_BRANCH'];
    expect(await jobs(dir, mr('main'), unset)).toEqual(['gitops-gate-production', 'gitops-preview-production']);
    expect(await jobs(dir, mr('staging'), unset)).toEqual(['gitops-preview-staging']);

    // no approval yet: the gate fails, and with "Pipelines must succeed" the MR cannot merge
    const before = await gcl(dir, ['--no-json-schema-validation'], mr('main'), unset);
    expect(before.code, before.out).not.toBe(0);
    expect(before.out).toMatch(/FAIL\s+gitops-gate-production/);
    expect(before.out).toMatch(/1 more approval/);
    // the preview shows, on the MR, what the promotion would change in production: staging's verified digest
    expect(before.out).toMatch(/PASS\s+gitops-preview-production/);
    const notes = h.gl.hooks.notes(P, Number(iid));
    expect(notes).toHaveLength(1);
    expect(String(notes[0]!.body)).toContain(stagingDigest);
    // the author's own approval does not count
    h.gl.hooks.approve(P, Number(iid), 'dev');
    expect((await gcl(dir, ['gitops-gate-production', '--no-json-schema-validation'], mr('main'), unset)).code).not.toBe(0);
    // alice approves; the team retries the gate job, as the README says
    h.gl.hooks.approve(P, Number(iid), 'alice');
    const after = await gcl(dir, ['gitops-gate-production', '--no-json-schema-validation'], mr('main'), unset);
    expect(after.code, after.out).toBe(0);
    expect(after.out).toMatch(/PASS\s+gitops-gate-production/);
    expect(after.out).not.toContain(h.gl.token);
    mrIid = iid;
  }, 180_000);

  it("merged into main, production gets the digest staging verified: gated, promoted, verified, never rebuilt", async () => {
    const merged = await fetch(`${h.gl.apiUrl}/projects/${h.ids[P]}/merge_requests/${mrIid}/merge`, { method: 'PUT', headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('alice') } });
    expect(merged.status, await merged.clone().text()).toBe(200);
    const dir = checkout('main');
    const mergeCommit = git(dir, ['rev-parse', 'HEAD']);
    expect(await jobs(dir, vars({ protectedRef: true }))).toEqual(['gitops-promote-production']);
    const r = await gcl(dir, ['--no-json-schema-validation'], vars({ protectedRef: true }));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/PASS\s+gitops-promote-production/);
    expect(r.out).not.toMatch(/gitops-build/);
    expect(r.out).toMatch(/gate: !\d+ approved: 1 of 1 \(@alice\)/);
    const check = tmp();
    git(check, ['clone', '-q', '--branch', 'main', h.srv.authUrl(`${P}.git`), 'c']);
    expect(readFileSync(join(check, 'c/.kubernetes/overlays/production/kustomization.yaml'), 'utf8')).toContain(stagingDigest);
    const head = git(join(check, 'c'), ['rev-parse', 'HEAD']);
    expect(git(join(check, 'c'), ['rev-parse', 'HEAD^'])).toBe(mergeCommit);
    expect(r.out).toContain(`shovel-production deployed ${head.slice(0, 8)}`);
    expect(argo.app('shovel-production').status.sync.revision).toBe(head);
    // nothing was built for main: the registry has no image of the merge commit
    const tags = await fetch(`http://${h.reg.host}/v2/shovel/app/tags/list`, { headers: { authorization: `Basic ${Buffer.from(`${h.reg.user}:${h.reg.password}`).toString('base64')}` } });
    expect(((await tags.json()) as { tags: string[] }).tags).not.toContain(mergeCommit);
    for (const s of [h.reg.password, h.srv.password, argo.token, h.gl.token]) expect(r.out).not.toContain(s);
  }, 180_000);

  it('a direct push to main, without an approved merge request, is not promoted', async () => {
    const dir = checkout('main');
    writeFileSync(join(dir, 'NOTES.md'), 'hotfix\n');
    git(dir, ['add', 'NOTES.md']);
    git(dir, ['commit', '-q', '-m', 'hotfix straight to main']);
    git(dir, ['push', '-q', h.srv.authUrl(`${P}.git`), 'HEAD:refs/heads/main']);
    const before = git(dir, ['rev-parse', 'HEAD']);
    const r = await gcl(dir, ['--no-json-schema-validation'], vars({ protectedRef: true }));
    // (gitlab-ci-local exits 0 here: it counts a job with `allow_failure: {exit_codes: [10]}` as allowed to fail
    // whatever its exit code, where GitLab allows only 10; the job's own status is FAIL as in GitLab)
    expect(r.out).toMatch(/FAIL\s+gitops-promote-production/);
    expect(r.out).toContain('EGITLAB_NO_MERGE_REQUEST');
    expect(r.out).not.toMatch(/promote: pushed/);
    const check = tmp();
    git(check, ['clone', '-q', '--branch', 'main', h.srv.authUrl(`${P}.git`), 'c']);
    expect(git(join(check, 'c'), ['rev-parse', 'HEAD'])).toBe(before);
  }, 120_000);
});
