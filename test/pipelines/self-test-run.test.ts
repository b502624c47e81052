/**
 * The self-test child pipeline (test/pipelines/self-test.gitlab-ci.yml), verbatim, run in gitlab-ci-local against
 * the harness's real services (test/helpers/pipeline-harness.ts): a project at gitops-ci/gitops-ci holding this
 * commit's templates/ and self-test files, so that `component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA`
 * is this project's own component at this commit, as in GitLab. The shell executor stands in for the runner image
 * (the bundled CLI on PATH) and for docker:dind (the harness's engine); the pinned images the pipeline names but
 * cannot pull here (docker:27.5.1-dind as a service, busybox:1.36.1 as the base of the built image) are local
 * stand-ins. The pipeline's own check job then proves it: built, pushed, pinned, served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { tmp, useDocker } from '../helpers/services.js';
import { git, type Tree } from '../helpers/config-repo.js';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import { startPipelineHarness, type PipelineHarness } from '../helpers/pipeline-harness.js';

const PROJECT = 'gitops-ci/gitops-ci';
const SELF_TEST = 'test/pipelines/self-test.gitlab-ci.yml';

/** the files of this commit under `dir`, by path relative to the repository root */
function files(dir: string): Tree {
  const out: Tree = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(ROOT, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(join(ROOT, dir));
  return out;
}

/** a local image of that name, when the engine has none: busybox in an image of its own, labelled as a stand-in */
function standIn(dockerHost: string, name: string, cmd: string): void {
  const env = { ...process.env, DOCKER_HOST: dockerHost };
  if (execFileSync('docker', ['images', '-q', name], { env }).toString().trim()) return;
  const ctx = tmp('selftest-standin-');
  cpSync('/bin/busybox', join(ctx, 'busybox'));
  const dockerfile = `FROM scratch\nCOPY busybox /bin/busybox\nLABEL gitops-ci.test=stand-in\nCMD ${cmd}\n`;
  execFileSync('docker', ['build', '-q', '-t', name, '-f', '-', ctx], { env, input: dockerfile, stdio: ['pipe', 'ignore', 'inherit'] });
}

describe('the self-test child pipeline in gitlab-ci-local', () => {
  let h: PipelineHarness;

  beforeAll(async () => {
    const docker = await useDocker();
    standIn(docker.host, 'docker:27.5.1-dind', '["/bin/busybox", "sleep", "3600"]');
    standIn(docker.host, 'busybox:1.36.1', '["/bin/busybox", "true"]');
    h = await startPipelineHarness([
      {
        path: PROJECT,
        branches: ['main'],
        tree: { ...files('templates'), ...files('test/pipelines/self-test'), '.gitlab-ci.yml': readFileSync(join(ROOT, SELF_TEST), 'utf8') },
      },
    ]);
  }, 180_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('builds with the build component of this commit, resolves it with the image component, bumps a config repo to the digest, and the registry serves that digest', async () => {
    const dir = h.checkout(PROJECT, 'main');
    const sha = git(dir, ['rev-parse', 'HEAD']).trim();
    const v = {
      ...h.vars(PROJECT, { protectedRef: true }),
      CI_PIPELINE_SOURCE: 'parent_pipeline',
      CI_COMMIT_BRANCH: 'main',
      // what the parent's trigger job passes down (the shell executor runs no image; the name must only be set)
      SELF_TEST_RUNNER_IMAGE: 'registry.example.invalid/gitops-ci/runner@sha256:' + '0'.repeat(64),
    };
    expect(await h.jobs(dir, v)).toEqual(['self-test-build', 'self-test-bump', 'self-test-byo-build', 'self-test-check']);
    const r = await h.gcl(dir, ['--no-json-schema-validation'], v);
    expect(r.code, r.out).toBe(0);
    for (const j of ['self-test-build', 'self-test-byo-build', 'self-test-bump', 'self-test-check']) expect(r.out).toMatch(new RegExp(`PASS\\s+${j}\\b`));
    // the outputs under the build job's names, the digest the registry holds for the tag
    const image = /SELF_TEST_BUILD_IMAGE=(\S+)/.exec(r.out)?.[1];
    expect(image, r.out).toMatch(new RegExp(`^${h.reg.host.replace(/[.]/g, '\\.')}/${PROJECT}/self-test@sha256:[0-9a-f]{64}$`));
    // the image component resolved the same digest by the tag
    expect(r.out).toContain(`built ${image}, resolved ${image}; bump changed=true, commit `);
    expect(r.out).toMatch(/SELF_TEST_BUMP_CHANGED=true/);
    const served = execFileSync(process.execPath, [join(ROOT, 'dist/gitops-ci.cjs'), 'image', 'resolve', `${h.reg.host}/${PROJECT}/self-test:${sha}`], {
      env: { ...process.env, ...v },
    }).toString().trim();
    expect(image).toBe(`${h.reg.host}/${PROJECT}/self-test@${served}`);
  }, 300_000);
});
