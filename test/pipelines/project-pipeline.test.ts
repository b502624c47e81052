/**
 * The project's own pipeline (.gitlab-ci.yml) and its self-test child pipeline
 * (test/pipelines/self-test.gitlab-ci.yml), against GitLab's CI schema (test/contracts/gitlab-ci-schema.json)
 * and against what they promise: every image pinned, the runner image built once and published by digest on a
 * semver tag after the self-test, as runner:<version> (what the components of that version default to, the tag
 * being the CLI's version and the README's), a Catalog release with notes; the self-test exists, is not skipped
 * by a rule, and includes components of this commit with inputs those components declare. The self-test pipeline
 * is validated after interpolating the included components with its inputs (and `component.version` empty, as
 * for an include by SHA), as GitLab does; its jobs run in the child pipeline, read the outputs under the names
 * the build component gives them, and bump the way the deploy component does.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import { contractFile } from '../helpers/contracts.js';
import { renderOverlay } from '../../src/kustomize/overlay.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
type Obj = Record<string, any>;

const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(JSON.parse(readFileSync(contractFile('gitlab-ci-schema.json'), 'utf8')));
// GitLab's `!reference [job, key]` tag, kept as the list it holds (https://docs.gitlab.com/ci/yaml/yaml_optimization/#reference-tags)
const reference = { tag: '!reference', collection: 'seq' as const, resolve: (seq: unknown) => seq };
const pipeline = parse(readFileSync(join(root, '.gitlab-ci.yml'), 'utf8'), { customTags: [reference] }) as Obj;
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
  const img = job.image ?? (job.extends ? imageOf(p, p[job.extends as string]) : undefined);
  return typeof img === 'string' ? img : img?.name;
}

/** `$[[ inputs.x ]]` interpolation, as GitLab does when it includes a component; `component.version` is empty
 * (the self-test includes by SHA, not by a version) */
function interpolate(node: unknown, inputs: Obj): unknown {
  if (typeof node === 'string') {
    const text = node.replace(/\$\[\[\s*component\.version\s*\]\]/g, '');
    expect(text, 'only component.version and inputs are interpolated').not.toMatch(/\$\[\[\s*component\./);
    const whole = /^\$\[\[\s*inputs\.([\w-]+)\s*\]\]$/.exec(text);
    if (whole) return inputs[whole[1]!];
    return text.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, n: string) => String(inputs[n]));
  }
  if (Array.isArray(node)) return node.map((n) => interpolate(n, inputs));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [interpolate(k, inputs) as string, interpolate(v, inputs)]));
  return node;
}

/** a component of templates/: its `spec:inputs` and its body (not interpolated) */
function component(name: string): { inputs: Obj; body: Obj } {
  const docs = parseAllDocuments(readFileSync(join(root, 'templates', `${name}.yml`), 'utf8'));
  return { inputs: (docs[0]!.toJS() as { spec: { inputs: Obj } }).spec.inputs, body: docs[1]!.toJS() as Obj };
}

/** a job's script as one shell text (list items on lines, `\`-continued lines joined) */
const scriptOf = (job: Obj) => ([] as string[]).concat(job.script as string | string[]).join('\n').replace(/\\\n\s*/g, ' ');

/** the flags of every `gitops-ci <command>` call in a script */
function cliFlags(script: string, command: string): string[] {
  // a call may start with variables for it alone (`GITOPS_CONFIG_REPO="$repo" gitops-ci bump …`: the config repo URL in
  // the environment, not on the command line)
  const calls = script.split('\n').filter((l) => new RegExp(`^\\s*(?:[A-Z_][A-Z0-9_]*="[^"]*"\\s+)*gitops-ci ${command}\\b`).test(l));
  expect(calls, `a gitops-ci ${command} call`).toHaveLength(1);
  return [...calls[0]!.matchAll(/\s(--[a-z][a-z-]*)/g)].map((m) => m[1]!);
}

/**
 * GitLab's `rules:` for the expressions our pipelines use: clauses `$VAR`, `$VAR == "x"`, `$VAR != "x"`,
 * `$VAR =~ /re/` joined by `&&`. Anything else throws (the test must be taught, not fooled). Returns whether the
 * job is added to the pipeline.
 */
function runs(rules: Obj[] | undefined, vars: Record<string, string>): boolean {
  if (!rules) return true;
  const value = (v: string) => vars[v.replace(/^\$\{?|\}?$/g, '')] ?? '';
  for (const rule of rules) {
    let match = true;
    if (rule.if !== undefined) {
      for (const clause of String(rule.if).split('&&').map((c) => c.trim())) {
        let m: RegExpExecArray | null;
        if ((m = /^(\$\w+)\s*(==|!=)\s*"([^"]*)"$/.exec(clause))) match &&= (value(m[1]!) === m[3]) === (m[2] === '==');
        else if ((m = /^(\$\w+)\s*(==|!=)\s*(\$\w+)$/.exec(clause))) match &&= (value(m[1]!) === value(m[3]!)) === (m[2] === '==');
        else if ((m = /^(\$\w+)\s*=~\s*\/(.*)\/(i?)$/.exec(clause))) match &&= new RegExp(m[2]!, m[3]).test(value(m[1]!));
        else if ((m = /^(\$\w+)$/.exec(clause))) match &&= value(m[1]!) !== '';
        else throw new Error(`rule clause not understood: ${clause}`);
      }
    }
    if (match) return rule.when !== 'never';
  }
  return false;
}

/** the name GitLab's dotenv outputs of a component job get: its script's own key line, run by sh for that job name */
function outputKey(job: Obj, jobName: string): string {
  const line = (job.script as string[]).find((l) => /^key=.*CI_JOB_NAME/.test(l));
  expect(line, 'the key line of the build script').toBeDefined();
  return execFileSync('sh', ['-c', `${line}; printf %s "$key"`], { env: { PATH: process.env.PATH, CI_JOB_NAME: jobName } }).toString();
}

describe("the project's pipeline", () => {
  it("validates against GitLab's CI schema", () => {
    expect(validate(pipeline), JSON.stringify(validate.errors)).toBe(true);
  });

  it('pins every image it runs by version and digest (never latest), services included', () => {
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
      expect(img, img).toMatch(/:(v?\d+\.\d+\.\d+)(-[\w.-]+)?@sha256:[0-9a-f]{64}$/);
      expect(img).not.toMatch(/:latest\b/);
    }
  });

  it('builds the runner image once per architecture from images/runner/Dockerfile, joins the digests into one index and hands that on', () => {
    const job = pipeline['runner-image'] as Obj;
    const script = (job.script as string[]).join('\n');
    expect(script.match(/image build/g)).toHaveLength(1);
    expect(script).toContain('--file images/runner/Dockerfile');
    expect(script).toContain('--push');
    expect(script).toContain('"$RUNNER_IMAGE:$CI_COMMIT_SHA-$ARCH"');
    expect(job.artifacts.reports.dotenv).toBe('runner-arch.env');
    // each architecture's digest under a name of its own: the key line run by sh for each ARCH
    const keyLine = (job.script as string[]).find((l) => /^A=/.test(l))!;
    for (const arch of ['amd64', 'arm64']) {
      const a = execFileSync('sh', ['-c', `${keyLine}; printf %s "$A"`], { env: { PATH: process.env.PATH, ARCH: arch } }).toString();
      expect(a).toBe(arch.toUpperCase());
    }
    const index = pipeline['runner-index'] as Obj;
    expect(index.needs).toEqual(['runner-image']);
    const iscript = (index.script as string[]).join('\n');
    expect(iscript).toContain('gitops-ci image index "$RUNNER_IMAGE:$CI_COMMIT_SHA" "$RUNNER_IMAGE@$RUNNER_DIGEST_AMD64" "$RUNNER_IMAGE@$RUNNER_DIGEST_ARM64"');
    expect(index.artifacts.reports.dotenv).toBe('runner.env');
    expect(iscript).toMatch(/RUNNER_REF=.*RUNNER_DIGEST=/);
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
    expect(job.needs).toContain('runner-index');
    // the built image goes down under a name no component uses for a job variable of its own: a trigger
    // variable beats a job variable, so GITOPS_RUNNER_IMAGE would silently replace the components' default
    expect(job.variables).toEqual({ SELF_TEST_RUNNER_IMAGE: '$RUNNER_REF' });
    const componentVars = new Set<string>();
    for (const f of readdirSync(join(root, 'templates')).filter((f) => f.endsWith('.yml'))) {
      for (const [, j] of jobs(component(f.replace(/\.yml$/, '')).body)) for (const k of Object.keys(j.variables ?? {})) componentVars.add(k);
    }
    expect(componentVars).toContain('GITOPS_RUNNER_IMAGE');
    for (const k of Object.keys(job.variables)) expect(componentVars, `trigger variable ${k}`).not.toContain(k);
    expect(pipeline['publish-runner'].needs).toEqual(expect.arrayContaining(['runner-index', 'self-test', 'self-test-components']));
    // every component, with the CLI the runner image ships: the bundle taken out of the image, no build from the checkout
    const bundle = (pipeline['runner-bundle'].script as string[]).join('\n');
    expect(imageOf(pipeline, pipeline['runner-bundle'])).toBe('$RUNNER_IMAGE:$CI_COMMIT_SHA');
    // both files of the CLI (scripts/build.mjs): the bundle alone cannot run a command
    expect(bundle).toContain('cp /usr/local/lib/gitops-ci/gitops-ci.cjs /usr/local/lib/gitops-ci/gitops-ci.chunks dist/');
    expect(pipeline['runner-bundle'].artifacts.paths).toEqual(['dist/gitops-ci.cjs', 'dist/gitops-ci.chunks']);
    const comp = pipeline['self-test-components'] as Obj;
    expect(comp.needs).toEqual(['runner-bundle']);
    expect(comp.variables).toEqual({ GITOPS_SKIP_BUILD: '1' });
    expect((comp.script as string[]).join('\n')).toContain('node scripts/run-tests.mjs test/templates/');
    expect(pipeline.stages.indexOf('self-test')).toBeLessThan(pipeline.stages.indexOf('publish'));
  });

  it("runs on GitLab.com's hosted runners as they are: no tag but the hosted runner of each architecture the runner image is built on", () => {
    for (const [name, job] of jobs(pipeline)) if (name !== 'runner-image') expect(job.tags, name).toBeUndefined();
    const build = pipeline['runner-image'] as Obj;
    expect(build.tags).toEqual(['$RUNNER_TAG']);
    expect(build.parallel.matrix).toEqual([
      { ARCH: 'amd64', RUNNER_TAG: 'saas-linux-small-amd64' },
      { ARCH: 'arm64', RUNNER_TAG: 'saas-linux-small-arm64' },
    ]);
    // the suite's kubectl is the release binary, checked against its sha256 before it runs
    const setup = (pipeline['.suite'].before_script as unknown[]).flat().join('\n');
    expect(setup).toMatch(/sha256sum -c/);
    for (const j of ['test', 'self-test-components']) expect(pipeline[j].extends, j).toBe('.suite');
    expect((pipeline.variables as Obj).KUBECTL_SHA256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('ships a license, as the CI/CD Catalog asks of a component project', () => {
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/MIT License/);
    expect((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { license: string }).license).toBe('MIT');
  });

  it('runs lint, test, runner-image and self-test in every pipeline its workflow allows; publishes only on a semver tag', () => {
    const contexts: Record<string, Record<string, string>> = {
      'default branch': { CI_PIPELINE_SOURCE: 'push', CI_COMMIT_BRANCH: 'main', CI_DEFAULT_BRANCH: 'main', CI_COMMIT_MESSAGE: 'a change' },
      tag: { CI_PIPELINE_SOURCE: 'push', CI_COMMIT_TAG: '0.2.0', CI_DEFAULT_BRANCH: 'main', CI_COMMIT_MESSAGE: 'a change' },
      'merge request': { CI_PIPELINE_SOURCE: 'merge_request_event', CI_DEFAULT_BRANCH: 'main', CI_COMMIT_MESSAGE: 'a change' },
    };
    for (const [what, vars] of Object.entries(contexts)) {
      expect(runs(pipeline.workflow.rules, vars), what).toBe(true);
      const ran = jobs(pipeline).filter(([, j]) => runs(j.rules, vars)).map(([n]) => n);
      expect(ran, what).toEqual(expect.arrayContaining(['lint', 'test', 'runner-image', 'runner-index', 'self-test', 'runner-bundle', 'self-test-components']));
      expect(ran.includes('publish-runner'), what).toBe(what === 'tag');
      expect(ran.includes('release'), what).toBe(what === 'tag');
    }
    expect(runs(pipeline.workflow.rules, { ...contexts['default branch']!, CI_COMMIT_MESSAGE: '[skip ci] bump' })).toBe(false);
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

  it('publishes the runner image the components of that version default to, and the README pins the version a tag of package.json releases', () => {
    // this project's registry path on gitlab.com, where the components say their runner image is
    const vars = { ...(pipeline.variables as Obj), CI_REGISTRY_IMAGE: 'registry.gitlab.com/gitops-ci/gitops-ci' };
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const published = `${expand(expand(pipeline.variables.RUNNER_IMAGE as string, vars), vars)}:${version}`;
    let seen = 0;
    for (const f of readdirSync(join(root, 'templates')).filter((f) => f.endsWith('.yml'))) {
      const { inputs, body } = component(f.replace(/\.yml$/, ''));
      expect(inputs['runner-image']?.default, `${f}: runner-image default`).toBe('$GITOPS_RUNNER_IMAGE');
      for (const [name, j] of jobs(body)) {
        expect(j.image?.name ?? j.image, `${f} ${name}`).toBe('$[[ inputs.runner-image ]]');
        const v = j.variables?.GITOPS_RUNNER_IMAGE as string;
        // the version itself, never $[[ component.version ]] (null when a component is included by SHA or branch)
        expect(v, `${f} ${name}: GITOPS_RUNNER_IMAGE`).toBe(published);
        seen++;
      }
    }
    expect(seen).toBeGreaterThan(4);
    // a tag of package.json's version releases what the README documents
    const pinned = new Set([...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/gitops-ci\/gitops-ci\/[\w-]+@([\w.-]+)/g)].map((m) => m[1]));
    expect([...pinned]).toEqual([version]);
    expect(version).toMatch(/^\d+\.\d+\.\d+$/); // the tag rule of publish-runner and release
  });
});

describe('the self-test pipeline', () => {
  const includes = selfTest.include as Array<{ component: string; inputs: Obj }>;
  const names = includes.map((i) => /\/([\w-]+)@/.exec(i.component)![1]!);
  const build = includes[names.indexOf('build')]!;
  const PREFIX = 'self-test-';
  const BUILD_JOB = `${PREFIX}build`;

  /** the self-test as GitLab sees it: the components interpolated with the inputs given, its own jobs merged in */
  function merged(): { all: Obj; componentJobs: Obj } {
    const all: Obj = { ...selfTest };
    delete all.include;
    const componentJobs: Obj = {};
    for (const inc of includes) {
      const { inputs, body } = component(/\/([\w-]+)@/.exec(inc.component)![1]!);
      const values = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, k in inc.inputs ? inc.inputs[k] : (v as Obj)?.default]));
      Object.assign(componentJobs, interpolate(body, values) as Obj);
    }
    for (const [k, v] of Object.entries(componentJobs)) all[k] = { ...(v as Obj), ...(selfTest[k] ?? {}) };
    return { all, componentJobs };
  }

  it('includes components of this commit (build, and image for a build of your own), with inputs they declare (and every required one)', () => {
    expect(names).toEqual(expect.arrayContaining(['build', 'image']));
    for (const inc of includes) {
      const m = /^\$CI_SERVER_FQDN\/\$CI_PROJECT_PATH\/([\w-]+)@\$CI_COMMIT_SHA$/.exec(inc.component);
      expect(m, inc.component).not.toBeNull();
      expect(existsSync(join(root, 'templates', `${m![1]}.yml`)), `templates/${m![1]}.yml`).toBe(true);
      const spec = component(m![1]!).inputs;
      for (const k of Object.keys(inc.inputs)) expect(Object.keys(spec), `${m![1]}: input ${k}`).toContain(k);
      for (const [k, v] of Object.entries(spec)) if (!v || (v as Obj).default === undefined) expect(inc.inputs, `${m![1]}: required input ${k}`).toHaveProperty(k);
      // included by SHA at a commit between releases: the runner image must be given, and it is the one built here
      expect(inc.inputs['runner-image']).toBe('$SELF_TEST_RUNNER_IMAGE');
      expect(inc.inputs['job-prefix']).toMatch(new RegExp(`^${PREFIX}`));
    }
  });

  it("validates against GitLab's CI schema once the components are interpolated, and its job overrides hit their jobs", () => {
    const { all, componentJobs } = merged();
    // the overrides in the self-test file are merged into jobs the components really define
    for (const [k] of jobs(selfTest)) if (!('stage' in selfTest[k])) expect(Object.keys(componentJobs), `override ${k}`).toContain(k);
    expect(Object.keys(componentJobs)).toContain(BUILD_JOB);
    expect(validate(all), JSON.stringify(validate.errors)).toBe(true);
    for (const s of all.stages as string[]) expect(typeof s).toBe('string');
    for (const [name, job] of jobs(all)) expect(all.stages, `${name}: stage ${job.stage}`).toContain(job.stage);
    // every job needs jobs that exist, in an earlier stage
    for (const [name, job] of jobs(all)) {
      for (const n of (job.needs ?? []) as Array<string | Obj>) {
        const need = typeof n === 'string' ? n : (n.job as string);
        expect(Object.keys(all), `${name} needs ${need}`).toContain(need);
        expect(all.stages.indexOf(all[need].stage), `${name} needs ${need}`).toBeLessThan(all.stages.indexOf(job.stage));
      }
    }
  });

  it('runs every job in the child pipeline of a default-branch, tag or merge-request pipeline (the build rules replaced)', () => {
    const { all, componentJobs } = merged();
    const child = { CI_PIPELINE_SOURCE: 'parent_pipeline', CI_DEFAULT_BRANCH: 'main' };
    const contexts = [
      { ...child, CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main', CI_COMMIT_REF_PROTECTED: 'true' },
      { ...child, CI_COMMIT_TAG: '0.2.0', CI_COMMIT_REF_NAME: '0.2.0', CI_COMMIT_REF_PROTECTED: 'true' },
      { ...child, CI_COMMIT_REF_NAME: 'feature', CI_COMMIT_REF_PROTECTED: 'false', CI_MERGE_REQUEST_IID: '7' },
    ];
    expect(jobs(all).length).toBeGreaterThanOrEqual(3);
    for (const vars of contexts) for (const [name, job] of jobs(all)) expect(runs(job.rules, vars), `${name} in ${vars.CI_COMMIT_REF_NAME}`).toBe(true);
    // the component's own rules build only on its protected branch (staging): the override is what makes it run
    expect(runs(componentJobs[BUILD_JOB].rules, contexts[0]!)).toBe(false);
    expect(selfTest[BUILD_JOB].rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "parent_pipeline"' }]);
  });

  it('runs every job on the runner image built in this pipeline, and pins the other images', () => {
    const { all } = merged();
    for (const [name, job] of jobs(all)) {
      expect(job.image?.name ?? job.image, name).toBe('$SELF_TEST_RUNNER_IMAGE');
      for (const s of (job.services ?? []) as Array<string | Obj>) expect(typeof s === 'string' ? s : s.name, `${name} service`).toMatch(/:\d+\.\d+\.\d+(-[\w.-]+)?$/);
    }
    expect(readFileSync(join(root, 'test/pipelines/self-test/Dockerfile'), 'utf8')).toMatch(/^FROM [\w./-]+:\d+\.\d+\.\d+$/m);
    expect(readFileSync(join(root, SELF_TEST), 'utf8')).not.toMatch(/\$\{?GITOPS_RUNNER_IMAGE\b/);
  });

  it("reads the build's outputs under the names the build component gives its job, and bumps as the deploy component does", () => {
    const { all, componentJobs } = merged();
    const key = outputKey(componentJobs[BUILD_JOB], BUILD_JOB);
    expect(key).toBe('SELF_TEST_BUILD');
    expect(componentJobs[BUILD_JOB].artifacts.reports.dotenv).toBeDefined();
    const bumpJob = jobs(all).find(([, j]) => /^\s*gitops-ci bump\b/m.test(scriptOf(j)));
    expect(bumpJob, 'a job that runs gitops-ci bump').toBeDefined();
    const [bumpName, bump] = bumpJob!;
    const check = all[`${PREFIX}check`] as Obj;
    expect(bump.needs).toEqual([{ job: BUILD_JOB, artifacts: true }]);
    expect(check.needs).toEqual(expect.arrayContaining([BUILD_JOB, bumpName]));
    // no old, unprefixed outputs (IMAGE, GITOPS_CHANGED): they are not set any more
    for (const text of [scriptOf(bump), scriptOf(check)]) expect(text).not.toMatch(/\$\{?(IMAGE|GITOPS_[A-Z_]+)\b/);
    expect(scriptOf(bump)).toContain(`--image "registry.example.com/self-test/app=$${key}_IMAGE"`);
    expect(scriptOf(check)).toContain(`$${key}_IMAGE_DIGEST`);
    expect(scriptOf(check)).toMatch(/gitops-ci image resolve "\$CI_REGISTRY_IMAGE\/self-test:\$CI_COMMIT_SHA"/);
    expect(build.inputs['extra-args']).toContain('--tag $CI_REGISTRY_IMAGE/self-test:$CI_COMMIT_SHA');
    // the bump's outputs reach the check under the names it reads
    const bumpOut = /sed 's\/\^GITOPS_\/([A-Z_]+)\/' \S+ > (\S+)/.exec(scriptOf(bump));
    expect(bumpOut, 'the bump outputs renamed').not.toBeNull();
    expect(bump.artifacts.reports.dotenv).toBe(bumpOut![2]);
    for (const out of ['CHANGED', 'COMMIT_SHA']) expect(scriptOf(check)).toContain(`$${bumpOut![1]}${out}`);
    // every flag the deploy component's bump passes, the self-test passes too (plus --render)
    const deployFlags = cliFlags(scriptOf(jobs(component('deploy').body).find(([n]) => /deploy-/.test(n))![1]), 'bump');
    const flags = cliFlags(scriptOf(bump), 'bump');
    expect(deployFlags.length).toBeGreaterThan(4);
    for (const f of deployFlags) expect(flags, `deploy passes ${f}`).toContain(f);
    expect(flags).toContain('--render');
    // and reads the pushed commit back from the config repo
    expect(scriptOf(bump)).toMatch(/rev-parse main\)" = "\$head"/);
    expect(scriptOf(bump)).toMatch(/show "\$head:\S+kustomization\.yaml" \| grep -F "\$\{SELF_TEST_BUILD_IMAGE#\*@\}"/);
  });

  it('seeds its config repo from files of this commit that kustomize can build', async () => {
    for (const f of ['base/deployment.yaml', 'base/kustomization.yaml', 'overlays/self-test/kustomization.yaml']) expect(existsSync(join(root, 'test/pipelines/self-test/config', f)), f).toBe(true);
    const { all } = merged();
    const bump = scriptOf(jobs(all).find(([, j]) => /^\s*gitops-ci bump\b/m.test(scriptOf(j)))![1]);
    expect(bump).toContain('cp -r test/pipelines/self-test/config ');
    const dir = /--dir (\S+)/.exec(bump)![1]!;
    const imageName = /--image "([^"=]+)=/.exec(bump)![1]!;
    const overlay = parse(readFileSync(join(root, 'test/pipelines/self-test/config', dir, 'kustomization.yaml'), 'utf8')) as Obj;
    expect(overlay.images.map((i: Obj) => i.name)).toContain(imageName);
    const rendered = await renderOverlay(join(root, 'test/pipelines/self-test/config', dir));
    expect(rendered).toContain(`image: ${imageName}:0`);
  });
});
