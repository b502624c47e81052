/**
 * What `review up` and `review down` share: their flags (the write-back ones are bump's, with bump's GitLab
 * defaults), the configuration checked whole before anything is cloned, and the run through bump's race-safe
 * loop with a `directory` write (src/bump/bump.ts), so nothing here clones, commits or pushes by itself.
 */
import { resolve } from 'node:path';
import { bool, str, type CommandContext, type CommandResult, type OptionSpec, type Values } from '../core/command.js';
import { checkDeployFreeze } from '../core/freeze.js';
import { fail, type GitopsError } from '../core/errors.js';
import { overlayFlag } from '../core/flags.js';
import { bump } from '../bump/bump.js';
import { originFromCi, type SkipCi } from '../bump/message.js';
import { writebackFlags, writebackOptions } from '../writeback/flags.js';
import type { ServerLockChoice } from '../writeback/server-lock.js';
import { configBranch, configRemote, type Remote } from '../git/url.js';
import type { Identity } from '../git/clone.js';
import { ReviewErrors } from './errors.js';
import { reviewName, reviewWrite, type ReviewName, type ReviewPlanOptions } from './review.js';

export const reviewOptions: Record<string, OptionSpec> = {
  env: { type: 'string', value: 'FOLDER/NAME', description: 'the GitLab environment of the review app, e.g. review/mr-12; its NAME, slugged as GitLab slugs environment names, is the directory under --review-root', env: ['CI_ENVIRONMENT_NAME'] },
  'review-root': { type: 'string', value: 'DIR', description: 'directory of the review overlays in the config repo (what the ApplicationSet git directories generator lists, e.g. review/*)', default: 'review', env: ['GITOPS_REVIEW_ROOT'] },
  repo: { type: 'string', value: 'URL|PATH', description: 'config repo: https URL (token from the environment), ssh URL (deploy key) or local path', env: ['GITOPS_CONFIG_REPO', 'CI_REPOSITORY_URL'] },
  branch: { type: 'string', value: 'BRANCH', description: 'branch of the config repo the ApplicationSet reads (must exist)', env: ['GITOPS_CONFIG_BRANCH', 'CI_DEFAULT_BRANCH'] },
  ...writebackOptions,
  force: { type: 'boolean', description: 'write even when a newer pipeline of the MR deployed the review app (the stale guard stands aside)' },
  'ssh-accept-new': { type: 'boolean', description: 'trust an unknown ssh host key on first use; prefer SSH_KNOWN_HOSTS' },
  workdir: { type: 'string', value: 'DIR', description: 'clone into DIR and keep it (default: a temp dir, removed)' },
  dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_CHANGED, GITOPS_COMMIT_SHA, GITOPS_CONFIG_HEAD, GITOPS_CONFIG_BRANCH, GITOPS_REVIEW_DIR, GITOPS_REVIEW_SLUG, GITOPS_SKIPPED_REASON to FILE' },
  'dry-run': { type: 'boolean', description: 'clone and write, print the diff; commit and push nothing' },
};

export interface ReviewConfig {
  name: ReviewName;
  remote: Remote;
  branch: string;
  skipCi: SkipCi;
  author: Identity;
  maxAttempts: number;
  timeoutS: number;
  historyDepth: number;
  sourceRepo?: string;
  lockFile?: string;
  serverLock?: ServerLockChoice;
}

/** the shared part of the configuration; problems are pushed, as the command checks its own flags too */
export async function reviewConfig(ctx: CommandContext, values: Values, problems: string[], errors: GitopsError[]): Promise<Partial<ReviewConfig>> {
  const { env } = ctx;
  const out: Partial<ReviewConfig> = {};
  const e = str(values, 'env') ?? (env.CI_ENVIRONMENT_NAME || undefined);
  const root = overlayFlag(str(values, 'review-root') ?? (env.GITOPS_REVIEW_ROOT || 'review'), 'review-root', problems);
  if (!e) problems.push('no review environment: pass --env review/NAME (CI_ENVIRONMENT_NAME is used in a job with environment:name)');
  else if (root) out.name = reviewName(e, root, problems);
  out.remote = configRemote(str(values, 'repo'), env, ctx.cwd, problems, errors);
  out.branch = configBranch(str(values, 'branch'), env, problems);
  // --skip-ci, --max-attempts, --timeout, --history-depth, --source-repo, the author, --lock-file, --server-lock: as bump resolves them
  Object.assign(out, await writebackFlags(ctx, values, problems));
  return out;
}

/** all problems at once, as one usage error (exit 2) */
export function throwProblems(cmd: string, problems: string[], errors: GitopsError[]): void {
  if (!problems.length && !errors.length) return;
  const all = [...problems, ...errors.map((e) => `${e.message}${e.where && e.where !== 'command line' ? ` (${e.where})` : ''}`)];
  if (!problems.length && errors.length === 1) throw errors[0];
  const name = problems.some((p) => p.startsWith('--env')) && all.length === 1 ? ReviewErrors.NAME : ReviewErrors.CONFIG;
  throw fail.usage(name, all.length === 1 ? all[0]! : `${all.length} problems with the ${cmd} configuration`, {
    where: 'command line',
    details: all.length > 1 ? all.map((p) => `- ${p}`) : undefined,
    hint: `run \`gitops-ci ${cmd} --help\` for the flags and the GitLab variables they default to`,
  });
}

/** refuse during a deploy freeze (a dry run changes nothing) */
export function freezeCheck(ctx: CommandContext, values: Values, command: string): void {
  if (!bool(values, 'dry-run') && checkDeployFreeze(ctx.env, { ignore: bool(values, 'ignore-deploy-freeze'), command }).frozen) {
    ctx.log.warn('a deploy freeze is in effect (CI_DEPLOY_FREEZE); going on because of --ignore-deploy-freeze');
  }
}

/** write or remove the review directory through bump's loop; the result as a command result */
export async function runReview(ctx: CommandContext, values: Values, cfg: ReviewConfig, up: ReviewPlanOptions['up'], paths: string[]): Promise<CommandResult> {
  const { env, log } = ctx;
  const origin = originFromCi(env);
  const guardOff = bool(values, 'force') || !(origin.commit || origin.pipelineId);
  const verb = up ? 'up' : 'down';
  const workdir = str(values, 'workdir');
  const out = await bump({
    remote: cfg.remote,
    branch: cfg.branch,
    overlays: paths,
    pins: [],
    targetKind: 'kustomization',
    template: up ? `review app {envs}: {images}` : `stop review app {envs}`,
    skipCi: cfg.skipCi,
    render: false,
    allowDowngrade: guardOff,
    dryRun: bool(values, 'dry-run'),
    author: cfg.author,
    origin,
    shortSha: env.CI_COMMIT_SHORT_SHA || undefined,
    sourceRepo: cfg.sourceRepo,
    maxAttempts: cfg.maxAttempts,
    lockFile: cfg.lockFile,
    serverLock: cfg.serverLock,
    deadline: Date.now() + cfg.timeoutS * 1000,
    historyDepth: cfg.historyDepth,
    workdir: workdir ? resolve(ctx.cwd, workdir) : undefined,
    sshAcceptNew: bool(values, 'ssh-accept-new'),
    env,
    log,
    trailers: [
      ['Gitops-Review', `${verb} ${cfg.name.env}`],
      ['Gitops-Merge-Request', env.CI_MERGE_REQUEST_IID || undefined],
    ],
    directory: reviewWrite({ name: cfg.name, up, guardOff, log }),
  });
  const skipped = out.skipped.length ? out.skipped.map((s) => `stale: ${s.image} in ${s.overlay} keeps ${s.current} (${s.why})`).join('; ') : undefined;
  const outputs: Record<string, string | undefined> = {
    GITOPS_CHANGED: out.changed ? 'true' : 'false',
    GITOPS_COMMIT_SHA: out.commit,
    GITOPS_CONFIG_HEAD: out.head,
    GITOPS_CONFIG_BRANCH: cfg.branch,
    GITOPS_REVIEW_DIR: cfg.name.dir,
    GITOPS_REVIEW_SLUG: cfg.name.slug,
    GITOPS_SKIPPED_REASON: skipped,
  };
  const what = up ? `review app ${cfg.name.env} (${cfg.name.dir})` : `review app ${cfg.name.env} (${cfg.name.dir} removed)`;
  if (out.dryRun) {
    if (out.diff) log.stdout(out.diff.endsWith('\n') ? out.diff : `${out.diff}\n`);
    return { summary: out.changes.length ? `dry run: would write ${what}; nothing pushed` : 'dry run: nothing to change', outputs: { ...outputs, GITOPS_CHANGED: 'false', GITOPS_COMMIT_SHA: undefined } };
  }
  if (out.changed) {
    log.info(`pushed ${out.commit} to ${cfg.branch} of ${cfg.remote.display}${out.attempts > 1 ? ` (attempt ${out.attempts})` : ''}`);
    return { summary: `pushed ${out.commit!.slice(0, 12)} to ${cfg.branch}: ${what}`, outputs };
  }
  if (out.skipped.length) {
    for (const s of out.skipped) log.warn(`skipped: ${s.overlay} holds ${s.image} ${s.current}, and ${s.why}; --force to write anyway`);
    return { summary: `skipped, stale pipeline: a newer pipeline deployed ${cfg.name.env}; it stays (config HEAD ${out.head.slice(0, 12)})`, outputs };
  }
  return { summary: `no change: ${up ? `${cfg.name.dir} already holds this review app` : `${cfg.name.dir} is not there`} (config HEAD ${out.head.slice(0, 12)})`, outputs };
}
