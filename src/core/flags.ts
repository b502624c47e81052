/**
 * Checks of flag values that several commands share (bump, promote, preview). Each pushes a readable problem
 * onto `problems` instead of throwing, so that a command reports every problem of its configuration at once.
 */
import { posix } from 'node:path';
import { CoreErrors } from './catalogue.js';
import { fail } from './errors.js';

/** an integer flag within [min, max]; `def` when not given (or when invalid, with the problem recorded) */
export function intFlag(v: string | undefined, name: string, def: number, min: number, max: number, problems: string[]): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    problems.push(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return def;
  }
  return n;
}

/**
 * An overlay directory relative to the config repo root, normalised (`./a/b/` → `a/b`, backslashes as
 * slashes); undefined, with the problem recorded, when it is absolute, leaves the repo, or is the root itself.
 */
export function overlayFlag(d: string, name: string, problems: string[]): string | undefined {
  const n = posix.normalize(d.replace(/\\/g, '/'));
  const p = n.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (posix.isAbsolute(n) || p === '..' || p.startsWith('../')) {
    problems.push(`--${name} ${JSON.stringify(d)} must be relative to the config repo root and stay inside it`);
    return undefined;
  }
  if (p === '' || p === '.') {
    problems.push(`--${name} ${JSON.stringify(d)} is the repo root, not an overlay: name the overlay directory`);
    return undefined;
  }
  return p;
}

/** the numeric tuning variables: range and what the number means (one table; src/cli.ts checks them all at start) */
const TUNING = {
  GITOPS_RETRY_ATTEMPTS: [1, 20, 'the number of attempts of a request to GitLab or a registry, from 1 (no retry)'],
  GITOPS_GITLAB_MAX_PAGES: [1, 10_000, 'the most pages of 100 a GitLab listing may have'],
  GITOPS_RENDER_MEMORY_MB: [256, 65_536, "kustomize's memory limit in MiB, a number without unit"],
  GITOPS_RENDER_MAX_MB: [1, 1024, "the most MiB of kustomize's output, a number without unit"],
  GITOPS_SETIMAGE_CONCURRENCY: [1, 1024, 'how many files set-image reads and writes at once'],
  GITOPS_SERVER_LOCK_LEASE_S: [1, 86_400, "how many seconds one holder may keep the server's write-back lock before a waiter breaks it"],
} as const satisfies Record<string, readonly [number, number, string]>;
export type TuningVariable = keyof typeof TUNING;

/**
 * A numeric tuning variable: undefined when unset (the caller's default), else a whole number within its range;
 * anything else is a usage error (exit 2), never a silent default nor a value the caller cannot use
 * (GITOPS_RETRY_ATTEMPTS=-1 made the registry client give up before its first request, as a transient 75;
 * GITOPS_RENDER_MEMORY_MB=4096MB fell back to 2048 unseen).
 */
export function tuning(env: NodeJS.ProcessEnv, name: TuningVariable): number | undefined {
  const [min, max, what] = TUNING[name];
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n < min || n > max) {
    throw fail.usage(CoreErrors.NUMERIC_VARIABLE, `${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`, {
      where: `environment variable ${name}`,
      hint: `set ${name} to ${what}, from ${min} to ${max}, or unset it for the default`,
    });
  }
  return n;
}

/** every tuning variable, checked before a command acts (src/cli.ts): the first bad one is the error */
export function checkTuning(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(TUNING) as TuningVariable[]) tuning(env, name);
}

/** GITOPS_RETRY_ATTEMPTS: attempts of a retryable request (GitLab, the registry); undefined: the client's default */
export function retryAttempts(env: NodeJS.ProcessEnv): number | undefined {
  return tuning(env, 'GITOPS_RETRY_ATTEMPTS');
}
