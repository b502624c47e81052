/**
 * What a cancelled job must not leave behind. A GitLab cancel or job timeout sends SIGTERM (Ctrl-C: SIGINT);
 * without a handler node dies at once, leaving the deploy key, the clone and git/ssh children (which keep the
 * password in their environment) behind. Here every temp dir and child process is registered where it is
 * made; on a signal the children's process groups are stopped, the temp dirs removed, and the CLI exits with
 * the conventional code (128 + signal: 143, 130).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs = new Set<string>();
const children = new Set<ChildProcess>();
/** other things to undo on cancel (a write-back lock: a file, or a lock on the server, released by a request, which
 *  the exit waits for up to a second): registered by their owner, who removes them when done */
const undo = new Set<() => void | Promise<void>>();
/** groups whose leader was stopped on a timeout: swept once more when the process exits */
const stopped = new Set<number>();

/** a fresh 0700 temp dir, removed on cancel and by removeTempDir */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function removeTempDir(d: string | undefined): void {
  if (!d) return;
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

/** run `fn` on cancel, unless the returned function has been called first (its owner undid it itself) */
export function atCancel(fn: () => void | Promise<void>): () => void {
  undo.add(fn);
  return () => void undo.delete(fn);
}

/** register a temp dir made elsewhere */
export function trackTempDir(d: string): void {
  dirs.add(d);
}

/**
 * Track a child spawned with `detached: true` (its own process group, so that what it starts — ssh,
 * git-remote-http — can be stopped with it).
 */
export function trackChild(p: ChildProcess): void {
  children.add(p);
  p.once('close', () => children.delete(p));
}

/** signal the child's whole process group (git and the helpers it started) */
export function killGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  if (!p.pid) return;
  try {
    process.kill(-p.pid, sig);
  } catch {
    try {
      p.kill(sig);
    } catch {
      /* gone */
    }
  }
  if (sig === 'SIGKILL' || sig === 'SIGTERM') stopped.add(p.pid);
}

function sweepStopped(): void {
  for (const g of stopped) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  stopped.clear();
}

let installed = false;
let handling = false;

/** whether a signal is being handled: the process is stopping, work still in flight must not start anything new
 *  (a child or temp dir made now would outlive the exit) */
export function cancelling(): boolean {
  return handling;
}

/**
 * Install the SIGTERM/SIGINT handlers. `onSignal` is told the signal and the exit code and must end the
 * process (cli.ts: the only process.exit).
 */
export function installSignalHandlers(onSignal: (sig: NodeJS.Signals, code: number, what: string) => void): void {
  if (installed) return;
  installed = true;
  process.on('exit', sweepStopped);
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      if (handling) return;
      handling = true;
      const n = children.size;
      for (const c of children) killGroup(c, 'SIGTERM');
      const done = () => {
        for (const c of children) killGroup(c, 'SIGKILL');
        sweepStopped();
        const pending: Promise<void>[] = [];
        for (const fn of [...undo]) {
          try {
            const r = fn();
            if (r) pending.push(r.catch(() => undefined));
          } catch {
            /* best effort */
          }
        }
        const removed = dirs.size;
        for (const d of [...dirs]) {
          try {
            removeTempDir(d);
          } catch {
            /* best effort */
          }
        }
        const end = () => onSignal(sig, code, `stopped ${n} child process${n === 1 ? '' : 'es'}, removed ${removed} temp dir${removed === 1 ? '' : 's'}`);
        if (!pending.length) return end();
        // a lock on the server is released by a request: wait for it, at most a second
        void Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 1000).unref())]).then(end);
      };
      // let the children go on SIGTERM (git removes its lock files), at most a second
      const t0 = Date.now();
      const wait = () => (children.size === 0 || Date.now() - t0 > 1000 ? done() : setTimeout(wait, 25));
      wait();
    });
  }
}
