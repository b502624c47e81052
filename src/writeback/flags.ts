/**
 * The flags every command that writes back through bump's loop shares (bump, review up/down), resolved and
 * checked in one place: `--skip-ci`, `--max-attempts`, `--timeout`, `--history-depth`, `--source-repo` (or
 * CI_PROJECT_DIR, for the stale guard's ancestry check), the commit author (`--author-*`, else the GitLab
 * user of the pipeline), `--lock-file` and `--server-lock`. Problems are pushed, so that a command reports all of its own at once (exit 2).
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { str, type CommandContext, type OptionSpec, type Values } from '../core/command.js';
import { intFlag } from '../core/flags.js';
import type { SkipCi } from '../bump/message.js';
import type { Identity } from '../git/clone.js';
import { isGitRepo, setAncestryEnv } from '../git/ancestry.js';
import { SERVER_LOCK_CHOICES, type ServerLockChoice } from './server-lock.js';

/** the declarations of those flags, for the commands' specs (the same text in bump's and review's --help) */
export const writebackOptions: Record<string, OptionSpec> = {
  'skip-ci': { type: 'string', value: 'MODE', description: 'how the commit avoids a pipeline: message ([skip ci] in the subject), push-option (git push -o ci.skip) or none', default: 'message', env: ['GITOPS_SKIP_CI'] },
  'source-repo': { type: 'string', value: 'PATH', description: 'local clone of the source repo, for the stale guard’s ancestry check', env: ['CI_PROJECT_DIR'] },
  'author-name': { type: 'string', value: 'NAME', description: 'commit author name', default: 'gitops-ci', env: ['GITLAB_USER_NAME'] },
  'author-email': { type: 'string', value: 'EMAIL', description: 'commit author email', default: 'gitops-ci@noreply.invalid', env: ['GITLAB_USER_EMAIL'] },
  'max-attempts': { type: 'string', value: 'N', description: 'push attempts when the branch keeps moving (N writers at once need up to N in the worst case)', default: '20' },
  timeout: { type: 'string', value: 'SECONDS', description: 'time limit for the whole write-back', default: '300' },
  'history-depth': { type: 'string', value: 'N', description: 'how many commits back the stale guard looks for the last write of an image', default: '200' },
  'lock-file': { type: 'string', value: 'PATH', description: 'writers on one host take turns through this lock file (git: clone to push; API: read to commit) instead of racing for the branch', env: ['GITOPS_LOCK_FILE'] },
  'server-lock': { type: 'string', value: 'auto|off', description: "every writer of the branch takes turns through a lock on the config repo's server (GitLab's Git LFS locks API; auto: when the server offers it, else race) or races (off)", default: 'auto', env: ['GITOPS_SERVER_LOCK'] },
};

export interface WritebackFlags {
  skipCi: SkipCi;
  maxAttempts: number;
  timeoutS: number;
  historyDepth: number;
  sourceRepo?: string;
  author: Identity;
  /** --lock-file: an absolute path in an existing directory (src/writeback/lock.ts) */
  lockFile?: string;
  /** --server-lock (src/writeback/server-lock.ts) */
  serverLock: ServerLockChoice;
}

/** --server-lock (GITOPS_SERVER_LOCK): auto (default) or off */
export function serverLockFlag(ctx: CommandContext, values: Values, problems: string[]): ServerLockChoice {
  const raw = (str(values, 'server-lock') ?? (ctx.env.GITOPS_SERVER_LOCK?.trim() || 'auto')) as ServerLockChoice;
  if (!SERVER_LOCK_CHOICES.includes(raw)) problems.push(`--server-lock must be ${SERVER_LOCK_CHOICES.join(' or ')} (got ${JSON.stringify(raw)})`);
  return raw;
}

/** --lock-file (GITOPS_LOCK_FILE), resolved against the working directory; its directory must exist */
export function lockFileFlag(ctx: CommandContext, values: Values, problems: string[]): string | undefined {
  const raw = str(values, 'lock-file') ?? (ctx.env.GITOPS_LOCK_FILE?.trim() || undefined);
  if (raw === undefined) return undefined;
  const path = resolve(ctx.cwd, raw);
  if (!raw.trim() || raw.endsWith('/')) problems.push(`--lock-file ${JSON.stringify(raw)} must name a file`);
  else if (!isDir(dirname(path))) problems.push(`--lock-file ${raw}: the directory ${dirname(path)} does not exist`);
  return path;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export async function writebackFlags(ctx: CommandContext, values: Values, problems: string[]): Promise<WritebackFlags> {
  const { env } = ctx;
  const skipCi = (str(values, 'skip-ci') ?? env.GITOPS_SKIP_CI ?? 'message') as SkipCi;
  if (!['message', 'push-option', 'none'].includes(skipCi)) problems.push(`--skip-ci must be message, push-option or none (got ${JSON.stringify(skipCi)})`);
  const maxAttempts = intFlag(str(values, 'max-attempts'), 'max-attempts', 20, 1, 100, problems);
  const timeoutS = intFlag(str(values, 'timeout'), 'timeout', 300, 1, 86_400, problems);
  const historyDepth = intFlag(str(values, 'history-depth'), 'history-depth', 200, 1, 100_000, problems);
  setAncestryEnv(env);
  // --workdir (bump, review up/down): git clones into an empty or new directory; checked here, not by a failed
  // clone after the session opened (exit 1, naming the repo)
  const wd = str(values, 'workdir');
  if (wd) {
    const st = statSync(resolve(ctx.cwd, wd), { throwIfNoEntry: false });
    if (st && !st.isDirectory()) problems.push(`--workdir ${wd} is a file: name a new or empty directory to clone into`);
    else if (st && readdirSync(resolve(ctx.cwd, wd)).length) problems.push(`--workdir ${wd} is not empty: name a new or empty directory to clone into (it is kept afterwards)`);
  }
  let sourceRepo: string | undefined;
  const sr = str(values, 'source-repo');
  if (sr) {
    sourceRepo = resolve(ctx.cwd, sr);
    if (!(await isGitRepo(sourceRepo))) problems.push(`--source-repo ${sr} is not a git repository`);
  } else if (env.CI_PROJECT_DIR) {
    // the default needs no check before the clone (one git process less on every CI bump): the guard's ancestry
    // question answers "unknown" in a directory that is no repo (GIT_STRATEGY: none), and pipeline ids decide
    sourceRepo = env.CI_PROJECT_DIR;
  }
  const author = {
    name: str(values, 'author-name') || env.GITLAB_USER_NAME || 'gitops-ci',
    email: str(values, 'author-email') || env.GITLAB_USER_EMAIL || 'gitops-ci@noreply.invalid',
  };
  if (/[<>\n]/.test(author.name) || /[<>\s]/.test(author.email)) problems.push('--author-name/--author-email must not contain <, > or line breaks');
  return { skipCi, maxAttempts, timeoutS, historyDepth, sourceRepo, author, lockFile: lockFileFlag(ctx, values, problems), serverLock: serverLockFlag(ctx, values, problems) };
}
