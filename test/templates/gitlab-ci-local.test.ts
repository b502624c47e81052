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
import { GITLAB_CI_LOCAL as GCL, gitlabCiLocalProject } from '../helpers/gitlab-ci-local.js';
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
    // each deploy reads the output of its own service's build, and nothing from other jobs
    expect(stg.needs).toMatchObject([{ job: 'api-build', artifacts: true }]);
    expect(stg.needs).toHaveLength(1);
    expect(doc['web-deploy-staging']!.needs).toMatchObject([{ job: 'web-build', artifacts: true }]);
    expect(doc['web-build']!.needs).toMatchObject([{ job: 'make-web' }]);
    // inputs are flags, not job variables a dotenv could override
    expect(Object.keys(stg.variables)).toEqual(['GITOPS_RUNNER_IMAGE']);
    expect(stg.script.join('\n')).toContain('--image "registry.example.com/shovel/api=$image"');
    expect(stg.script.join('\n')).toContain('--timeout "5m"');
    expect(stg.script.join('\n')).toContain('unset GITOPS_CONFIG_REPO GITOPS_CONFIG_BRANCH GITOPS_SKIP_CI');
    expect(doc['web-deploy-staging']!.script.join('\n')).toContain('--skip-ci "push-option"');
    const prod = doc['api-promote-production']!;
    expect(prod.needs).toEqual([]);
    expect(prod.environment).toMatchObject({ name: 'production', action: 'start', deployment_tier: 'production' });
    expect(prod.script.join('\n')).toContain('--approvals "2"');
    expect(prod.script.join('\n')).toContain('for a in alice @shovel/leads;');
    expect(doc['api-build']!.retry).toEqual({ max: 2, exit_codes: [75] });
    expect(doc['api-build']!.interruptible).toBe(true);
    expect(stg.interruptible).toBe(false);
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
    expect(await list('merge-request', main)).toEqual(['gitops-promote-production:on_success']);
  });
});
