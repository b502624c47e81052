/**
 * The components as a user includes them: gitlab-ci-local (4.73.0, the newest that runs on Node 20)
 * resolves the includes with inputs; the rendered pipeline must validate against GitLab's schema and carry
 * the inputs where they belong. A missing required input must be refused.
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

const PIPELINE = `stages: [build, deploy, verify]
include:
  - local: templates/build.yml
  - local: templates/bump.yml
    inputs:
      environment: staging
      overlay: .kubernetes/overlays/staging
      image-name: registry.example.com/shovel/app
  - local: templates/bump.yml
    inputs:
      job-prefix: prod-
      environment: production
      overlay: .kubernetes/overlays/production
      image-name: registry.example.com/shovel/app
      skip-ci: push-option
  - local: templates/verify.yml
    inputs:
      environment: staging
      app: shovel-staging
      timeout: 5m
`;

describe('components through gitlab-ci-local', () => {
  it("render with inputs into a pipeline that GitLab's schema accepts", async () => {
    const dir = project(PIPELINE);
    const r = await gcl(dir, ['--preview']);
    expect(r.code, r.out).toBe(0);
    const doc = parse(r.stdout!.slice(r.stdout!.indexOf('---'))) as Record<string, Record<string, unknown>>;
    expect(Object.keys(doc)).toEqual(expect.arrayContaining(['gitops-build', 'gitops-bump-staging', 'prod-bump-production', 'gitops-verify-staging']));
    const schema = JSON.parse(readFileSync(contractFile('gitlab-ci-schema.json'), 'utf8'));
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);

    const stg = doc['gitops-bump-staging']!;
    expect(stg.resource_group).toBe('gitops-staging');
    expect(stg.environment).toEqual({ name: 'staging', action: 'prepare' });
    expect((stg.variables as Record<string, string>).GITOPS_IMAGE_EXPR).toBe('registry.example.com/shovel/app=$IMAGE');
    expect((doc['prod-bump-production']!.variables as Record<string, string>).GITOPS_SKIP_CI).toBe('push-option');
    expect(doc['gitops-build']!.retry).toEqual({ max: 2, exit_codes: [75] });
    expect((doc['gitops-verify-staging']!.variables as Record<string, string>).GITOPS_TIMEOUT).toBe('5m');
  });

  it('refuses an include that lacks a required input', async () => {
    const dir = project(`include:\n  - local: templates/bump.yml\n    inputs:\n      environment: staging\n`);
    const r = await gcl(dir, ['--preview']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/`?overlay`? input: required value has not been provided/);
  });

  it("refuses a value outside an input's options", async () => {
    const dir = project(PIPELINE.replace('skip-ci: push-option', 'skip-ci: sometimes'));
    const r = await gcl(dir, ['--preview']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/skip-ci/);
  });
});
