/**
 * gitops-ci preview: for a merge-request pipeline, render what the change will deploy and post it as one note
 * per MR (found by a hidden marker and edited in place). See docs/commands/preview.md.
 */
import { join, resolve } from 'node:path';
import { removeTempDir, tempDir } from '../core/cleanup.js';
import { codeSpan } from '../core/markdown.js';
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { fail, type GitopsError } from '../core/errors.js';
import { intFlag, overlayFlag, retryAttempts } from '../core/flags.js';
import { envOf } from '../bump/message.js';
import { checkBranch, configRemote, type Remote } from '../git/url.js';
import { imageExprsFlag, parseImageExprs, type ImageExpr } from '../kustomize/image-expr.js';
import { gitlabOptions } from '../gitlab/config.js';
import { registryOptions } from '../registry/options.js';
import { diffRendered, formatDiffs, type DiffSection } from '../render/diff.js';
import { PreviewErrors } from '../preview/errors.js';

export const spec: CommandSpec = {
  name: 'preview',
  usage: 'gitops-ci preview [--mr IID] ((--image EXPR... | --from OVERLAY) --dir OVERLAY... [--repo URL|PATH] [--branch BRANCH] | [--base SHA] [--head SHA] [--dir OVERLAY...]) [--key KEY] [--dry-run]',
  description: `
Render what a merge request will deploy and post it as ONE note on the MR, found by a hidden marker and
edited in place on every run. Two uses:
- in an app repo's MR (--image given): what bump would change in each --dir overlay of the config repo
  (cloned like bump; nothing is committed or pushed); with --from OVERLAY instead, what promote would
  move from that overlay into each --dir;
- in the config repo's MR (no --image): every overlay the MR's changes touch, rendered at the MR's base
  (CI_MERGE_REQUEST_DIFF_BASE_SHA) and head (CI_COMMIT_SHA) from the local checkout (--repo-dir).
The diff: one <details> block per resource (kind namespace/name), a unified diff each, truncated per
resource with a note, the whole note under 100,000 characters, Secret data/stringData values replaced by a
marker before diffing. The MR's content is rendered in a sandbox: no remote bases, no path outside the
repository, no network, memory/output/time limits (docs/security.md). GitLab: CI_API_V4_URL / CI_SERVER_URL,
the MR's project CI_MERGE_REQUEST_PROJECT_ID (else CI_PROJECT_ID), GITOPS_GITLAB_READ_TOKEN >
GITOPS_GITLAB_TOKEN > GITLAB_TOKEN. A fork MR pipeline without a token is skipped (exit 0).`,
  options: {
    mr: { type: 'string', value: 'IID', description: 'merge request to comment on', env: ['CI_MERGE_REQUEST_IID'] },
    image: { type: 'string', multiple: true, value: 'EXPR', description: 'app mode: image expression as bump takes it (repeatable)' },
    from: { type: 'string', value: 'OVERLAY', description: 'app mode, as promote: the digests pinned in this overlay of the config repo, set in each --dir (tags resolved through the registry)' },
    dir: { type: 'string', multiple: true, value: 'OVERLAY', description: 'app mode: overlay to preview (repeatable); config mode: only these overlays' },
    repo: { type: 'string', value: 'URL|PATH', description: 'app mode: config repo (as bump)', env: ['GITOPS_CONFIG_REPO'] },
    branch: { type: 'string', value: 'BRANCH', description: 'app mode: config repo branch (as bump)', env: ['GITOPS_CONFIG_BRANCH'] },
    'repo-dir': { type: 'string', value: 'DIR', description: 'config mode: local checkout of the config repo', env: ['CI_PROJECT_DIR'] },
    base: { type: 'string', value: 'SHA', description: 'config mode: the MR base', env: ['CI_MERGE_REQUEST_DIFF_BASE_SHA'] },
    head: { type: 'string', value: 'SHA', description: 'config mode: the MR head', env: ['CI_COMMIT_SHA'] },
    'source-app': { type: 'string', value: 'APP', description: 'with --image: the Argo CD app the images were verified in (promote --from-app), named in the note' },
    'source-commit': { type: 'string', value: 'SHA', description: 'with --image: the config commit Argo CD verified (promote\'s GITOPS_SOURCE_COMMIT), named in the note' },
    key: { type: 'string', value: 'KEY', description: 'tells apart several preview notes on one MR (one per key)', default: 'default' },
    'max-chars': { type: 'string', value: 'N', description: 'limit of the note body', default: '100000' },
    'ssh-accept-new': { type: 'boolean', description: 'trust an unknown ssh host key on first use; prefer SSH_KNOWN_HOSTS' },
    timeout: { type: 'string', value: 'SECONDS', description: 'time limit', default: '300' },
    ...gitlabOptions,
    ...registryOptions,
    dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_PREVIEW_NOTE_ID, GITOPS_PREVIEW_RESOURCES, GITOPS_PREVIEW_OVERLAYS to FILE' },
    'dry-run': { type: 'boolean', description: 'print the note body on stdout; post nothing' },
  },
  examples: [
    'gitops-ci preview --image registry.example.com/shovel/app@$IMAGE_DIGEST --dir .kubernetes/overlays/staging --dir .kubernetes/overlays/production',
    'gitops-ci preview   # in the config repo MR pipeline: every overlay the MR touches, base vs head',
  ],
};

const MARKER_KIND = 'preview';

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const { env, log } = ctx;
  const problems: string[] = [];
  const errors: GitopsError[] = [];
  const dryRun = bool(values, 'dry-run');
  const mrRaw = str(values, 'mr') ?? (env.CI_MERGE_REQUEST_IID || undefined);
  const mrIid = mrRaw !== undefined ? Number(mrRaw) : undefined;
  if (mrRaw !== undefined && (!Number.isInteger(mrIid) || mrIid! < 1)) problems.push(`--mr must be a merge request IID (got ${JSON.stringify(mrRaw)})`);
  const dirs = [...new Set(strs(values, 'dir').map((d) => overlayFlag(d, 'dir', problems)).filter((d): d is string => !!d))];
  const rawExprs = strs(values, 'image');
  const fromRaw = str(values, 'from');
  const from = fromRaw !== undefined ? overlayFlag(fromRaw, 'from', problems) : undefined;
  if (fromRaw !== undefined && rawExprs.length) problems.push('--image and --from do not go together: preview what bump would set (--image), or what promote would move (--from)');
  const appMode = rawExprs.length > 0 || fromRaw !== undefined;
  let exprs: ImageExpr[] = [];
  let remote: Remote | undefined;
  let branch: string | undefined;
  let repoDir: string | undefined;
  let base: string | undefined;
  let head: string | undefined;
  if (appMode) {
    exprs = imageExprsFlag(rawExprs, errors);
    if (!dirs.length) problems.push(`no overlay: with ${from ? '--from' : '--image'}, pass --dir OVERLAY for each overlay to preview`);
    remote = configRemote(str(values, 'repo'), env, ctx.cwd, problems, errors);
    // not CI_DEFAULT_BRANCH: preview runs in the app's merge request pipeline, where that is the app repo's branch
    branch = str(values, 'branch') ?? env.GITOPS_CONFIG_BRANCH ?? 'main';
    checkBranch(branch, problems);
  } else {
    repoDir = resolve(ctx.cwd, str(values, 'repo-dir') ?? env.CI_PROJECT_DIR ?? '.');
    base = str(values, 'base') ?? (env.CI_MERGE_REQUEST_DIFF_BASE_SHA || undefined);
    head = str(values, 'head') ?? (env.CI_COMMIT_SHA || undefined);
    if (!base) problems.push('no base commit: pass --base SHA (CI_MERGE_REQUEST_DIFF_BASE_SHA in an MR pipeline), or --image/--dir for an app repo MR');
    if (!head) problems.push('no head commit: pass --head SHA (CI_COMMIT_SHA in a pipeline)');
    for (const [n, v] of [['base', base], ['head', head]] as const) if (v && !/^[0-9a-f]{4,64}$/i.test(v)) problems.push(`--${n} must be a commit SHA in hex (got ${JSON.stringify(v)})`);
  }
  const maxChars = intFlag(str(values, 'max-chars'), 'max-chars', 100_000, 2000, 1_000_000, problems);
  const timeoutS = intFlag(str(values, 'timeout'), 'timeout', 300, 1, 86_400, problems);
  const key = (str(values, 'key') ?? 'default').trim() || 'default';
  const sourceApp = str(values, 'source-app');
  const sourceCommit = str(values, 'source-commit');
  if ((sourceApp !== undefined || sourceCommit !== undefined) && !rawExprs.length) problems.push('--source-app/--source-commit name where the --image digests come from: give them with --image');
  if (sourceCommit !== undefined && !/^[0-9a-f]{7,64}$/i.test(sourceCommit)) problems.push(`--source-commit must be a commit SHA in hex (got ${JSON.stringify(sourceCommit)})`);
  if (!dryRun && mrIid === undefined && !problems.length) {
    throw fail.usage(PreviewErrors.NO_MR, 'no merge request to comment on: this is not a merge-request pipeline and --mr is not given', {
      hint: 'run preview in a merge request pipeline (rules: - if: $CI_PIPELINE_SOURCE == "merge_request_event"), pass --mr IID, or use --dry-run',
    });
  }
  if (problems.length || errors.length) {
    const all = [...problems, ...errors.map((e) => e.message)];
    if (!problems.length && errors.length === 1) throw errors[0]!;
    throw fail.usage(PreviewErrors.CONFIG, all.length === 1 ? all[0]! : `${all.length} problems with the preview configuration`, { where: 'command line', details: all.length > 1 ? all.map((p) => `- ${p}`) : undefined, hint: 'run `gitops-ci preview --help`' });
  }

  // a fork's MR pipeline runs in the fork, which holds no token of the parent project: nothing to post with.
  // A skip, not a failure (https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/#use-with-forked-projects)
  const fork = !!env.CI_MERGE_REQUEST_SOURCE_PROJECT_ID && !!env.CI_MERGE_REQUEST_PROJECT_ID && env.CI_MERGE_REQUEST_SOURCE_PROJECT_ID !== env.CI_MERGE_REQUEST_PROJECT_ID;
  const anyToken = !!(env.GITOPS_GITLAB_READ_TOKEN || env.GITOPS_GITLAB_TOKEN || env.GITLAB_TOKEN);
  if (!dryRun && fork && !anyToken) {
    return { summary: `skipped: this merge request comes from a fork (project ${env.CI_MERGE_REQUEST_SOURCE_PROJECT_ID}) and the pipeline has no GitLab token to post the preview; run the pipeline in the parent project (Pipelines > Run pipeline on the MR) to get it, after reviewing the MR's changes: they then run with the parent's CI/CD variables`, outputs: {} };
  }

  // GitLab first: a token problem fails before any work
  let post: ((body: string) => Promise<{ id: number; created: boolean; changed: boolean }>) | undefined;
  if (!dryRun) {
    const { resolveGitlabConfig } = await import('../gitlab/config.js');
    const { gitlabClient } = await import('../gitlab/client.js');
    const { upsertNote, noteMarker } = await import('../gitlab/notes.js');
    // the MR's project (the parent of a fork), and the read token first (docs: INTERFACES, GitLab tokens)
    const glEnv = {
      ...env,
      CI_PROJECT_ID: env.CI_MERGE_REQUEST_PROJECT_ID || env.CI_PROJECT_ID,
      ...(env.GITOPS_GITLAB_READ_TOKEN ? { GITOPS_GITLAB_TOKEN: env.GITOPS_GITLAB_READ_TOKEN } : {}),
    };
    const cfg = resolveGitlabConfig(glEnv, values);
    const gl = gitlabClient(cfg, { log, attempts: retryAttempts(env) });
    await gl.getMergeRequest(cfg.project, mrIid!);
    post = (body) => upsertNote(gl, { project: cfg.project, mrIid: mrIid!, marker: noteMarker(MARKER_KIND, key), body });
  }
  const marker = `<!-- gitops-ci:${MARKER_KIND}:${key.replace(/-->|[\r\n]/g, '')} -->`;

  let sections: DiffSection[];
  let what: string;
  if (appMode) {
    const { previewEdits } = await import('../preview/app.js');
    const deadline = Date.now() + timeoutS * 1000;
    if (from) {
      // what promote would move: the source overlay's images, as digests
      const { readSource, pinDigests } = await import('../promote/source.js');
      const { makeRegistries } = await import('../registry/options.js');
      const source = await readSource({ remote: remote!, branch: branch!, from, names: [], env, log, deadline, sshAcceptNew: bool(values, 'ssh-accept-new'), historyDepth: 1 });
      // 'every': docs/commands/preview.md documents --registry-user as the access that resolves --from's tags
      const pinned = await pinDigests(source.images, { regs: () => makeRegistries(ctx, values, 'every'), requireDigest: false, copyTo: new Map(), log });
      exprs = parseImageExprs(pinned.map((p) => p.expr));
    }
    const r = await previewEdits({ remote: remote!, branch: branch!, overlays: dirs, exprs, env, log, deadline, sshAcceptNew: bool(values, 'ssh-accept-new') });
    sections = r.sections;
    const images = exprs.map((e) => codeSpan(e.raw)).join(', ');
    const source = sourceApp || sourceCommit ? `promoting ${[sourceApp ? `what the Argo CD app ${codeSpan(sourceApp)} runs` : '', sourceCommit ? `at the config commit ${codeSpan(sourceCommit)} it verified` : ''].filter(Boolean).join(' ')} (${images})` : undefined;
    what = `what ${source ?? (from ? `promoting ${codeSpan(envOf(from))} (${images})` : `setting ${images}`)} changes in ${dirs.map((d) => codeSpan(envOf(d))).join(', ')} (config ${codeSpan(remote!.display)} ${codeSpan(branch!)} at ${codeSpan(r.head.slice(0, 12))})`;
  } else {
    sections = await configSections(repoDir!, base!, head!, dirs, ctx, Date.now() + timeoutS * 1000);
    what = `every overlay this merge request touches, rendered at its base ${codeSpan(base!.slice(0, 12))} and head ${codeSpan(head!.slice(0, 12))}`;
  }
  const header = `### gitops-ci preview\n\n${sections.length ? `What this merge request deploys: ${what}.` : `This merge request changes no overlay's rendered manifests (${what}).`}`;
  const out = formatDiffs(sections, { maxChars, header, footer: `${marker}\n<sub>Updated by gitops-ci preview on every pipeline of this merge request.</sub>` });
  const failed = sections.filter((s) => s.error);
  let noteId: number | undefined;
  if (dryRun) log.stdout(`${out.body}\n`);
  else {
    const r = await post!(out.body);
    noteId = r.id;
    log.info(r.created ? `posted the preview note ${r.id} on merge request !${mrIid}` : r.changed ? `updated the preview note ${r.id} on merge request !${mrIid}` : `the preview note ${r.id} on merge request !${mrIid} is up to date (unchanged)`);
  }
  const outputs = { GITOPS_PREVIEW_NOTE_ID: noteId !== undefined ? String(noteId) : undefined, GITOPS_PREVIEW_RESOURCES: String(out.resources), GITOPS_PREVIEW_OVERLAYS: sections.map((s) => s.title.replace(/ \(.*$/, '')).join(',') };
  if (failed.length) {
    throw fail.failed(PreviewErrors.RENDER, `${failed.length} overlay${failed.length > 1 ? 's' : ''} could not be rendered: ${failed.map((s) => s.title).join(', ')}`, {
      details: failed.flatMap((s) => s.error!.split('\n').slice(0, 6)),
      hint: `fix the overlay${failed.length > 1 ? 's' : ''} so that kustomize build succeeds; the note on the MR shows the error`,
    });
  }
  const summary = `${dryRun ? 'dry run: ' : ''}${out.resources} resource${out.resources === 1 ? '' : 's'} change${out.resources === 1 ? 's' : ''} in ${sections.length} overlay${sections.length === 1 ? '' : 's'}${out.shown < out.resources ? ` (${out.shown} shown)` : ''}${noteId !== undefined ? `; note ${noteId} on !${mrIid}` : ''}`;
  return { summary, outputs };
}

async function configSections(repo: string, base: string, head: string, only: string[], ctx: CommandContext, deadline: number): Promise<DiffSection[]> {
  const { ensureCommit, checkoutTree, changedPaths, gitOut, roots, touches } = await import('../preview/touched.js');
  const { renderOrError } = await import('../preview/app.js');
  if ((await gitOut(repo, ['rev-parse', '--git-dir'])).code !== 0) {
    throw fail.usage(PreviewErrors.CONFIG, `${repo} is not a git checkout of the config repo`, { where: repo, hint: 'run preview in the config repo MR pipeline, or pass --repo-dir' });
  }
  await ensureCommit(repo, base, 'base');
  await ensureCommit(repo, head, 'head');
  const changed = await changedPaths(repo, base, head);
  ctx.log.info(`${changed.length} file${changed.length === 1 ? '' : 's'} changed between ${base.slice(0, 12)} and ${head.slice(0, 12)}`);
  // removed on a cancel too (src/core/cleanup.ts)
  const parent = tempDir('gitops-ci-preview-');
  try {
    const [bdir, hdir] = [join(parent, 'base'), join(parent, 'head')];
    await checkoutTree(repo, base, bdir);
    await checkoutTree(repo, head, hdir);
    const [broots, hroots] = [await roots(bdir), await roots(hdir)];
    const touched = new Set<string>();
    for (const rs of [broots, hroots]) for (const [dir, closure] of rs) if (changed.some((f) => touches(closure, f))) touched.add(dir);
    const list = [...touched].filter((t) => !only.length || only.includes(t)).sort();
    ctx.log.info(list.length ? `overlays touched: ${list.join(', ')}` : 'no overlay is touched by the changes');
    const sections: DiffSection[] = [];
    for (const ov of list) {
      const before = broots.has(ov) ? await renderOrError(bdir, ov, ctx.log, 'base', deadline) : { yaml: '' };
      const after = hroots.has(ov) ? await renderOrError(hdir, ov, ctx.log, 'head', deadline) : { yaml: '' };
      const title = `${envOf(ov)} (${ov})`;
      if (before.error || after.error) {
        sections.push({ title, diffs: [], error: (after.error ?? before.error)! });
        continue;
      }
      sections.push({ title, diffs: diffRendered(before.yaml!, after.yaml!, ov) });
    }
    return sections;
  } finally {
    removeTempDir(parent);
  }
}
