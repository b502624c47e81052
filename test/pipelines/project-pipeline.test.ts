/**
 * The project's own pipeline (.gitlab-ci.yml) and its self-test child pipeline
 * (test/pipelines/self-test.gitlab-ci.yml), against GitLab's CI schema (test/contracts/gitlab-ci-schema.json)
 * and against what they promise: every image pinned, the runner image built once and published by digest on a
 * semver tag after the self-test, a Catalog release with notes; the self-test exists, is not skipped by a rule,
 * and includes components of this commit with inputs those components declare. The self-test pipeline is
 * validated after interpolating the included components with its inputs, as GitLab does.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import { contractFile } from '../helpers/contracts.js';
import { renderOverlay } from '../../src/kustomize/overlay.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
type Obj = Record<string, any>;

const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(JSON.parse(readFileSync(contractFile('gitlab-ci-schema.json'), 'utf8')));
const pipeline = parse(readFileSync(join(root, '.gitlab-ci.yml'), 'utf8')) as Obj;
const SELF_TEST = 'test/pipelines/self-test.gitlab-ci.yml';
const selfTest = parse(readFileSync(join(root, SELF_TEST), 'utf8')) as Obj;

const RESERVED = new Set(['workflow', 'stages', 'variables', 'include', 'default', 'image', 'services', 'cache', 'before_script', 'after_script']);
const jobs = (p: Obj) => Object.entries(p).filter(([k, v]) => !RESERVED.has(k) && !k.startsWith('.') && v && typeof v === 'object') as Array<[string, Obj]>;

/** `$VAR`/`${VAR}` replaced from the pipeline's global variables (one level, as the images are written) */
function expand(s: string, vars: Obj): string {
  return s.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (m, n: string) => (typeof vars[n] === 'string' ? vars[n] : m));
}

/** a job's image name, after `extends` */
function imageOf(p: Obj, job: Obj): string | undefined {
  const img = job.image ?? (job.extends ? p[job.extends as string]?.image : undefined);
  return typeof img === 'string' ? img : img?.name;
}

/** `$[[ inputs.x ]]` interpolation, as GitLab does when it includes a component */
function interpolate(node: unknown, inputs: Obj): unknown {
  if (typeof node === 'string') {
    const whole = /^\$\[\[\s*inputs\.([\w-]+)\s*\]\]$/.exec(node);
    if (whole) return inputs[whole[1]!];
    return node.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, n: string) => String(inputs[n]));
  }
  if (Array.isArray(node)) return node.map((n) => interpolate(n, inputs));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [interpolate(k, inputs) as string, interpolate(v, inputs)]));
  return node;
}

describe("the project's pipeline", () => {
  it("validates against GitLab's CI schema", () => {
    expect(validate(pipeline), JSON.stringify(validate.errors)).toBe(true);
  });

  it('pins every image it runs (a version, never latest), services included', () => {
    const vars = pipeline.variables as Obj;
    const images: string[] = [];
    for (const [name, job] of jobs(pipeline)) {
      if (job.trigger) continue;
      const img = imageOf(pipeline, job);
      expect(img, `${name} has no image`).toBeDefined();
      images.push(expand(img!, vars));
      for (const s of (job.services ?? (job.extends ? pipeline[job.extends]?.services : undefined) ?? []) as Array<string | Obj>) images.push(expand(typeof s === 'string' ? s : s.name, vars));
    }
    expect(images.length).toBeGreaterThan(4);
    for (const img of images) {
      if (img.startsWith('$CI_REGISTRY_IMAGE/runner:$CI_COMMIT_SHA')) continue; // the image this pipeline built
      expect(img, img).toMatch(/:(v?\d+\.\d+\.\d+)(-[\w.-]+)?(@sha256:[0-9a-f]{64})?$/);
      expect(img).not.toMatch(/:latest\b/);
    }
  });

  it('builds the runner image once from images/runner/Dockerfile, pushes it and hands on its digest', () => {
    const job = pipeline['runner-image'] as Obj;
    const script = (job.script as string[]).join('\n');
    expect(script.match(/image build/g)).toHaveLength(1);
    expect(script).toContain('--file images/runner/Dockerfile');
    expect(script).toContain('--push');
    expect(job.artifacts.reports.dotenv).toBe('runner.env');
    expect(script).toMatch(/RUNNER_DIGEST/);
    expect(existsSync(join(root, 'images/runner/Dockerfile'))).toBe(true);
    expect(existsSync(join(root, '.dockerignore'))).toBe(true);
  });

  it('runs the self-test (a child pipeline that exists, not skipped by any rule) before publishing', () => {
    const job = pipeline['self-test'] as Obj;
    expect(job.rules).toBeUndefined();
    expect(job.when).toBeUndefined();
    expect(job.trigger.strategy).toBe('depend');
    expect(job.trigger.include).toEqual([{ local: SELF_TEST }]);
    expect(existsSync(join(root, SELF_TEST))).toBe(true);
    expect(job.needs).toContain('runner-image');
    expect(job.variables.GITOPS_RUNNER_IMAGE).toBe('$RUNNER_REF');
    expect(pipeline['publish-runner'].needs).toEqual(expect.arrayContaining(['runner-image', 'self-test']));
  });

  it('on a semver tag publishes the tested digest as runner:<version> (a copy, no rebuild) and creates the Catalog release with notes', () => {
    const pub = pipeline['publish-runner'] as Obj;
    const rel = pipeline.release as Obj;
    for (const j of [pub, rel]) expect(j.rules).toEqual([{ if: '$CI_COMMIT_TAG =~ /^\\d+\\.\\d+\\.\\d+$/' }]);
    const script = (pub.script as string[]).join('\n');
    expect(script).toContain('gitops-ci image copy "$RUNNER_REF" "$RUNNER_IMAGE:$CI_COMMIT_TAG"');
    expect(script).not.toMatch(/image build/);
    expect(script).toMatch(/gitops-ci --version.*CI_COMMIT_TAG/); // the tag is the CLI's version
    for (const part of ['$CI_COMMIT_TAG', '$RUNNER_DIGEST', 'Changes', 'git log']) expect(script).toContain(part);
    expect(pub.artifacts.paths).toContain('release-notes.md');
    expect(rel.release).toMatchObject({ tag_name: '$CI_COMMIT_TAG', description: 'release-notes.md' });
    expect(rel.needs).toContain('publish-runner');
    expect(imageOf(pipeline, rel)).toBe('$GLAB_IMAGE');
  });
});

describe('the self-test pipeline', () => {
  const includes = selfTest.include as Array<{ component: string; inputs: Obj }>;

  it('includes components of this commit, with inputs they declare (and every required one)', () => {
    expect(includes.length).toBeGreaterThanOrEqual(2);
    for (const inc of includes) {
      const m = /^\$CI_SERVER_FQDN\/\$CI_PROJECT_PATH\/([\w-]+)@\$CI_COMMIT_SHA$/.exec(inc.component);
      expect(m, inc.component).not.toBeNull();
      const file = join(root, 'templates', `${m![1]}.yml`);
      expect(existsSync(file), `templates/${m![1]}.yml`).toBe(true);
      const spec = (parseAllDocuments(readFileSync(file, 'utf8'))[0]!.toJS() as { spec: { inputs: Obj } }).spec.inputs;
      for (const k of Object.keys(inc.inputs)) expect(Object.keys(spec), `${m![1]}: input ${k}`).toContain(k);
      for (const [k, v] of Object.entries(spec)) if (!v || (v as Obj).default === undefined) expect(inc.inputs, `${m![1]}: required input ${k}`).toHaveProperty(k);
      expect(inc.inputs['runner-image']).toBe('$GITOPS_RUNNER_IMAGE');
    }
  });

  it("validates against GitLab's CI schema once the components are interpolated, and its job overrides hit their jobs", () => {
    const merged: Obj = { ...selfTest };
    delete merged.include;
    const componentJobs: Obj = {};
    for (const inc of includes) {
      const name = /\/([\w-]+)@/.exec(inc.component)![1]!;
      const docs = parseAllDocuments(readFileSync(join(root, 'templates', `${name}.yml`), 'utf8'));
      const spec = (docs[0]!.toJS() as { spec: { inputs: Obj } }).spec.inputs;
      const values = Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, k in inc.inputs ? inc.inputs[k] : (v as Obj)?.default]));
      Object.assign(componentJobs, interpolate(docs[1]!.toJS(), values) as Obj);
    }
    for (const [k, v] of Object.entries(componentJobs)) merged[k] = { ...(v as Obj), ...(selfTest[k] ?? {}) };
    // the overrides in the self-test file are merged into jobs the components really define
    for (const [k] of jobs(selfTest)) if (!('stage' in selfTest[k])) expect(Object.keys(componentJobs), `override ${k}`).toContain(k);
    expect(validate(merged), JSON.stringify(validate.errors)).toBe(true);
    for (const s of merged.stages as string[]) expect(typeof s).toBe('string');
    for (const [name, job] of jobs(merged)) expect(merged.stages, `${name}: stage ${job.stage}`).toContain(job.stage);
    // the check job needs jobs that exist
    for (const n of selfTest['self-test-check'].needs as string[]) expect(Object.keys(merged)).toContain(n);
  });

  it('seeds its config repo from files of this commit that kustomize can build', async () => {
    for (const f of ['base/deployment.yaml', 'base/kustomization.yaml', 'overlays/self-test/kustomization.yaml']) expect(existsSync(join(root, 'test/pipelines/self-test/config', f)), f).toBe(true);
    const overlay = parse(readFileSync(join(root, 'test/pipelines/self-test/config/overlays/self-test/kustomization.yaml'), 'utf8')) as Obj;
    const bump = includes.find((i) => i.component.includes('/bump@'))!;
    expect(overlay.images.map((i: Obj) => i.name)).toContain(bump.inputs['image-name']);
    const rendered = await renderOverlay(join(root, 'test/pipelines/self-test/config/overlays/self-test'));
    expect(rendered).toContain(`image: ${bump.inputs['image-name']}:0`);
  });
});
