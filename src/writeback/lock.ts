/**
 * `--lock-file PATH`: writers that share a host (a shell runner with `concurrent` > 1, several projects' jobs
 * on one machine, a CI system without GitLab's resource_group) take turns for the write-back itself instead of
 * racing for the branch: through git from before the clone to the push (src/bump/bump.ts), through the API from
 * after the first read to the commit (src/writeback/api.ts; a writer that waited reads the branch head again).
 *
 * Why: N writers racing for one branch pay for the race in refused pushes, re-fetches and backoff sleeps
 * (bench/bump: 1.6-3.3x the same N one after another through git on this machine, 1.2-1.6x through the API), while
 * N writers that take turns cost about the same N in a row (bench/bump's "locked" column; docs/commands/bump.md,
 * *Taking turns on one host*, has the figures and why the git turn begins before the clone). A GitLab resource_group
 * gives that order across a project's jobs (https://docs.gitlab.com/ci/resource_groups/); it does not reach
 * across projects, nor outside GitLab. This lock does, for writers on one host (or one shared directory).
 *
 * The lock is an optimisation, never a guarantee: the branch's compare-and-swap (a push is never forced; the
 * commits API's last_commit_id) keeps every write correct without it, so a lock broken by mistake costs a race,
 * not an edit. Hence simple rules:
 *   - taken by creating PATH exclusively (O_EXCL), holding one line `pid host token epoch-ms`; released by
 *     removing it, only while it still holds our token; released on every exit and on cancel (src/core/cleanup.ts);
 *   - a lock whose holder is gone is broken: on the same host when its pid no longer runs; whoever holds it (another
 *     host on a shared mount, another container, a pid since reused) when it is older than this command's --timeout;
 *   - a waiter looks every 20 ms (a file check: no CPU to speak of, no request to the server), so the next writer
 *     goes as soon as the lock is free, and gives up at the command's deadline (exit 4), having changed nothing.
 */
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync, constants } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atCancel } from '../core/cleanup.js';
import { fail } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { BumpConfig } from '../bump/bump.js';
import { WritebackErrors } from './errors.js';
import { acquireServerLock } from './server-lock.js';

export interface HeldLock {
  /** ms spent waiting for it (0: free at the first look; a lock broken as stale counts as a wait) */
  waited: number;
  /** a lock file is removed at once; a lock on the server (src/writeback/server-lock.ts) by a request */
  release(): void | Promise<void>;
}

const POLL_MS = 20;
const STALE_CHECK_MS = 500;

/** the holder of a lock file, as written by acquire; undefined when the text is not ours (or empty) */
function holderOf(text: string): { pid: number; host: string; token: string; at: number } | undefined {
  const m = /^(\d+) (\S+) (\S+) (\d+)\n?$/.exec(text);
  return m ? { pid: Number(m[1]), host: m[2]!, token: m[3]!, at: Number(m[4]) } : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** the text of the lock at `path` when its holder is gone (see the rules above); undefined when it is held, or free */
function stale(path: string, staleAfterMs: number): string | undefined {
  let text: string;
  let mtime: number;
  try {
    text = readFileSync(path, 'utf8');
    mtime = statSync(path).mtimeMs;
  } catch {
    // released meanwhile: not stale, just free
    return undefined;
  }
  const h = holderOf(text);
  // an old lock is stale whoever holds it (a pid reused by another program must not hold writers up for ever)
  if (Date.now() - mtime > staleAfterMs) return text;
  return h && h.host === hostname() && !alive(h.pid) ? text : undefined;
}

/**
 * Take the lock at `path`, waiting while another writer holds it, until `deadline` (Date.now() ms). `what` names
 * the write-back in the log and errors (e.g. `main of https://gitlab.example.com/group/config.git`).
 */
export async function acquireLock(path: string, o: { deadline: number; staleAfterMs: number; log: Logger; what: string }): Promise<HeldLock> {
  const token = Math.random().toString(36).slice(2, 12);
  const line = `${process.pid} ${hostname()} ${token} ${Date.now()}\n`;
  const t0 = Date.now();
  let told = false;
  let nextStaleCheck = 0;
  for (let tries = 0; ; tries++) {
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        throw fail.usage(WritebackErrors.LOCK_FILE, `cannot create the lock file ${path}: ${code === 'ENOENT' ? `the directory ${dirname(path)} does not exist` : (e as Error).message}`, {
          where: path,
          hint: '--lock-file (GITOPS_LOCK_FILE) names a file in an existing directory that every writer on this host can write to, e.g. /tmp/gitops-ci-config.lock; nothing was changed',
        });
      }
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, line);
      } finally {
        closeSync(fd);
      }
      const release = () => {
        unregister();
        try {
          if (readFileSync(path, 'utf8') === line) unlinkSync(path);
        } catch {
          /* gone already */
        }
      };
      const unregister = atCancel(release);
      // taken at the first look: nobody held it (0); else the time waited, at least 1 ms
      const waited = tries ? Math.max(1, Date.now() - t0) : 0;
      if (waited) o.log.info(`took the write-back lock ${path} after ${waited} ms`);
      return { waited, release };
    }
    // whether the holder is gone is asked every half second, not on every look
    const left = Date.now() >= nextStaleCheck ? stale(path, o.staleAfterMs) : undefined;
    if (Date.now() >= nextStaleCheck) nextStaleCheck = Date.now() + STALE_CHECK_MS;
    if (left !== undefined) {
      o.log.warn(`the write-back lock ${path} was left by a writer that is gone: removing it`);
      try {
        // only the lock judged stale: another waiter may have removed it and taken a fresh one meanwhile
        if (readFileSync(path, 'utf8') === left) unlinkSync(path);
      } catch {
        /* another waiter removed it first */
      }
      continue;
    }
    if (!told) {
      told = true;
      o.log.info(`another writer on this host holds the write-back lock ${path}: waiting for it before writing ${o.what}`);
    }
    if (Date.now() + POLL_MS > o.deadline) {
      throw fail.timeout(WritebackErrors.LOCK_TIMEOUT, `out of time waiting for the write-back lock ${path} (held by another writer on this host) to write ${o.what}; nothing was changed`, {
        where: path,
        hint: 'raise --timeout; if no writer is running, the holder may have been stopped without cleaning up: remove the file',
      });
    }
    await sleep(POLL_MS);
  }
}

/**
 * The write-back's turn: --lock-file (the writers of this host), then the server's lock (--server-lock auto: every
 * writer of the branch, src/writeback/server-lock.ts). Undefined when neither is held (no --lock-file, and the server
 * offers no lock): the writer races. The wait goes into the timing line.
 */
export async function writebackLock(cfg: BumpConfig, timing: { wait?: number }, o: { apiToken?: string; apiUrl?: string } = {}): Promise<HeldLock | undefined> {
  const held: HeldLock[] = [];
  const what = `${cfg.branch} of ${cfg.remote.display}`;
  if (cfg.lockFile) held.push(await acquireLock(cfg.lockFile, { deadline: cfg.deadline, staleAfterMs: Math.max(60_000, cfg.deadline - Date.now()), log: cfg.log, what }));
  if (cfg.serverLock !== 'off') {
    try {
      const s = await acquireServerLock({ remote: cfg.remote, env: cfg.env, branch: cfg.branch, deadline: cfg.deadline, log: cfg.log, what, apiToken: o.apiToken, apiUrl: o.apiUrl });
      if (s) held.push(s);
    } catch (e) {
      for (const h of held) await h.release();
      throw e;
    }
  }
  if (!held.length) return undefined;
  const waited = held.reduce((a, h) => a + h.waited, 0);
  timing.wait = waited;
  return {
    waited,
    release: async () => {
      for (const h of [...held].reverse()) await h.release();
    },
  };
}
