/**
 * GitLab's behaviours that gitlab-ci-local does not model (test/helpers/gitlab-model.ts), first as rules, then
 * applied to the components as a team includes them (the README's pipeline plus a team test job): which pipelines
 * GitLab creates per source and marker, what `$[[ component.* ]]` holds per include form (the runner image never
 * renders empty), and the start order GitLab derives from stages and `needs:`. Rendering and job lists only
 * (gitlab-ci-local --list-json / --preview): the end-to-end story is test/templates/gitlab-seed-flow.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { seedLayout } from '../helpers/config-repo.js';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import { readmeExample, startPipelineHarness, type PipelineHarness } from '../helpers/pipeline-harness.js';
import {
  DEFAULT_CATALOG,
  INCLUDE_FORMS,
  JOB_TOKEN_USER,
  artifactSources,
  componentContext,
  decidePipeline,
  includeAs,
  interpolateComponent,
  isPinnedImage,
  jobGraph,
  jobImages,
  pipelineVariables,
  placeComponents,
  resolveVersion,
  waitsFor,
  type PipelineSource,
} from '../helpers/gitlab-model.js';
import { buildMessage, TRAILER } from '../../src/bump/message.js';
import { TRAILER_FROM, TRAILER_FROM_COMMIT } from '../../src/promote/promote.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
/** a deploy's write-back commit, as `gitops-ci bump` writes it (`skip` as the skip-ci mode) */
const bumpMessage = (skip: 'message' | 'none') =>
  buildMessage({ changes: [{ overlay: '.kubernetes/overlays/staging', env: 'staging', image: 'registry.example.com/shovel/shovel-gitops', before: 'registry.example.com/shovel/shovel-gitops:3f2a9c1', after: DIGEST }], origin: { project: 'shovel/app', commit: 'c'.repeat(40), ref: 'staging' }, skipCi: skip });
/** a promote's write-back commit on main */
const promoteMessage = (skip: 'message' | 'none') =>
  buildMessage({
    changes: [{ overlay: '.kubernetes/overlays/production', env: 'production', image: 'registry.example.com/shovel/shovel-gitops', before: 'registry.example.com/shovel/shovel-gitops:3f2a9c1', after: DIGEST }],
    origin: { project: 'shovel/app', commit: 'd'.repeat(40), ref: 'main' },
    skipCi: skip,
    trailers: [
      [TRAILER_FROM, '.kubernetes/overlays/staging'],
      [TRAILER_FROM_COMMIT, 'e'.repeat(40)],
    ],
  });

describe('the rules (GitLab docs, issues and source)', () => {
  it('[skip ci] and ci.skip skip push and merge request pipelines (created as skipped); other sources ignore them; job-token pushes start none', () => {
    const skip = '[skip ci] bump app in staging';
    expect(decidePipeline({ source: 'push', message: 'feature' }).status).toBe('created');
    for (const m of [skip, 'x [CI SKIP]', 'x [skip-ci]', 'x [ci_skip]']) expect(decidePipeline({ source: 'push', message: m }).status, m).toBe('skipped');
    expect(decidePipeline({ source: 'push', message: 'x [skip  ci]' }).status).toBe('created'); // not GitLab's pattern
    expect(decidePipeline({ source: 'push', message: 'feature', pushOptions: ['ci.skip'] }).status).toBe('skipped');
    // a [skip ci] head creates a SKIPPED merge request pipeline (issue 375786): none of its jobs runs
    expect(decidePipeline({ source: 'merge_request_event', message: skip })).toMatchObject({ status: 'skipped' });
    expect(decidePipeline({ source: 'merge_request_event', message: 'feature', pushOptions: ['ci.skip'] }).status).toBe('skipped');
    // merged results run on GitLab's merge commit (issue 208550)
    expect(decidePipeline({ source: 'merged_result', message: skip }).status).toBe('created');
    for (const s of ['schedule', 'web', 'api', 'trigger'] as PipelineSource[]) expect(decidePipeline({ source: s, message: skip, pushOptions: ['ci.skip'] }).status, s).toBe('created');
    // pushed with CI_JOB_TOKEN: no pipeline, not even a skipped one (MR 197418)
    expect(decidePipeline({ source: 'push', message: 'feature', pushedBy: JOB_TOKEN_USER }).status).toBe('none');
    expect(decidePipeline({ source: 'merge_request_event', message: 'feature', pushedBy: JOB_TOKEN_USER }).status).toBe('none');
    // a write-back as gitops-ci writes it with the default skip-ci mode of a separate config repo
    expect(decidePipeline({ source: 'push', message: bumpMessage('message') }).status).toBe('skipped');
    expect(decidePipeline({ source: 'push', message: bumpMessage('none') }).status).toBe('created');
  });

  it('component context per include form: version null for SHA, branch and mirror; the resolved semver for a release, @0.2 and ~latest', () => {
    expect(resolveVersion('0.2', ['0.1.0', '0.2.0', '0.2.1', '0.10.0'])).toBe('0.2.1');
    expect(resolveVersion('~latest', ['0.1.0', '0.10.0', '0.2.1'])).toBe('0.10.0');
    expect(resolveVersion('0', ['0.1.0', '0.10.0', '1.0.0'])).toBe('0.10.0');
    expect(resolveVersion('0.3', ['0.2.1'])).toBeUndefined();
    const ctx = Object.fromEntries(INCLUDE_FORMS.map((f) => [f, componentContext('deploy', f)]));
    expect(ctx.release).toEqual({ name: 'deploy', sha: DEFAULT_CATALOG.sha, version: '0.2.1', reference: '0.2.1' });
    expect(ctx.partial).toMatchObject({ version: '0.2.1', reference: '0.2' });
    expect(ctx.latest).toMatchObject({ version: '0.2.1', reference: '~latest' });
    expect(ctx.sha).toMatchObject({ version: null, reference: DEFAULT_CATALOG.sha });
    expect(ctx.branch).toMatchObject({ version: null, reference: 'main' });
    expect(ctx.mirror).toMatchObject({ version: null, reference: '0.2.1' });
    expect(includeAs('  - component: $CI_SERVER_FQDN/gitops-ci/gitops-ci/deploy@0.2.0\n', 'mirror')).toBe(`  - component: $CI_SERVER_FQDN/${DEFAULT_CATALOG.mirrorProject}/deploy@0.2.1\n`);
    // interpolated into the loaded YAML's strings: a null version leaves a valid document with an empty tag
    const doc = interpolateComponent('spec:\n  component: [version]\n---\njob:\n  image: reg.example.com/runner:$[[ component.version ]]\n  script: [true]\n', ctx.sha!);
    expect((parseYaml(doc.split('---\n')[1]!) as { job: { image: string } }).job.image).toBe('reg.example.com/runner:');
    expect(isPinnedImage('reg.example.com/runner:')).toBe(false);
    expect(isPinnedImage('registry.gitlab.com/gitops-ci/gitops-ci/runner:0.2.1')).toBe(true);
    expect(isPinnedImage(`registry.gitlab.com/gitops-ci/gitops-ci/runner@${DIGEST}`)).toBe(true);
    expect(isPinnedImage('registry.gitlab.com/gitops-ci/gitops-ci/runner')).toBe(false);
  });

  it('start order: needs start when their needs finish (needs: [] at creation), jobs without needs wait for every earlier stage', () => {
    const g = jobGraph(
      [
        { name: 'build', stage: 'build', when: 'on_success', needs: [] },
        { name: 'lint', stage: 'build', when: 'on_success' },
        { name: 'unit', stage: 'test', when: 'on_success' },
        { name: 'deploy-needs', stage: 'deploy', when: 'on_success', needs: [{ job: 'build' }] },
        { name: 'promote-none', stage: 'deploy', when: 'on_success', needs: [] },
        { name: 'deploy-stages', stage: 'deploy', when: 'on_success' },
        { name: 'opt', stage: 'deploy', when: 'on_success', needs: [{ job: 'absent', optional: true }] },
      ],
      ['build', 'test', 'deploy'],
    );
    expect(waitsFor(g, 'deploy-needs', 'build')).toBe(true);
    expect(waitsFor(g, 'deploy-needs', 'unit')).toBe(false);
    expect(g.get('promote-none')).toEqual([]);
    expect(waitsFor(g, 'deploy-stages', 'unit')).toBe(true);
    expect(waitsFor(g, 'deploy-stages', 'lint')).toBe(true);
    expect(g.get('opt')).toEqual([]);
  });

  it('the variables of a merge request pipeline: no CI_COMMIT_BRANCH, the MR and both projects; a push gives its before sha', () => {
    const mr = pipelineVariables({ source: 'merge_request_event', sha: 'a'.repeat(40), message: 'x', author: 'Dev <dev@example.com>', protectedRef: false, mr: { iid: 3, source: 'staging', target: 'main', projectId: 10 } });
    expect(mr.unset).toContain('CI_COMMIT_BRANCH');
    expect(mr.set).toMatchObject({ CI_PIPELINE_SOURCE: 'merge_request_event', CI_MERGE_REQUEST_IID: '3', CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main', CI_MERGE_REQUEST_PROJECT_ID: '10', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '10', CI_MERGE_REQUEST_EVENT_TYPE: 'detached' });
    const push = pipelineVariables({ source: 'push', sha: 'a'.repeat(40), before: 'b'.repeat(40), message: 'x', author: 'Dev <dev@example.com>', branch: 'staging', protectedRef: true });
    expect(push.set).toMatchObject({ CI_COMMIT_BRANCH: 'staging', CI_COMMIT_BEFORE_SHA: 'b'.repeat(40), CI_COMMIT_REF_PROTECTED: 'true' });
    expect(pipelineVariables({ source: 'schedule', sha: 'a'.repeat(40), before: 'b'.repeat(40), message: 'x', author: 'x', branch: 'staging', protectedRef: true }).set.CI_COMMIT_BEFORE_SHA).toMatch(/^0{40}$/);
  });
});

describe('the components as GitLab renders and orders them', () => {
  const P = 'shovel/app';
  let h: PipelineHarness;
  // the README's pipeline, with a test stage and a team test job that fails
  const base = readmeExample();
  const teamCi = `${base.replace('stages: [build, deploy]', 'stages: [build, test, deploy]')}
unit-tests:
  stage: test
  script: [exit 1]
`;

  beforeAll(async () => {
    expect(teamCi).toContain('stages: [build, test, deploy]');
    h = await startPipelineHarness([{ path: P, branches: ['main', 'staging'], tree: { ...seedLayout(), '.gitlab-ci.yml': teamCi } }]);
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
  });

  /** a checkout of `branch` whose .gitlab-ci.yml includes the components in `form`, placed as GitLab resolves them */
  function checkout(branch: string, form: (typeof INCLUDE_FORMS)[number] = 'release'): string {
    const dir = h.checkout(P, branch);
    writeFileSync(join(dir, '.gitlab-ci.yml'), includeAs(readFileSync(join(dir, '.gitlab-ci.yml'), 'utf8'), form));
    placeComponents(dir, join(ROOT, 'templates'));
    return dir;
  }
  const pushVars = (branch: string, message: string, source: PipelineSource = 'push') => {
    const pv = pipelineVariables({ source, sha: 'f'.repeat(40), before: 'e'.repeat(40), message, author: 'Dev <dev@example.com>', branch, protectedRef: true });
    return { v: { ...h.vars(P, { protectedRef: true }), ...pv.set }, unset: pv.unset };
  };

  it('gitlab-ci-local alone is not GitLab: it leaves $[[ component.version ]] of a released version in place, where GitLab gives the version', async () => {
    const dir = h.checkout(P, 'staging');
    const tpl = mkdtempSync(join(tmpdir(), 'gci-tpl-'));
    mkdirSync(join(tpl, 't'));
    writeFileSync(join(tpl, 't/probe.yml'), 'spec:\n  component: [version, reference]\n---\nprobe:\n  image: reg.example.com/runner:$[[ component.version ]]\n  variables:\n    REF: $[[ component.reference ]]\n  script: [echo]\n');
    const raw = join(dir, '.gitlab-ci-local/includes/127.0.0.1/gitops-ci/gitops-ci/0.2.1/templates');
    mkdirSync(raw, { recursive: true });
    writeFileSync(join(raw, 'probe.yml'), readFileSync(join(tpl, 't/probe.yml')));
    // as released: @0.2.1 (gitlab-ci-local fills version only for ranges, which it resolves with git ls-remote)
    writeFileSync(join(dir, '.gitlab-ci.yml'), 'include:\n  - component: $CI_SERVER_FQDN/gitops-ci/gitops-ci/probe@0.2.1\n');
    const { v } = pushVars('staging', 'feature');
    expect(await h.preview(dir, v)).toContain('runner:$[[ component.version ]]');
    // the model gives what GitLab gives: the version for a release; for a range, the version it resolves and the ref as written
    writeFileSync(join(dir, '.gitlab-ci.yml'), 'include:\n  - component: $CI_SERVER_FQDN/gitops-ci/gitops-ci/probe@0.2\n');
    placeComponents(dir, join(tpl, 't'));
    const y = parseYaml(await h.preview(dir, v)) as { probe: { image: unknown; variables: { REF: string } } };
    expect(y.probe.image).toEqual({ name: 'reg.example.com/runner:0.2.1' }); // (--preview writes image: as {name})
    expect(y.probe.variables.REF).toBe('0.2');
  }, 60_000);

  for (const form of INCLUDE_FORMS) {
    it(`included by ${form}: every job's runner image is a pinned reference, never "…/runner:"`, async () => {
      const dir = checkout('staging', form);
      const { v } = pushVars('staging', 'feature');
      const images = jobImages(await h.preview(dir, v));
      const ours = Object.entries(images).filter(([name]) => name.startsWith('gitops-'));
      expect(ours.length).toBeGreaterThanOrEqual(5);
      for (const [name, image] of ours) expect(isPinnedImage(image), `${name}: image ${JSON.stringify(image)}`).toBe(true);
    }, 60_000);
  }

  it("stage order: staging's deploy and main's promote start only after the team's tests passed; each reads only the outputs it asks for", async () => {
    const stg = checkout('staging');
    const s = pushVars('staging', 'feature');
    const sp = await h.pipeline(stg, s.v, s.unset);
    expect(sp.jobs.map((j) => j.name).sort()).toEqual(['gitops-build', 'gitops-deploy-staging', 'unit-tests']);
    const sg = jobGraph(sp.jobs, sp.stages);
    expect(waitsFor(sg, 'gitops-deploy-staging', 'unit-tests'), 'the deploy waits for unit-tests').toBe(true);
    expect(waitsFor(sg, 'gitops-deploy-staging', 'gitops-build')).toBe(true);
    expect(artifactSources(await h.preview(stg, s.v, s.unset), 'gitops-deploy-staging', sg)).toEqual(['gitops-build']);

    const main = checkout('main');
    const m = pushVars('main', "Merge branch 'staging' into 'main'");
    const mp = await h.pipeline(main, m.v, m.unset);
    expect(mp.jobs.map((j) => j.name).sort()).toEqual(['gitops-promote-production', 'unit-tests']);
    const mg = jobGraph(mp.jobs, mp.stages);
    expect(waitsFor(mg, 'gitops-promote-production', 'unit-tests'), 'the promote waits for unit-tests').toBe(true);
    expect(artifactSources(await h.preview(main, m.v, m.unset), 'gitops-promote-production', mg)).toEqual([]);
  }, 120_000);

  it('pipelines that ignore [skip ci] (schedule, "Run pipeline", API, trigger) deploy and promote nothing by default', async () => {
    for (const [branch, head] of [
      ['staging', bumpMessage('message')],
      ['main', promoteMessage('message')],
    ] as const) {
      const dir = checkout(branch);
      for (const source of ['schedule', 'web', 'api', 'trigger'] as PipelineSource[]) {
        expect(decidePipeline({ source, message: head }).status).toBe('created');
        const p = pushVars(branch, head, source);
        const jobs = await h.jobs(dir, p.v, p.unset);
        expect(jobs.filter((j) => j.startsWith('gitops-')), `${source} pipeline on ${branch}`).toEqual([]);
      }
    }
  }, 180_000);

  it("a write-back's own push pipeline (skip-ci none, pushed with a token that starts pipelines) builds, deploys and promotes nothing: no loop", async () => {
    for (const [branch, head] of [
      ['staging', bumpMessage('none')],
      ['main', promoteMessage('none')],
    ] as const) {
      expect(head).toContain(`${TRAILER.overlay}: `);
      const d = decidePipeline({ source: 'push', message: head, pushedBy: 'oauth2' });
      expect(d.status).toBe('created');
      const p = pushVars(branch, head);
      const jobs = await h.jobs(checkout(branch), p.v, p.unset);
      expect(jobs.filter((j) => j.startsWith('gitops-')), `push pipeline of the write-back on ${branch}`).toEqual([]);
    }
    // the developer's own commits still deploy
    const p = pushVars('staging', 'feature');
    expect(await h.jobs(checkout('staging'), p.v, p.unset)).toEqual(['gitops-build', 'gitops-deploy-staging', 'unit-tests']);
  }, 120_000);
});
