/**
 * GitLab's documented behaviours that gitlab-ci-local does not have, applied around it (issue 16 item 10).
 * gitlab-ci-local evaluates `rules:` and runs jobs; it does not decide whether GitLab creates a pipeline at all,
 * what `$[[ component.* ]]` holds for an include form, or in which order a DAG of `needs:` and stages starts. This
 * module is the judge for those, each rule citing the GitLab page (or issue/MR/source file) it encodes:
 *
 *   A. pipeline creation per source, `[skip ci]` and `-o ci.skip`, job-token pushes   → decidePipeline()
 *   B. component context per include form                                           → componentContext(), includeAs(), placeComponents()
 *   C. start order from stages and `needs:`                                          → jobGraph(), waitsFor()
 *   D. what GitLab sees of a push (ref, before/after, user, push options)            → installPushLog()
 *   E. the CI/CD variables GitLab gives a pipeline of each source                   → pipelineVariables()
 *   F. image references as the runner expands them                                  → jobImages(), isPinnedImage()
 *
 * Merge methods live in the GitLab double (test/doubles/gitlab/server.ts, "merge methods" block): a merge there
 * is a real push by the merging user, which D records and A turns into the target branch's push pipeline.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments, visit } from 'yaml';

// ------------------------------------------------------------------------------------------ A. pipeline creation

/**
 * CI_PIPELINE_SOURCE values modelled here (https://docs.gitlab.com/ci/jobs/job_rules/#ci_pipeline_source-predefined-variable).
 * `merged_result` is a merge request pipeline on the merge ref (CI_PIPELINE_SOURCE merge_request_event,
 * CI_MERGE_REQUEST_EVENT_TYPE merged_result; https://docs.gitlab.com/ci/pipelines/merged_results_pipelines/).
 */
export type PipelineSource = 'push' | 'merge_request_event' | 'merged_result' | 'schedule' | 'web' | 'api' | 'trigger';

/** GitLab's marker: `[ci skip]` or `[skip ci]`, any case, `-`/`_`/space (lib/gitlab/ci/pipeline/chain/skip.rb SKIP_PATTERN) */
export const SKIP_CI_MARKER = /\[(ci[ _-]skip|skip[ _-]ci)\]/i;

/** the user name a CI_JOB_TOKEN authenticates git as (https://docs.gitlab.com/ci/jobs/ci_job_token/) */
export const JOB_TOKEN_USER = 'gitlab-ci-token';

export interface PipelineTrigger {
  source: PipelineSource;
  /** the full message of the pipeline's commit (for merged_result: of the merge ref's commit) */
  message: string;
  /** push options of the push that triggered it (push, merge_request_event) */
  pushOptions?: string[];
  /** the git user of that push; JOB_TOKEN_USER for a push made with CI_JOB_TOKEN */
  pushedBy?: string;
}

export interface PipelineDecision {
  /** `created` runs its jobs; `skipped` is a pipeline with status skipped and no job; `none`: no pipeline */
  status: 'created' | 'skipped' | 'none';
  why: string;
}

/**
 * Does GitLab create a pipeline, and does it run?
 *
 * - Push pipelines of a commit whose message carries the marker, or pushed with `-o ci.skip`, are created as
 *   skipped: https://docs.gitlab.com/ci/pipelines/#skip-a-pipeline, https://docs.gitlab.com/topics/git/commit/#push-options-for-gitlab-cicd
 * - Merge request pipelines too: since 15.2 a `[skip ci]` head (or `-o ci.skip`) creates an empty SKIPPED merge
 *   request pipeline (https://gitlab.com/gitlab-org/gitlab/-/issues/375786), so no job of it runs, and with
 *   "Pipelines must succeed" the MR cannot merge unless skipped pipelines count as successful
 *   (https://docs.gitlab.com/user/project/merge_requests/auto_merge/#allow-merge-after-skipped-pipelines).
 * - Merged results pipelines run on GitLab's merge commit, which carries no marker: not skipped
 *   (https://gitlab.com/gitlab-org/gitlab/-/issues/208550).
 * - Scheduled, "Run pipeline" (web), API and trigger pipelines ignore the marker (`ignore_skip_ci: true` in
 *   RunPipelineScheduleWorker and the pipelines controller/API; https://docs.gitlab.com/ci/pipelines/#skip-a-pipeline
 *   names only push pipelines) and evaluate the rules as any pipeline.
 * - A push made with CI_JOB_TOKEN ("Allow Git push requests to the repository", 18.x) starts no pipeline at all
 *   (https://gitlab.com/gitlab-org/gitlab/-/merge_requests/197418; https://docs.gitlab.com/ci/jobs/ci_job_token/#allow-git-push-requests-to-your-project-repository).
 */
export function decidePipeline(t: PipelineTrigger): PipelineDecision {
  const marker = SKIP_CI_MARKER.test(t.message);
  const option = (t.pushOptions ?? []).some((o) => o === 'ci.skip' || o === 'skip-ci');
  switch (t.source) {
    case 'push':
    case 'merge_request_event':
      if (t.pushedBy === JOB_TOKEN_USER) return { status: 'none', why: 'pushed with CI_JOB_TOKEN: GitLab starts no pipeline for it (MR 197418)' };
      if (marker) return { status: 'skipped', why: `the commit message carries ${SKIP_CI_MARKER.exec(t.message)![0]}: a skipped ${t.source} pipeline` };
      if (option) return { status: 'skipped', why: `pushed with -o ci.skip: a skipped ${t.source} pipeline` };
      return { status: 'created', why: `${t.source} pipeline` };
    case 'merged_result':
      return { status: 'created', why: 'merged results pipelines run on the merge ref commit, not skipped by a marker (issue 208550)' };
    case 'schedule':
    case 'web':
    case 'api':
    case 'trigger':
      return { status: 'created', why: `${t.source} pipelines ignore [skip ci]` };
  }
}

// ------------------------------------------------------------------------------------------ B. component context

/**
 * The include forms a team can use (https://docs.gitlab.com/ci/components/#component-versions): a released
 * version (`@0.2.0`), a partial version (`@0.2`), `@~latest`, a commit SHA, a branch, and the same project
 * mirrored on a self-managed instance (not a catalog resource there).
 */
export type IncludeForm = 'release' | 'partial' | 'latest' | 'sha' | 'branch' | 'mirror';
export const INCLUDE_FORMS: IncludeForm[] = ['release', 'partial', 'latest', 'sha', 'branch', 'mirror'];

/** the component project as published: its released versions (catalog), the commit they point at, a branch */
export interface ComponentCatalog {
  project: string;
  releases: string[];
  sha: string;
  branch: string;
  /** where the mirror lives on the self-managed instance */
  mirrorProject: string;
}

export const DEFAULT_CATALOG: ComponentCatalog = {
  project: 'gitops-ci/gitops-ci',
  releases: ['0.1.0', '0.2.0', '0.2.1'],
  sha: '5f1c0a7e9d3b2a4c6e8f0a1b2c3d4e5f6a7b8c9d',
  branch: 'main',
  mirrorProject: 'mirrors/gitops-ci',
};

const semverParts = (v: string) => v.split('.').map(Number);
const semverCmp = (a: string, b: string) => {
  const x = semverParts(a);
  const y = semverParts(b);
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

/**
 * `@1`, `@1.0` and `~latest` resolve to the newest released version that matches
 * (https://docs.gitlab.com/ci/components/#semantic-version-ranges); a full version to itself.
 */
export function resolveVersion(ref: string, releases: string[]): string | undefined {
  const sorted = [...releases].sort(semverCmp);
  if (ref === '~latest') return sorted.at(-1);
  if (/^\d+(\.\d+)?$/.test(ref)) return sorted.filter((v) => v === ref || v.startsWith(`${ref}.`)).at(-1);
  return releases.includes(ref) ? ref : undefined;
}

/** what the user writes: `<project>/<name>@<ref>` */
export function includeTarget(form: IncludeForm, c: ComponentCatalog = DEFAULT_CATALOG): { project: string; ref: string } {
  const newest = [...c.releases].sort(semverCmp).at(-1)!;
  const minor = newest.split('.').slice(0, 2).join('.');
  switch (form) {
    case 'release':
      return { project: c.project, ref: newest };
    case 'partial':
      return { project: c.project, ref: minor };
    case 'latest':
      return { project: c.project, ref: '~latest' };
    case 'sha':
      return { project: c.project, ref: c.sha };
    case 'branch':
      return { project: c.project, ref: c.branch };
    case 'mirror':
      return { project: c.mirrorProject, ref: newest };
  }
}

export interface ComponentContext {
  name: string;
  sha: string;
  /** null for SHA, branch and mirror includes (renders empty) */
  version: string | null;
  reference: string;
}

/**
 * `$[[ component.* ]]` as GitLab fills it (https://docs.gitlab.com/ci/yaml/expressions/ "Component context",
 * 18.6+): `name` the component's name, `sha` the commit of the included ref, `reference` the ref as written, and
 * `version` the resolved semantic version for a released version of a catalog resource (`@0.2` → 0.2.1,
 * `~latest` → the newest) and null when the component is included by SHA or branch or the project is not a
 * catalog resource (a mirror): https://gitlab.com/gitlab-org/gitlab/-/merge_requests/208965.
 */
export function componentContext(name: string, form: IncludeForm, c: ComponentCatalog = DEFAULT_CATALOG, ref = includeTarget(form, c).ref): ComponentContext {
  const version = form === 'sha' || form === 'branch' || form === 'mirror' ? null : (resolveVersion(ref, c.releases) ?? null);
  return { name, sha: c.sha, version, reference: ref };
}

/** a team's .gitlab-ci.yml with every gitops-ci component include (of the project or its mirror) rewritten to `form` */
export function includeAs(ci: string, form: IncludeForm, c: ComponentCatalog = DEFAULT_CATALOG): string {
  const t = includeTarget(form, c);
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const re = new RegExp(`(component:\\s*\\S+?\\/)(?:${esc(c.project)}|${esc(c.mirrorProject)})\\/([\\w-]+)@[\\w.~-]+`, 'g');
  return ci.replace(re, (_m, head: string, name: string) => `${head}${t.project}/${name}@${t.ref}`);
}

/**
 * Places this repository's templates where gitlab-ci-local looks for the included components of `dir`'s
 * .gitlab-ci.yml (.gitlab-ci-local/includes/<host>/<project>/<ref>/templates), with `$[[ component.* ]]` already
 * filled as GitLab fills it: gitlab-ci-local resolves `component.version` only for version ranges (through
 * `git ls-remote --tags`, which has no GitLab to ask here) and leaves the expression in place when it is null.
 * A range (`@0.2`, `~latest`) is rewritten in the checkout's .gitlab-ci.yml to the version GitLab resolves, as
 * gitlab-ci-local cannot resolve it offline; `component.reference` still says what the user wrote.
 * Returns the component context the templates were given.
 */
export function placeComponents(dir: string, templatesDir: string, c: ComponentCatalog = DEFAULT_CATALOG, host = '127.0.0.1'): Record<string, ComponentContext> {
  const file = join(dir, '.gitlab-ci.yml');
  let ci = readFileSync(file, 'utf8');
  const out: Record<string, ComponentContext> = {};
  const re = /component:\s*\S+?\/((?:[\w.-]+\/)+)([\w-]+)@([\w.~-]+)/g;
  const seen: Array<{ project: string; name: string; ref: string }> = [];
  for (const m of ci.matchAll(re)) seen.push({ project: m[1]!.replace(/\/$/, ''), name: m[2]!, ref: m[3]! });
  for (const s of seen) {
    const form = formOf(s.project, s.ref, c);
    const ctx = componentContext(s.name, form, c, s.ref);
    out[s.name] = ctx;
    const dirRef = form === 'partial' || form === 'latest' ? ctx.version! : s.ref;
    if (dirRef !== s.ref) ci = ci.split(`${s.project}/${s.name}@${s.ref}`).join(`${s.project}/${s.name}@${dirRef}`);
    const dest = join(dir, '.gitlab-ci-local/includes', host, s.project, dirRef, 'templates');
    mkdirSync(dest, { recursive: true });
    for (const f of readdirSync(templatesDir)) {
      if (!f.endsWith('.yml')) {
        cpSync(join(templatesDir, f), join(dest, f), { recursive: true });
        continue;
      }
      const fctx = componentContext(f.replace(/\.yml$/, ''), form, c, s.ref);
      writeFileSync(join(dest, f), interpolateComponent(readFileSync(join(templatesDir, f), 'utf8'), fctx));
    }
  }
  writeFileSync(file, ci);
  return out;
}

/**
 * `$[[ component.* ]]` filled into a component file as GitLab does it: on the loaded YAML's strings, not on its
 * text (https://docs.gitlab.com/ci/inputs/#specify-functions-to-manipulate-input-values: interpolation replaces
 * the expression within a string value), so `image: runner:$[[ component.version ]]` with a null version becomes
 * the string "runner:", not a YAML syntax error. A null value renders empty (MR 208965).
 */
export function interpolateComponent(text: string, ctx: ComponentContext): string {
  const docs = parseAllDocuments(text);
  for (const d of docs) {
    visit(d, {
      Scalar(_k, n) {
        if (typeof n.value === 'string') n.value = n.value.replace(/\$\[\[\s*component\.(name|sha|version|reference)\s*\]\]/g, (_m, k: keyof ComponentContext) => ctx[k] ?? '');
      },
    });
  }
  return docs.map((d) => d.toString()).join('');
}

function formOf(project: string, ref: string, c: ComponentCatalog): IncludeForm {
  if (project === c.mirrorProject) return 'mirror';
  if (ref === '~latest') return 'latest';
  if (/^[0-9a-f]{40}$/.test(ref)) return 'sha';
  if (/^\d+(\.\d+)?$/.test(ref)) return 'partial';
  if (/^\d+\.\d+\.\d+/.test(ref)) return 'release';
  return 'branch';
}

// ------------------------------------------------------------------------------------------ C. start order

export interface ListedJob {
  name: string;
  stage: string;
  when: string;
  allow_failure?: unknown;
  /** absent: no `needs:` (stage order); [] : `needs: []` */
  needs?: Array<{ job: string; optional?: boolean }> | null;
}

/**
 * For each job of a pipeline, the jobs it waits for, as GitLab starts them (https://docs.gitlab.com/ci/yaml/#needs):
 * a job with `needs:` starts as soon as the jobs it needs have finished, regardless of stages (`needs: []`: when
 * the pipeline is created); a job without `needs:` starts when every job of the earlier stages has finished
 * (https://docs.gitlab.com/ci/yaml/#stages). An optional need of a job that is not in the pipeline is dropped
 * (https://docs.gitlab.com/ci/yaml/#needsoptional). `jobs` are the pipeline's jobs (rules evaluated).
 */
export function jobGraph(jobs: ListedJob[], stages: string[]): Map<string, string[]> {
  const order = ['.pre', ...stages.filter((s) => s !== '.pre' && s !== '.post'), '.post'];
  const idx = (s: string) => order.indexOf(s);
  const names = new Set(jobs.map((j) => j.name));
  const g = new Map<string, string[]>();
  for (const j of jobs) {
    if (Array.isArray(j.needs)) g.set(j.name, j.needs.map((n) => n.job).filter((n) => names.has(n)));
    else g.set(j.name, jobs.filter((o) => idx(o.stage) < idx(j.stage)).map((o) => o.name));
  }
  return g;
}

/**
 * Does `job` wait (directly or through the jobs it waits for) for `other` to finish? With `when: on_success`
 * (the default), a job whose prerequisites failed is not run (https://docs.gitlab.com/ci/yaml/#when), so
 * waiting for `other` means: it never starts before `other` passed.
 */
export function waitsFor(g: Map<string, string[]>, job: string, other: string): boolean {
  const seen = new Set<string>();
  const stack = [...(g.get(job) ?? [])];
  while (stack.length) {
    const n = stack.pop()!;
    if (n === other) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(g.get(n) ?? []));
  }
  return false;
}

/**
 * The jobs whose artifacts (dotenv reports included) a job receives (https://docs.gitlab.com/ci/yaml/#dependencies,
 * https://docs.gitlab.com/ci/yaml/#needsartifacts): with `needs:`, the needed jobs except those with
 * `artifacts: false`; else with `dependencies:`, those; else every job of the earlier stages.
 */
export function artifactSources(previewYaml: string, job: string, g: Map<string, string[]>): string[] {
  const j = (parseYaml(previewYaml) as Record<string, Record<string, unknown>>)[job];
  if (!j) throw new Error(`no job ${job} in the rendered pipeline`);
  const inPipeline = (n: string) => g.has(n);
  if (Array.isArray(j.needs)) {
    return (j.needs as Array<string | { job: string; artifacts?: boolean }>)
      .filter((n) => typeof n === 'string' || n.artifacts !== false)
      .map((n) => (typeof n === 'string' ? n : n.job))
      .filter(inPipeline);
  }
  if (Array.isArray(j.dependencies)) return (j.dependencies as string[]).filter(inPipeline);
  return g.get(job) ?? [];
}

// ------------------------------------------------------------------------------------------ D. what GitLab sees of a push

export interface PushEvent {
  ref: string;
  before: string;
  after: string;
  /** the authenticated git user (JOB_TOKEN_USER for CI_JOB_TOKEN) */
  user: string;
  pushOptions: string[];
}

/**
 * Installs a post-receive hook in a bare repo of the harness's git server that records each ref update with
 * the pushing user and the push options, which is what GitLab's pipeline creation starts from
 * (Git::BranchPushService: one push pipeline per updated branch, with its push options). Returns a reader.
 */
export function installPushLog(bareRepo: string): { pushes(): PushEvent[] } {
  const log = join(bareRepo, 'gitlab-model-pushes.jsonl');
  writeFileSync(log, '');
  const hook = join(bareRepo, 'hooks', 'post-receive');
  mkdirSync(join(bareRepo, 'hooks'), { recursive: true });
  writeFileSync(
    hook,
    `#!${process.execPath}
const fs = require('node:fs');
const n = Number(process.env.GIT_PUSH_OPTION_COUNT || 0);
const opts = [];
for (let i = 0; i < n; i++) opts.push(process.env['GIT_PUSH_OPTION_' + i]);
const lines = fs.readFileSync(0, 'utf8').split('\\n').filter(Boolean);
for (const l of lines) {
  const [before, after, ref] = l.split(' ');
  fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ ref, before, after, user: process.env.REMOTE_USER || '', pushOptions: opts }) + '\\n');
}
`,
  );
  chmodSync(hook, 0o755);
  return {
    pushes: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as PushEvent)
        : [],
  };
}

// ------------------------------------------------------------------------------------------ E. pipeline variables

export interface PipelineContext {
  source: PipelineSource;
  sha: string;
  before?: string;
  message: string;
  author: string;
  /** the branch (push, schedule, web, api, trigger) */
  branch?: string;
  protectedRef: boolean;
  mr?: { iid: number; source: string; target: string; projectId: number; sourceProjectId?: number };
  /** open MRs of the branch (branch pipelines): project path and iid */
  openMrs?: Array<{ project: string; iid: number }>;
}

/**
 * The predefined variables GitLab gives a pipeline of each source
 * (https://docs.gitlab.com/ci/variables/predefined_variables/): CI_COMMIT_BRANCH only in branch pipelines (not in
 * merge request pipelines), CI_MERGE_REQUEST_* only in merge request pipelines, CI_COMMIT_BEFORE_SHA all zeros
 * except for pushes, CI_OPEN_MERGE_REQUESTS in branch pipelines of a branch with an open MR.
 * Returns `set` (to pass) and `unset` (predefined variables gitlab-ci-local would derive that GitLab leaves unset).
 */
export function pipelineVariables(c: PipelineContext): { set: Record<string, string>; unset: string[] } {
  const title = c.message.split('\n')[0]!;
  const mrPipeline = c.source === 'merge_request_event' || c.source === 'merged_result';
  const set: Record<string, string> = {
    CI_PIPELINE_SOURCE: mrPipeline ? 'merge_request_event' : c.source,
    CI_COMMIT_SHA: c.sha,
    CI_COMMIT_SHORT_SHA: c.sha.slice(0, 8),
    CI_COMMIT_BEFORE_SHA: c.source === 'push' && c.before ? c.before : '0000000000000000000000000000000000000000',
    CI_COMMIT_MESSAGE: c.message,
    CI_COMMIT_TITLE: title,
    CI_COMMIT_AUTHOR: c.author,
    CI_COMMIT_REF_PROTECTED: String(c.protectedRef),
  };
  const unset: string[] = [];
  if (mrPipeline) {
    const mr = c.mr!;
    Object.assign(set, {
      CI_COMMIT_REF_NAME: mr.source,
      CI_MERGE_REQUEST_IID: String(mr.iid),
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: mr.source,
      CI_MERGE_REQUEST_TARGET_BRANCH_NAME: mr.target,
      CI_MERGE_REQUEST_PROJECT_ID: String(mr.projectId),
      CI_MERGE_REQUEST_SOURCE_PROJECT_ID: String(mr.sourceProjectId ?? mr.projectId),
      CI_MERGE_REQUEST_EVENT_TYPE: c.source === 'merged_result' ? 'merged_result' : 'detached',
    });
    unset.push('CI_COMMIT_BRANCH');
  } else {
    Object.assign(set, { CI_COMMIT_BRANCH: c.branch!, CI_COMMIT_REF_NAME: c.branch! });
    if (c.openMrs?.length) set.CI_OPEN_MERGE_REQUESTS = c.openMrs.map((m) => `${m.project}!${m.iid}`).join(',');
  }
  return { set, unset };
}

// ------------------------------------------------------------------------------------------ F. images

/** each job's `image:` of a rendered pipeline (gitlab-ci-local --preview), variables expanded as the runner does */
export function jobImages(previewYaml: string, extra: Record<string, string> = {}): Record<string, string> {
  const doc = parseYaml(previewYaml) as Record<string, unknown>;
  const globals = (doc.variables ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [name, job] of Object.entries(doc)) {
    if (!job || typeof job !== 'object' || Array.isArray(job) || !('script' in job)) continue;
    const j = job as Record<string, unknown>;
    const img = j.image ?? doc.image ?? (doc.default as Record<string, unknown> | undefined)?.image;
    if (img === undefined) continue;
    const raw = typeof img === 'string' ? img : String((img as { name?: unknown }).name ?? '');
    const vars: Record<string, string> = { ...extra };
    for (const [k, v] of Object.entries(globals)) vars[k] = typeof v === 'object' && v ? String((v as { value?: unknown }).value ?? '') : String(v);
    for (const [k, v] of Object.entries((j.variables ?? {}) as Record<string, unknown>)) vars[k] = typeof v === 'object' && v ? String((v as { value?: unknown }).value ?? '') : String(v);
    out[name] = expand(raw, vars);
  }
  return out;
}

/**
 * `$VAR` / `${VAR}` expansion of `image:` (https://docs.gitlab.com/ci/variables/where_variables_can_be_used/:
 * `image` is expanded with the job's variables, and a variable's value that refers to another is expanded too).
 * An unknown variable expands to the empty string.
 */
export function expand(text: string, vars: Record<string, string>, depth = 0): string {
  const r = text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => vars[(a ?? b)!] ?? '');
  return depth < 8 && /\$\{?\w/.test(r) ? expand(r, vars, depth + 1) : r;
}

/**
 * An image reference the runner can pull as what it says: a name, then an explicit tag and/or a digest
 * (https://docs.docker.com/reference/cli/docker/image/tag/ grammar; an empty tag after `:` is not valid).
 */
export function isPinnedImage(ref: string): boolean {
  const m = /^([a-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+|\/[a-z0-9]+)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/.exec(ref);
  return !!m && !!(m[2] || m[3]);
}
