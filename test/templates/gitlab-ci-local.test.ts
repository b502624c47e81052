/**
 * The components as a user includes them: gitlab-ci-local (4.73.0, the newest that runs on Node 20)
 * resolves the includes with inputs; the rendered pipeline must validate against GitLab's schema and carry
 * the inputs where they belong. Bad inputs (a missing required one, a value outside options or regex) are refused
 * when the pipeline is created.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { join } from 'node:path';
import { GITLAB_CI_LOCAL as GCL, ROOT, gitlabCiLocalProject } from '../helpers/gitlab-ci-local.js';
import { contractFile } from '../helpers/contracts.js';

const pexec = promisify(execFile);

function project(ci: string): string {
  return gitlabCiLocalProject({ '.gitlab-ci.yml': ci });
}

async function gcl(dir: string, args: string[]): Promise<{ code: number; out: string; stdout?: string }> {
  try {
    const r = await pexec(GCL, args, { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, out: r.stdout + r.stderr, stdout: r.stdout };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? 1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

// two services in one repo, and the config-repo pair: every component, some twice
const PIPELINE = `stages: [build, deploy, test]
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA
    inputs: { job-prefix: api-, context: api, dockerfile: api/Dockerfile }
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA
    inputs: { job-prefix: api-, image-name: registry.example.com/shovel/api, app: api-staging, url: https://api.staging.example.com, timeout: 5m }
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/promote@$CI_COMMIT_SHA
    inputs: { job-prefix: api-, from-app: api-staging, app: api-production, image-names: registry.example.com/shovel/api, approvers: alice @shovel/leads, approvals: 2 }
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/image@$CI_COMMIT_SHA
    inputs: { job-prefix: web-, image: $CI_REGISTRY_IMAGE/web:$CI_COMMIT_SHA, needs: [make-web] }
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA
    inputs: { job-prefix: web-, image-name: registry.example.com/shovel/web, app: web-staging, skip-ci: push-option }
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/config-repo@$CI_COMMIT_SHA
    inputs: { apps: api-staging=overlays/staging api-production=overlays/production }
make-web:
  stage: build
  script: [make push]
`;

describe('components through gitlab-ci-local', () => {
  it("render with inputs into a pipeline that GitLab's schema accepts, every job under its own name", async () => {
    const dir = project(PIPELINE);
    const r = await gcl(dir, ['--preview']);
    expect(r.code, r.out).toBe(0);
    const doc = parse(r.stdout!.slice(r.stdout!.indexOf('---'))) as Record<string, Record<string, any>>;
    expect(Object.keys(doc)).toEqual(
      expect.arrayContaining([
        'api-build', 'api-deploy-staging', 'api-promote-production', 'api-gate-production',
        'web-build', 'web-deploy-staging', 'gitops-preview', 'gitops-gate', 'gitops-verify', 'make-web',
      ]),
    );
    const schema = JSON.parse(readFileSync(contractFile('gitlab-ci-schema.json'), 'utf8'));
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);

    const stg = doc['api-deploy-staging']!;
    expect(stg.resource_group).toBe('gitops-staging');
    expect(stg.environment).toEqual({ name: 'staging', action: 'start', url: 'https://api.staging.example.com', deployment_tier: 'staging' });
    // stage order, not needs (which lets a job overtake the earlier stages, the team's tests among them:
    // https://docs.gitlab.com/ci/yaml/#needs); dependencies hand each deploy its own service's build outputs alone
    expect(stg.needs).toBeUndefined();
    expect(stg.dependencies).toEqual(['api-build']);
    expect(doc['web-deploy-staging']!.dependencies).toEqual(['web-build']);
    expect(doc['web-build']!.needs).toMatchObject([{ job: 'make-web' }]);
    // inputs reach the script as job variables (never interpolated into the script text); the script quotes them
    expect(stg.variables).toMatchObject({ GITOPS_INPUT_IMAGE_NAME: 'registry.example.com/shovel/api', GITOPS_INPUT_TIMEOUT: '5m', GITOPS_INPUT_APP: 'api-staging', GITOPS_INPUT_BUILD_JOB: 'api-build' });
    expect(stg.script.join('\n')).toContain('--image "$GITOPS_INPUT_IMAGE_NAME=$image"');
    expect(stg.script.join('\n')).toContain('--timeout "$GITOPS_INPUT_TIMEOUT"');
    expect(stg.script.join('\n')).toContain('unset GITOPS_CONFIG_REPO GITOPS_CONFIG_BRANCH GITOPS_SKIP_CI');
    expect(stg.script.join('\n')).not.toMatch(/\beval\b/);
    expect(doc['web-deploy-staging']!.variables.GITOPS_INPUT_SKIP_CI).toBe('push-option');
    const prod = doc['api-promote-production']!;
    expect(prod.needs).toBeUndefined();
    expect(prod.dependencies).toEqual([]);
    expect(prod.environment).toMatchObject({ name: 'production', action: 'start', deployment_tier: 'production' });
    expect(prod.variables).toMatchObject({ GITOPS_INPUT_APPROVALS: '2', GITOPS_INPUT_APPROVERS: 'alice @shovel/leads' });
    expect(prod.script.join('\n')).toContain('--approvals "$GITOPS_INPUT_APPROVALS"');
    expect(prod.script.join('\n')).toContain('for a in $GITOPS_INPUT_APPROVERS;');
    // the promotion MR variant opens an MR: it records no deployment
    expect(doc['api-promotion-mr-production']!.environment).toEqual({ name: 'production', action: 'prepare' });
    expect(doc['api-build']!.retry).toEqual({ max: 2, exit_codes: [75] });
    expect(doc['api-build']!.interruptible).toBe(true);
    expect(stg.interruptible).toBe(false);
    // the runner image never renders empty, however the components were included (here: by SHA)
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const [name, job] of Object.entries(doc)) {
      if (!job || typeof job !== 'object' || !('script' in job) || name === 'make-web') continue;
      expect(job.variables?.GITOPS_RUNNER_IMAGE, name).toBe(`registry.gitlab.com/gitops-ci/gitops-ci/runner:${version}`);
      expect(job.image?.name, name).toBe('$GITOPS_RUNNER_IMAGE');
      // no token, no credentialed URL on a command line the templates build
      expect(job.script.join('\n'), name).not.toMatch(/CI_REPOSITORY_URL|CI_JOB_TOKEN|GITOPS_GITLAB(_READ)?_TOKEN|GITOPS_GIT_TOKEN/);
    }
  });

  it('refuses an include that lacks a required input', async () => {
    const dir = project(`include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA\n    inputs:\n      app: shovel-staging\n`);
    const r = await gcl(dir, ['--preview']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/`?image-name`? input: required value has not been provided/);
  });

  it("refuses a value outside an input's options or regex", async () => {
    const bad = await gcl(project(PIPELINE.replace('skip-ci: push-option', 'skip-ci: sometimes')), ['--preview']);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/skip-ci/);
    const quote = await gcl(project(PIPELINE.replace('app: web-staging', 'app: "web\\"; rm -rf /"')), ['--preview']);
    expect(quote.code).not.toBe(0);
    expect(quote.out).toMatch(/app/);
    const dur = await gcl(project(PIPELINE.replace('timeout: 5m', 'timeout: soon')), ['--preview']);
    expect(dur.code).not.toBe(0);
    expect(dur.out).toMatch(/timeout/);
  });

  it('gate input: approvals gates production in the MR and before the promotion; manual makes the promotion a manual job; none only promotes', async () => {
    const seed = (gate: string) => `stages: [deploy]
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/promote@$CI_COMMIT_SHA
    inputs: { from-app: shovel-staging, app: shovel-production, gate: ${gate} }
`;
    const list = async (gate: string, vars: string[]) => {
      const r = await gcl(project(seed(gate)), ['--list-json', '--no-json-schema-validation', ...vars.flatMap((v) => ['--variable', v]), '--ignore-predefined-vars', 'CI_COMMIT_REF_PROTECTED,CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH']);
      expect(r.code, r.out).toBe(0);
      return (JSON.parse(r.stdout!.slice(r.stdout!.indexOf('['))) as Array<{ name: string; when: string }>).filter((j) => j.when !== 'never').map((j) => `${j.name}:${j.when}`).sort();
    };
    const main = ['CI_COMMIT_REF_PROTECTED=true'];
    const mr = ['CI_PIPELINE_SOURCE=merge_request_event', 'CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main', 'CI_MERGE_REQUEST_IID=1'];
    expect(await list('approvals', main)).toEqual(['gitops-promote-production:on_success']);
    expect(await list('approvals', mr)).toEqual(['gitops-gate-production:on_success', 'gitops-preview-production:on_success']);
    expect(await list('manual', main)).toEqual(['gitops-promote-production:manual']);
    expect(await list('manual', mr)).toEqual(['gitops-preview-production:on_success']);
    expect(await list('none', main)).toEqual(['gitops-promote-production:on_success']);
    expect(await list('merge-request', main)).toEqual(['gitops-promotion-mr-production:on_success']);
  });
  it('pipeline sources: only a push of the protected branch builds, deploys and promotes by default; an input opens other sources; our own write-back commits start nothing of ours', async () => {
    // GitLab ignores [skip ci] in scheduled, "Run pipeline" (web) and API pipelines
    // (https://docs.gitlab.com/ci/pipelines/#skip-a-pipeline): the rules themselves must keep them from deploying
    const seed = (sources?: string) => `stages: [build, test, deploy]
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA${sources ? `\n    inputs: { sources: "${sources}" }` : ''}
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA
    inputs: { image-name: registry.example.com/shovel/app, app: shovel-staging${sources ? `, sources: "${sources}"` : ''} }
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/promote@$CI_COMMIT_SHA
    inputs: { from-app: shovel-staging, app: shovel-production }
`;
    const dirs = new Map<string, string>();
    const list = async (ci: string, vars: Record<string, string>, unset: string[] = []) => {
      if (!dirs.has(ci)) dirs.set(ci, project(ci));
      const names = ['CI_COMMIT_REF_PROTECTED', 'CI_PIPELINE_SOURCE', 'CI_COMMIT_BRANCH', 'CI_COMMIT_MESSAGE', 'CI_COMMIT_TAG'];
      const r = await gcl(dirs.get(ci)!, ['--list-json', '--no-json-schema-validation', ...Object.entries(vars).flatMap(([k, v]) => ['--variable', `${k}=${v}`]), '--ignore-predefined-vars', names.join(','), ...unset.flatMap((k) => ['--unset-variable', k])]);
      expect(r.code, r.out).toBe(0);
      return (JSON.parse(r.stdout!.slice(r.stdout!.indexOf('['))) as Array<{ name: string; when: string }>).filter((j) => j.when !== 'never').map((j) => j.name).sort();
    };
    const on = (branch: string, source: string, message = 'feat: a change') => ({ CI_COMMIT_REF_PROTECTED: 'true', CI_COMMIT_BRANCH: branch, CI_PIPELINE_SOURCE: source, CI_COMMIT_MESSAGE: message });
    const ci = seed();
    expect(await list(ci, on('staging', 'push'))).toEqual(['gitops-build', 'gitops-deploy-staging']);
    expect(await list(ci, on('main', 'push'))).toEqual(['gitops-promote-production']);
    for (const [branch, source] of [['staging', 'schedule'], ['main', 'web'], ['staging', 'api'], ['main', 'trigger'], ['staging', 'pipeline'], ['main', 'parent_pipeline']] as const) {
      expect(await list(ci, on(branch, source)), `${source} on ${branch}`).toEqual([]);
    }
    // a tag pipeline has no CI_COMMIT_BRANCH
    expect(await list(ci, { CI_COMMIT_REF_PROTECTED: 'true', CI_PIPELINE_SOURCE: 'push', CI_COMMIT_TAG: '1.0.0', CI_COMMIT_MESSAGE: 'x' }, ['CI_COMMIT_BRANCH'])).toEqual([]);
    // opened on purpose: "Run pipeline" on staging builds and deploys
    expect(await list(seed('push|web'), on('staging', 'web'))).toEqual(['gitops-build', 'gitops-deploy-staging']);
    expect(await list(seed('push|web'), on('staging', 'schedule'))).toEqual([]);

    // the deploy's write-back commit (no [skip ci] in this layout) pushed to staging: nothing of ours runs, no loop
    const bump = 'deploy app@sha256:abc to staging\n\nGitops-Overlay: .kubernetes/overlays/staging\nGitops-Image: app=app@sha256:abc';
    expect(await list(ci, on('staging', 'push', bump))).toEqual([]);
    // the same commit on main after a fast-forward merge of staging: it is what production must get
    expect(await list(ci, on('main', 'push', bump))).toEqual(['gitops-promote-production']);
    // the promotion's own write-back commit on main: nothing left to promote
    const promoted = 'promote app from staging to production\n\nGitops-Overlay: .kubernetes/overlays/production\nGitops-Promoted-From: .kubernetes/overlays/staging';
    expect(await list(ci, on('main', 'push', promoted))).toEqual([]);
    // GitLab ignores [skip ci] in a web pipeline; a write-back head run on purpose still deploys (it is not a push)
    expect(await list(seed('push|web'), on('staging', 'web', bump))).toEqual(['gitops-build', 'gitops-deploy-staging']);
  }, 300_000);
});
