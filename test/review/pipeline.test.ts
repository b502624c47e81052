/**
 * templates/review.yml as a GitLab user includes it, in gitlab-ci-local against the harness's real git server, the
 * GitLab double and the Argo CD double (an ApplicationSet with a git directories generator `review/*`): a merge
 * request pipeline runs the start job (the MR's overlay written, the generated app waited for until it runs the
 * commit healthy), and then, as GitLab does when the MR is merged or closed, the environment's `on_stop` job
 * (the overlay removed, the app waited for until Argo CD deleted it).
 *
 * What gitlab-ci-local lacks and the test applies around it, citing GitLab's docs:
 * - GitLab runs the `environment:on_stop` job of the MR's environment when the MR is merged or closed
 *   (https://docs.gitlab.com/ci/environments/#stop-an-environment-when-a-merge-request-is-merged-or-closed); here
 *   the test closes the MR in the GitLab double, reads `on_stop` from the rendered start job and runs that job by
 *   name, in the same pipeline (same CI_PIPELINE_ID, as GitLab runs the stop job of the deployment's pipeline).
 * - A pipeline that runs exists in the GitLab API (the harness registers it): the stale guard checks the pipeline a
 *   write-back commit records against it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { git, seedLayout } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { startPipelineHarness, type PipelineHarness } from '../helpers/pipeline-harness.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';
import { contractRecorder } from '../argocd/contract.js';
import { checkType } from '../gitlab/contract.js';
import { ROOT } from '../helpers/gitlab-ci-local.js';

const VERSION = '0.2.0';
const IMAGE = 'registry.example.com/shovel/shovel-gitops';
const DIGEST = `sha256:${'7'.repeat(64)}`;
const CI = `include:
  - component: $CI_SERVER_FQDN/gitops-ci/gitops-ci/review@${VERSION}
    inputs:
      build-job: build-mr
      image-name: ${IMAGE}
      app-prefix: shovel-review-
      argocd-project: default
      timeout: 2m

stages: [build, deploy]

# the team's own build of merge-request pipelines: hands on BUILD_MR_IMAGE (repo@digest) as the build component does
build-mr:
  stage: build
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  script:
    - echo "BUILD_MR_IMAGE=${IMAGE}@${DIGEST}" > build.env
  artifacts:
    reports:
      dotenv: build.env
`;

// the README's review-apps example, verbatim: the build component builds the MR's image for the review app when
// its `sources` list merge_request_event, and the review component takes it by default
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const REVIEW_EXAMPLE = /```yaml\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('### Review apps per merge request')))![1]!;

describe('templates/review.yml in gitlab-ci-local', () => {
  let h: PipelineHarness;
  let argo: ArgoCdDouble;
  const recorder = contractRecorder();

  beforeAll(async () => {
    h = await startPipelineHarness([
      { path: 'shovel/app', branches: ['main', 'feature-x'], tree: { ...seedLayout(IMAGE), '.gitlab-ci.yml': CI } },
      { path: 'shovel/built', branches: ['main', 'feature-y'], tree: { ...seedLayout(IMAGE), '.gitlab-ci.yml': REVIEW_EXAMPLE } },
    ]);
    argo = await startArgoCdDouble({
      repoURL: h.srv.authUrl('shovel/app.git'),
      apps: [],
      appsets: [{ name: 'shovel-review', directories: 'review/*', template: { name: 'shovel-review-{{path.basename}}', path: '{{path}}', targetRevision: 'main', destinationNamespace: 'review-{{path.basename}}' } }],
      pollIntervalMs: 500,
      onResponse: recorder.onResponse,
    });
  });
  afterAll(async () => {
    await argo?.stop();
    await h?.stop();
    expect(recorder.violations).toEqual([]);
  });

  it('an MR pipeline starts the review app; closing the MR runs on_stop, which removes it and waits until Argo CD deleted it', async () => {
    const dir = h.checkout('shovel/app', 'feature-x', VERSION);
    git(dir, ['commit', '-q', '--allow-empty', '-m', 'feature x']);
    git(dir, ['push', '-q', h.srv.authUrl('shovel/app.git'), 'HEAD:refs/heads/feature-x']);
    const sha = git(dir, ['rev-parse', 'HEAD']).trim();
    const id = String(h.ids['shovel/app']);
    // the MR, in the GitLab double (its answers checked against test/contracts/gitlab-api.json)
    const api = (method: string, path: string, body?: object) =>
      fetch(`${h.gl.apiUrl}/projects/${id}${path}`, { method, headers: { 'PRIVATE-TOKEN': h.gl.token, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
    let res = await api('POST', '/merge_requests', { source_branch: 'feature-x', target_branch: 'main', title: 'feature x' });
    const mr = await res.json();
    expect([res.status, checkType(mr, 'MergeRequest', 'POST merge_requests')]).toEqual([201, []]);
    const iid = String(mr.iid);
    const pipelineId = String(h.gl.hooks.addPipeline('shovel/app', { sha, ref: `refs/merge-requests/${iid}/head`, status: 'running' }));
    const v = {
      ...h.vars('shovel/app', { protectedRef: false, argo }),
      CI_PIPELINE_SOURCE: 'merge_request_event',
      CI_PIPELINE_ID: pipelineId,
      CI_MERGE_REQUEST_IID: iid,
      CI_MERGE_REQUEST_PROJECT_ID: id,
      CI_MERGE_REQUEST_SOURCE_PROJECT_ID: id,
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'feature-x',
      CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main',
      CI_DEFAULT_BRANCH: 'main',
    };
    // the rules: both jobs in an MR pipeline (the stop job manual), none in a fork's pipeline without a token
    const listed = await h.pipeline(dir, v);
    expect(listed.jobs.map((j) => [j.name, j.when]).sort()).toEqual([['build-mr', 'on_success'], ['gitops-review', 'on_success'], ['gitops-review-stop', 'manual']]);
    expect(await h.jobs(dir, { ...v, CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '999' })).toEqual(['build-mr']);

    // the start job's environment, as GitLab records it
    const start = (parseYaml(await h.preview(dir, v)) as Record<string, any>)['gitops-review'];
    expect(start.environment).toMatchObject({ name: 'review/mr-$CI_MERGE_REQUEST_IID', action: 'start', on_stop: 'gitops-review-stop', auto_stop_in: '1 week' });
    expect(start.resource_group).toBe('gitops-review-mr-$CI_MERGE_REQUEST_IID');

    // the pipeline: build-mr, then the start job (the manual stop job waits)
    let r = await h.gcl(dir, ['--no-json-schema-validation'], v);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/PASS\s+gitops-review\b/);
    const check = tmp();
    git(check, ['clone', '-q', '--branch', 'main', h.srv.authUrl('shovel/app.git'), 'c']);
    const overlay = readFileSync(join(check, `c/review/mr-${iid}/kustomization.yaml`), 'utf8');
    expect(overlay).toContain(`digest: "${DIGEST}"`);
    const head = git(join(check, 'c'), ['rev-parse', 'HEAD']).trim();
    expect(git(join(check, 'c'), ['log', '-1', '--format=%B'])).toContain(`Gitops-Pipeline-Id: ${pipelineId}`);
    const env = readFileSync(join(dir, '.gitlab-ci-local/artifacts/gitops-review/.gitlab-ci-reports/dotenv/gitops-review.env'), 'utf8');
    expect(env).toContain(`GITOPS_REVIEW_CONFIG_HEAD=${head}`);
    expect(env).toContain('GITOPS_REVIEW_ARGOCD_HEALTH=Healthy');
    const app = argo.app(`shovel-review-mr-${iid}`);
    expect([app.status.sync.revision, app.status.health.status, app.status.summary.images]).toEqual([head, 'Healthy', [`${IMAGE}@${DIGEST}`]]);

    // GitLab: the MR is closed → the environment's on_stop job runs
    // (https://docs.gitlab.com/ci/environments/#stop-an-environment-when-a-merge-request-is-merged-or-closed)
    res = await api('PUT', `/merge_requests/${iid}`, { state_event: 'close' });
    const closed = await res.json();
    expect([res.status, closed.state, checkType(closed, 'MergeRequest', 'PUT merge_requests')]).toEqual([200, 'closed', []]);
    r = await h.gcl(dir, ['--no-json-schema-validation', start.environment.on_stop], v);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/PASS\s+gitops-review-stop\b/);
    expect(r.out).toContain(`shovel-review-mr-${iid} deleted (404)`);
    git(join(check, 'c'), ['pull', '-q']);
    expect(git(join(check, 'c'), ['ls-tree', '-d', '--name-only', 'HEAD', 'review/']).trim()).toBe('');
    expect(argo.app(`shovel-review-mr-${iid}`)).toBeUndefined();
    expect(recorder.checked).toBeGreaterThan(0);
  }, 300_000);

  it("the README's example: with the build component's sources listing merge_request_event, its job builds the MR's image and the start job takes it by default (build-job: gitops-build); by default the build component builds nothing in an MR pipeline", async () => {
    const dir = h.checkout('shovel/built', 'feature-y', VERSION);
    const id = String(h.ids['shovel/built']);
    const v = {
      ...h.vars('shovel/built', { protectedRef: false }),
      CI_PIPELINE_SOURCE: 'merge_request_event',
      CI_MERGE_REQUEST_IID: '7',
      CI_MERGE_REQUEST_PROJECT_ID: id,
      CI_MERGE_REQUEST_SOURCE_PROJECT_ID: id,
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'feature-y',
      CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main',
      CI_DEFAULT_BRANCH: 'main',
    };
    const listed = await h.pipeline(dir, v);
    expect(listed.jobs.map((j) => [j.name, j.stage, j.when]).sort()).toEqual([
      ['gitops-build', 'build', 'on_success'],
      ['gitops-review', 'deploy', 'on_success'],
      ['gitops-review-stop', 'deploy', 'manual'],
    ]);
    const start = (parseYaml(await h.preview(dir, v)) as Record<string, any>)['gitops-review'];
    expect(start.dependencies).toEqual(['gitops-build']);
    // the same component with its default sources (push): no build in the MR pipeline
    const withoutSources = REVIEW_EXAMPLE.replace(/^ +sources: .*\n/m, '');
    expect(withoutSources).not.toBe(REVIEW_EXAMPLE);
    writeFileSync(join(dir, '.gitlab-ci.yml'), withoutSources);
    expect((await h.jobs(dir, v)).sort()).toEqual(['gitops-review', 'gitops-review-stop']);
  }, 120_000);
});
