/**
 * gitops-ci bump: write-back of image changes to a config repo, safely under concurrency.
 * Resolves and validates the whole configuration first (flags over GitLab variables), then hands it to
 * src/bump/bump.ts. See docs/commands/bump.md.
 */
import { resolve } from 'node:path';
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { checkDeployFreeze } from '../core/freeze.js';
import { fail, isGitopsError, type GitopsError } from '../core/errors.js';
import { overlayFlag } from '../core/flags.js';
import { writebackFlags, writebackOptions } from '../writeback/flags.js';
import { bump, type BumpOutcome } from '../bump/bump.js';
import { originFromCi, PLACEHOLDERS, shortImageOf, tersely, validateTemplate, type Origin, type SkipCi } from '../bump/message.js';
import { configBranch, configRemote } from '../git/url.js';
import { imageExprsFlag } from '../kustomize/image-expr.js';
import { BumpErrors } from '../bump/errors.js';
import { pinFromExpr } from '../edit/kustomization.js';
import { KIND_CHOICES, kindFlag } from '../writeback/checkout.js';
import { decideVia, VIA_CHOICES, type ViaChoice } from '../writeback/api.js';

export const spec: CommandSpec = {
  name: 'bump',
  usage: 'gitops-ci bump --dir OVERLAY... --image EXPR... [--repo URL|PATH] [--branch BRANCH] [flags]',
  description: `
Clone the config repo (shallow, blob-filtered, sparse: only the overlays and the bases they use), set images
in each overlay as \`kustomize edit set image\` does (keeping the file as written), commit once and push.
When another pipeline pushed first, fetch the new tip, re-apply and push again (bounded, with backoff; never
a force push). An image built from an older source commit than the one already deployed in an overlay is
skipped (exit 0) unless --allow-downgrade. Already set: no commit, no push, exit 0.
Placeholders for --message: ${Object.keys(PLACEHOLDERS).map((k) => `{${k}}`).join(' ')}.`,
  options: {
    repo: { type: 'string', value: 'URL|PATH', description: 'config repo: https URL (token from the environment), ssh URL (deploy key) or local path', env: ['GITOPS_CONFIG_REPO', 'CI_REPOSITORY_URL'] },
    branch: { type: 'string', value: 'BRANCH', description: 'branch to commit to (must exist)', env: ['GITOPS_CONFIG_BRANCH', 'CI_DEFAULT_BRANCH'] },
    dir: { type: 'string', multiple: true, value: 'OVERLAY', description: 'overlay directory, relative to the config repo root (repeatable)' },
    image: { type: 'string', multiple: true, value: 'EXPR', description: 'image expression, as kustomize edit set image takes it (repeatable; positionals too)' },
    'target-kind': { type: 'string', value: 'KIND', description: `which file in each overlay pins the images: ${KIND_CHOICES.join(', ')} (auto: the one kind of file found there)`, default: 'auto', env: ['GITOPS_TARGET_KIND'] },
    message: { type: 'string', value: 'TEMPLATE', description: 'commit subject (and body) template with {placeholders}; the change list and trailers are always appended' },
    via: { type: 'string', value: 'auto|git|api', description: 'how the change is written: git (clone and push), api (one commit through GitLab\'s commits API, no clone), auto (the API when the config repo is on the pipeline\'s GitLab and GITOPS_GITLAB_TOKEN/GITLAB_TOKEN is set, else git)', default: 'auto', env: ['GITOPS_WRITE_VIA'] },
    render: { type: 'boolean', description: 'kustomize build each changed overlay before pushing, and check the new images are used' },
    ...writebackOptions,
    'allow-downgrade': { type: 'boolean', description: 'allow replacing an image with one from an older source commit/pipeline (a deliberate rollback)' },
    'ssh-accept-new': { type: 'boolean', description: 'trust an unknown ssh host key on first use (StrictHostKeyChecking=accept-new); prefer SSH_KNOWN_HOSTS' },
    workdir: { type: 'string', value: 'DIR', description: 'clone into DIR and keep it (default: a temp dir, removed)' },
    dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_CHANGED, GITOPS_COMMIT_SHA, GITOPS_CONFIG_HEAD, GITOPS_SKIPPED_REASON to FILE (artifacts:reports:dotenv)' },
    'ignore-deploy-freeze': { type: 'boolean', description: 'run even while GitLab reports a deploy freeze (CI_DEPLOY_FREEZE); by default the command refuses (EFREEZE_ACTIVE)' },
    'dry-run': { type: 'boolean', description: 'clone and edit, print the diff; commit and push nothing' },
  },
  positionals: [['EXPR...', 'more image expressions']],
  examples: [
    'gitops-ci bump --dir .kubernetes/overlays/staging --image registry.example.com/shovel/app:$CI_COMMIT_SHORT_SHA',
    'gitops-ci bump --repo https://gitlab.example.com/team/config.git --branch main --dir envs/production --image app=registry.example.com/team/app@sha256:… --skip-ci push-option --dotenv bump.env',
    'gitops-ci bump --dir .kubernetes/overlays/production --image app:1.4.2 --allow-downgrade --message "rollback {image} to {tag} in {envs}"',
  ],
};

export async function run(ctx: CommandContext, { values, positionals }: ParsedArgs): Promise<CommandResult> {
  const { env, log } = ctx;
  // a deploy freeze stops the change before anything is read or touched (a dry run changes nothing)
  if (!bool(values, 'dry-run') && checkDeployFreeze(env, { ignore: bool(values, 'ignore-deploy-freeze'), command: 'bump' }).frozen) {
    log.warn('a deploy freeze is in effect (CI_DEPLOY_FREEZE); going on because of --ignore-deploy-freeze');
  }
  const problems: string[] = [];
  const errors: GitopsError[] = [];

  // --- configuration: flags over GitLab variables; all problems at once
  const remote = configRemote(str(values, 'repo'), env, ctx.cwd, problems, errors);
  const branch = configBranch(str(values, 'branch'), env, problems);

  const dirs = strs(values, 'dir');
  if (!dirs.length) problems.push('no overlay: pass --dir OVERLAY (relative to the config repo root), e.g. --dir .kubernetes/overlays/staging');
  const overlays = [...new Set(dirs.map((d) => overlayFlag(d, 'dir', problems)).filter((d): d is string => !!d))];

  const rawExprs = [...strs(values, 'image'), ...positionals];
  if (!rawExprs.length) problems.push('no image: pass --image EXPR, e.g. --image registry.example.com/app:1.2.3');
  // the same parsing as set-image: every bad expression reported at once, the last one per image name wins
  const exprs = imageExprsFlag(rawExprs, errors);

  const targetKind = kindFlag(str(values, 'target-kind') ?? (env.GITOPS_TARGET_KIND || undefined), problems);

  const template = str(values, 'message');
  if (template !== undefined) {
    try {
      validateTemplate(template);
    } catch (e) {
      if (isGitopsError(e)) errors.push(e);
      else throw e;
    }
  }
  // --skip-ci, --max-attempts, --timeout, --history-depth, --source-repo, the author, --lock-file: shared with review up/down
  const { skipCi, maxAttempts, timeoutS, historyDepth, sourceRepo, author, lockFile, serverLock } = await writebackFlags(ctx, values, problems);
  const via = (str(values, 'via') ?? (env.GITOPS_WRITE_VIA?.trim() || 'auto')) as ViaChoice;
  if (!VIA_CHOICES.includes(via)) problems.push(`--via must be ${VIA_CHOICES.join(', ')} (got ${JSON.stringify(via)})`);
  const workdir = str(values, 'workdir');

  if (problems.length || errors.length) {
    const all = [...problems, ...errors.map((e) => `${e.message}${e.where && e.where !== 'command line' ? ` (${e.where})` : ''}`)];
    const first = errors[0];
    if (!problems.length && errors.length === 1) throw first;
    throw fail.usage(first && !problems.length ? first.code : BumpErrors.CONFIG, all.length === 1 ? all[0]! : `${all.length} problems with the bump configuration`, {
      where: 'command line',
      details: all.length > 1 ? all.map((p) => `- ${p}`) : undefined,
      hint: 'run `gitops-ci bump --help` for the flags and the GitLab variables they default to',
    });
  }

  // git or the API: decided (and said) before anything is read
  const path = await decideVia(via, { remote: remote!, env, skipCi, workdir });
  log.info(`write-back via ${path.via} (${path.why})`);

  const origin: Origin = originFromCi(env);
  if (!origin.commit && !origin.pipelineId) log.debug('neither CI_COMMIT_SHA nor CI_PIPELINE_ID is set: the stale guard has nothing to compare and stands aside');

  const out: BumpOutcome = await bump({
    remote: remote!,
    branch: branch!,
    overlays,
    pins: exprs.map(pinFromExpr),
    targetKind,
    template,
    skipCi,
    render: bool(values, 'render'),
    allowDowngrade: bool(values, 'allow-downgrade'),
    dryRun: bool(values, 'dry-run'),
    author,
    origin,
    shortSha: env.CI_COMMIT_SHORT_SHA || undefined,
    sourceRepo,
    maxAttempts,
    lockFile,
    serverLock,
    deadline: Date.now() + timeoutS * 1000,
    historyDepth,
    workdir: workdir ? resolve(ctx.cwd, workdir) : undefined,
    sshAcceptNew: bool(values, 'ssh-accept-new'),
    env,
    log,
    api: path.gitlab ? { gitlab: path.gitlab } : undefined,
  });

  for (const s of out.skipped) log.warn(`skipped ${s.image} in ${s.overlay}: it holds ${s.current}, and ${s.why}; --allow-downgrade to roll back on purpose`);
  const skippedReason = out.skipped.length ? out.skipped.map((s) => `stale: ${s.image} in ${s.overlay} keeps ${s.current} (${s.why})`).join('; ') : undefined;
  const outputs: Record<string, string | undefined> = {
    GITOPS_CHANGED: out.changed ? 'true' : 'false',
    GITOPS_COMMIT_SHA: out.commit,
    GITOPS_CONFIG_HEAD: out.head,
    GITOPS_CONFIG_BRANCH: branch,
    GITOPS_SKIPPED_REASON: skippedReason,
  };
  const listing = out.changes.map((c) => `${c.env}: ${shortImageOf(c.image)} ${c.before ? tersely(c.image, c.before) : '(new)'} → ${tersely(c.image, c.after)}`);
  if (out.dryRun) {
    if (out.diff) log.stdout(out.diff.endsWith('\n') ? out.diff : `${out.diff}\n`);
    for (const l of listing) log.info(`would set ${l}`);
    return { summary: out.changes.length ? `dry run: would change ${out.changes.length} image${out.changes.length > 1 ? 's' : ''} in ${[...new Set(out.changes.map((c) => c.env))].join(', ')}; nothing pushed` : 'dry run: nothing to change', outputs: { ...outputs, GITOPS_CHANGED: 'false', GITOPS_COMMIT_SHA: undefined } };
  }
  if (out.changed) {
    for (const l of listing) log.info(`set ${l}`);
    log.info(`${path.via === 'api' ? 'committed' : 'pushed'} ${out.commit} to ${branch} of ${remote!.display}${path.via === 'api' ? ' through the GitLab API' : ''}${out.attempts > 1 ? ` (attempt ${out.attempts})` : ''}`);
    return { summary: `${path.via === 'api' ? 'committed' : 'pushed'} ${out.commit!.slice(0, 12)} to ${branch}: ${listing.join('; ')}${out.skipped.length ? `; skipped ${out.skipped.length} stale` : ''}`, outputs };
  }
  if (out.skipped.length) {
    return { summary: `skipped, stale pipeline: ${out.skipped.map((s) => `${s.image} in ${s.overlay} stays ${s.current}`).join('; ')} (config HEAD ${out.head.slice(0, 12)})`, outputs };
  }
  log.info(`no change: ${overlays.join(', ')} already ${exprs.length > 1 ? 'have these images' : 'has this image'}; nothing committed or pushed (config HEAD ${out.head})`);
  return { summary: `no change: images already set (config HEAD ${out.head.slice(0, 12)})`, outputs };
}
