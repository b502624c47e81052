/**
 * Write-back: clone the config repo (shallow, blob-filtered, sparse), set images in overlays, commit once,
 * push; when the push is refused because the branch moved, fetch the new tip, re-apply the edit from
 * scratch (re-reading the images and re-running the stale guard) and push again, with jittered exponential
 * backoff, bounded attempts and time. Never a force push; no edit is lost: an edit is either in a pushed
 * commit, or reported as skipped (stale) or failed.
 */
import { lapTimer } from '../core/timing.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Identity } from '../git/clone.js';
import type { GitSession } from '../git/session.js';
import type { Remote } from '../git/url.js';
import type { ImageEntry } from '../kustomize/edit.js';
import type { Pin } from '../edit/target.js';
import { Guard, writebackIdentity } from './guard.js';
import { buildMessage, type Change, type Origin, type SkipCi } from './message.js';
import { diffText, renderOverlays } from './kustomize.js';
import { targetOf } from '../edit/registry.js';
import { BumpErrors } from './errors.js';
import { findFile, plan, type Plan } from './plan.js';
export type { Plan } from './plan.js';
import { Checkout, type KindChoice } from '../writeback/checkout.js';
import { bumpViaApi, type ApiWriteback } from '../writeback/api.js';
import { writebackLock, type HeldLock } from '../writeback/lock.js';
import type { ServerLockChoice } from '../writeback/server-lock.js';

export interface BumpConfig {
  remote: Remote;
  branch: string;
  overlays: string[];
  /** the images to pin, as objects (parsed once from --image, or carried from promote's source) */
  pins: Pin[];
  /** which kind of file in each overlay is edited: auto (the one kind found) or a kind of src/edit/registry.ts */
  targetKind: KindChoice;
  template?: string;
  skipCi: SkipCi;
  render: boolean;
  allowDowngrade: boolean;
  dryRun: boolean;
  author: Identity;
  origin: Origin;
  shortSha?: string;
  sourceRepo?: string;
  maxAttempts: number;
  /** take turns with the other writers on this host through this lock file: through git from before the clone to the push,
   *  through the API from the first read to the commit (src/writeback/lock.ts) */
  lockFile?: string;
  /** take turns with every writer of the branch through a lock on the config repo's server (auto, the default) or not
   *  (off): src/writeback/server-lock.ts */
  serverLock?: ServerLockChoice;
  /** Date.now() ms */
  deadline: number;
  historyDepth: number;
  /** clone here and keep it (debugging, tests); else a temp dir that is removed */
  workdir?: string;
  sshAcceptNew: boolean;
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** extra trailers after bump's own (promote names its source environment and config commit) */
  trailers?: Array<[string, string | undefined]>;
  /**
   * A write of whole directories instead of image pins in existing overlays (review up/down: create an overlay,
   * remove one). `overlays` are then only the paths checked out; `verify` replaces the overlay check before
   * anything is edited, and `plan` replaces the image edit on every attempt of the same race-safe loop. Git only:
   * the API write-back updates existing files (src/writeback/api.ts).
   */
  directory?: DirectoryWrite;
  /** write through GitLab's commits API instead of a clone and a push (--via api; src/writeback/api.ts) */
  api?: ApiWriteback;
}

/** the seam of `BumpConfig.directory`: what one attempt writes or removes in the clone, re-planned on each new tip */
export interface DirectoryWrite {
  verify(co: Checkout): Promise<void>;
  plan(co: Checkout, guard: Guard, attempt: number): Promise<Plan>;
}

export interface Skip {
  overlay: string;
  image: string;
  current: string;
  wanted: string;
  why: string;
}

export interface BumpOutcome {
  changed: boolean;
  dryRun: boolean;
  commit?: string;
  head: string;
  attempts: number;
  changes: Change[];
  skipped: Skip[];
  diff?: string;
}

/**
 * How long a writer whose push was refused waits before it fetches and tries again, after its `attempt`-th
 * refusal: "full jitter" (a uniform draw below an exponential ceiling), in units of one push window, the
 * shortest this writer measured (fetch, re-apply, commit, push; the first attempt, which had no fetch, counts
 * one push for it). A refusal of either kind waits (`fetch first`: the branch moved before the push began;
 * `cannot lock ref`: a collision at the ref update): retrying `fetch first` at once was measured and lost
 * (the comment at its call).
 *
 * Why the shortest: a window measured while all N writers clone and push at once on a small runner is N
 * times too long for the writer whose turn it is afterwards, and waiting in units of it left most of a
 * 12-writer round asleep (bench, docs/commands/bump.md "Under contention"). Why a uniform draw and not slots
 * on a shared clock: slots must be a window wide to order anything, and their width rounds the unit up;
 * measured, slots lost more to waiting than they saved in collisions. The ceiling starts at two windows (the
 * first collision already means one other writer) and doubles per collision, up to 16 windows: with 64, the
 * bench's 20-writer rounds spent 42% of their time asleep, and draws past --timeout ended writers that
 * would have landed. A draw past the time left is cut to what is left, less one window. A writer that
 * waits sleeps: it takes no CPU from the one whose turn it is.
 */
export function backoffMs(attempt: number, windowMs: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.max(windowMs, 50) * 2 ** Math.min(attempt, 4));
}

/** How long a look at the remote may take once the bump's own time is up (after a push that timed out). */
const GRACE_MS = 15_000;

/**
 * After a push that timed out (and was stopped): is `commit` on the branch? Returns the branch's tip when it
 * is (at the tip, or under later pushes), undefined when it is not. Throws a timeout when the remote cannot
 * be asked, saying that the push may have landed.
 */
async function landedAfterTimeout(clone: Checkout['clone'], git: GitSession, commit: string, cfg: BumpConfig): Promise<string | undefined> {
  const deadline = Date.now() + GRACE_MS;
  // the session's time is up: this look gets a short time of its own
  git.deadline = deadline;
  try {
    const tip = await clone.remoteTip({ deadline });
    if (!tip || tip === commit) return tip;
    await clone.fetchTip({ deadline });
    return (await clone.isAncestor(commit, tip)) ? tip : undefined;
  } catch (e) {
    throw fail.timeout(BumpErrors.TIMEOUT, `the push to ${cfg.branch} did not finish in time, and the branch could not be read afterwards: the push may or may not have landed`, {
      where: `${cfg.remote.display} (${cfg.branch})`,
      details: isGitopsError(e) ? [e.message] : undefined,
      hint: `look at ${cfg.branch} for ${commit.slice(0, 12)} before re-running (a re-run is safe: it finds the image already set); raise --timeout`,
      cause: e,
    });
  }
}

/** Where a bump's time went (ms), printed with --verbose as one `bump timing {json}` line: the bench's trace. */
export interface BumpTiming {
  /** process start to bump(): Node start-up, loading the bundle, configuration */
  start: number;
  clone: number;
  attempts: Array<{ fetch?: number; plan: number; commit: number; push: number; result: 'ok' | 'race' | 'error'; backoff?: number }>;
  /** waiting for --lock-file and the server's lock */
  wait?: number;
  total?: number;
}

/**
 * V8 compiles a function on its first call: the first plan of a bump paid for compiling the YAML parser, the
 * kustomization edit and the diff while nothing else ran. Called while the clone's git processes run (they
 * and the server's use the other core), the same code is compiled on a throwaway text; nothing is written.
 */
function warmUp(cfg: BumpConfig): void {
  if (cfg.directory || (cfg.targetKind !== 'auto' && cfg.targetKind !== 'kustomization') || !cfg.pins.length) return;
  try {
    const t = targetOf('kustomization')!;
    const text = 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n  - name: example.invalid/app\n    newTag: "0"\n';
    t.images(text, 'kustomization.yaml');
    const r = t.edit(text, cfg.pins, 'kustomization.yaml');
    diffText(text, r.text, 'kustomization.yaml');
  } catch {
    /* only a warm-up */
  }
}

export async function bump(cfg: BumpConfig): Promise<BumpOutcome> {
  // --via api: the same plan, guard and message, one API commit instead of a clone and a push
  if (cfg.api && !cfg.directory) return bumpViaApi(cfg, backoffMs);
  const { log } = cfg;
  const timing: BumpTiming = { start: Math.round(performance.now()), clone: 0, attempts: [] };
  const lap = lapTimer();
  let co: Checkout | undefined;
  let guard: Guard | undefined;
  let lock: HeldLock | undefined;
  // the write-back identity commits (the author stays the pipeline's user); checked before anything is cloned
  const committer = writebackIdentity(cfg.env);
  // while git clones (its processes, and the server's, on the other core), compile the edit on a throwaway text
  const warm = setImmediate(() => warmUp(cfg));
  try {
    // --lock-file: the other writers on this host take their turns first, each a whole write-back from its clone to
    // its push, so the clone made after the wait reads the branch as the last of them left it (src/writeback/lock.ts)
    // --server-lock auto: and with every writer of the branch, through the config repo's server (src/writeback/server-lock.ts)
    if (!cfg.dryRun) lock = await writebackLock(cfg, timing);
    lap();
    co = await Checkout.open({ remote: cfg.remote, branch: cfg.branch, paths: cfg.overlays, env: cfg.env, log, sshAcceptNew: cfg.sshAcceptNew, deadline: cfg.deadline, workdir: cfg.workdir, purpose: 'bump' }, async (c) => {
      if (cfg.directory) return cfg.directory.verify(c);
      // verify before mutating: every overlay is there, as a directory with a kustomization (the overlays are
      // the cone just checked out: the work tree answers, no `cat-file` per overlay)
      const missing: string[] = [];
      for (const o of cfg.overlays) {
        if (!(await c.isTreeInCheckout(o)) || !(await findFile(c, o, cfg.targetKind))) missing.push(o);
      }
      if (missing.length) {
        throw fail.usage(BumpErrors.OVERLAY_NOT_FOUND, `overlay${missing.length > 1 ? 's' : ''} not found on branch ${cfg.branch}: ${missing.join(', ')}`, {
          where: `${cfg.remote.display} (${cfg.branch})`,
          hint: '--dir is relative to the config repo root and must hold a kustomization.yaml, e.g. .kubernetes/overlays/production',
        });
      }
      // what kustomize build reads (the bases, components...) is checked out only when it is built: the edit
      // reads and writes the overlay's own file, and every directory more is one more round trip to the server
      if (cfg.render) await c.closure(cfg.overlays);
    });
    const { clone, session: git } = co;
    let head = await clone.head();
    timing.clone = lap();
    guard = new Guard(clone, { historyDepth: cfg.historyDepth, env: cfg.env, log, origin: cfg.origin, sourceRepo: cfg.sourceRepo });
    await guard.history.moved(head);
    log.info(`config repo ${cfg.remote.display} ${cfg.branch} at ${head.slice(0, 12)}`);
    // when the current attempt started (its fetch, on a retry): the unit of the backoff
    let attemptStart = Date.now();
    // the shortest push window measured so far (fetch, re-apply, commit, push): the unit of the backoff
    let window = Infinity;
    const backoff = (attempt: number, measured: number) => {
      window = Math.min(window, measured);
      return backoffMs(attempt, window);
    };
    let fetchMs: number | undefined;
    // pushes refused because another push reached the server at the same moment (the exponent of the backoff)
    let losses = 0;
    for (let attempt = 1; ; attempt++) {
      lap();
      const p = cfg.directory ? await cfg.directory.plan(co, guard, attempt) : await plan(co, cfg, attempt, guard);
      if (!p.changes.length) {
        return { changed: false, dryRun: cfg.dryRun, head, attempts: attempt, changes: [], skipped: p.skipped };
      }
      if (cfg.render) await renderOverlays(co, p.written, log);
      if (cfg.dryRun) return { changed: false, dryRun: true, head, attempts: attempt, changes: p.changes, skipped: p.skipped, diff: p.diff };
      const message = buildMessage({ changes: p.changes, origin: cfg.origin, skipCi: cfg.skipCi, template: cfg.template, shortSha: cfg.shortSha, trailers: cfg.trailers });
      const planMs = lap();
      const commit = await clone.commit(p.files, message, cfg.author, committer, { added: !!cfg.directory });
      const commitMs = lap();
      const t = { fetch: fetchMs, plan: planMs, commit: commitMs, push: 0, result: 'error' as 'ok' | 'race' | 'error', backoff: undefined as number | undefined };
      timing.attempts.push(t);
      let pushed;
      try {
        pushed = await clone.push({ pushOptions: cfg.skipCi === 'push-option' ? ['ci.skip'] : [] });
        t.push = lap();
        t.result = pushed.ok ? 'ok' : 'race';
      } catch (e) {
        t.push = lap();
        if (!isGitopsError(e)) throw e;
        if (e.kind === 'timeout') {
          // the push ran out of time and its whole process group was stopped; it may have landed before
          // that: look before saying that nothing was pushed
          const landed = await landedAfterTimeout(clone, git, commit, cfg);
          if (landed) {
            log.warn(`the push did not answer in time, but ${commit.slice(0, 12)} is on ${cfg.branch} (${landed === commit ? 'its tip' : `in its history, now at ${landed.slice(0, 12)}`}): it landed`);
            return { changed: true, dryRun: false, commit, head: landed, attempts: attempt, changes: p.changes, skipped: p.skipped };
          }
          throw fail.timeout(BumpErrors.TIMEOUT, `the push to ${cfg.branch} did not finish in time; it was stopped, and the branch does not hold it: nothing was pushed`, {
            where: `${cfg.remote.display} (${cfg.branch})`,
            hint: 'raise --timeout, or check the network to the git server',
            cause: e,
          });
        }
        // a network error or 5xx during the push: the server may or may not have taken it. Look once (the
        // fetch fails with exit 75 if the server is still away): our commit on the branch means it landed,
        // at the tip or under another writer's push that came after it.
        if (e.kind !== 'transient' || attempt >= cfg.maxAttempts || Date.now() + 1000 > cfg.deadline) throw e;
        losses = 0;
        log.warn(`push failed (${e.message}); checking whether it landed`);
        await sleep(backoff(attempt, Date.now() - attemptStart));
        t.backoff = lap();
        attemptStart = Date.now();
        head = await clone.resetToRemoteTip();
        fetchMs = lap();
        await guard.history.moved(head);
        if (head === commit || (await clone.isAncestor(commit, head))) {
          if (head !== commit) log.info(`${commit.slice(0, 12)} landed; ${cfg.branch} has moved on since, to ${head.slice(0, 12)}`);
          return { changed: true, dryRun: false, commit, head, attempts: attempt, changes: p.changes, skipped: p.skipped };
        }
        log.info(`it did not; re-applying on ${head.slice(0, 12)}`);
        if (cfg.render) await co.closure(cfg.overlays);
        continue;
      }
      if (pushed.ok) {
        return { changed: true, dryRun: false, commit, head: commit, attempts: attempt, changes: p.changes, skipped: p.skipped };
      }
      if (attempt >= cfg.maxAttempts) {
        throw fail.failed(BumpErrors.RACE_EXHAUSTED, `the push was still refused after ${attempt} attempts: ${cfg.branch} kept moving`, {
          where: `${cfg.remote.display} (${cfg.branch})`,
          details: pushed.detail,
          hint: 'other jobs push to this branch heavily: raise --max-attempts, or serialise the jobs with a GitLab resource_group; nothing was pushed',
        });
      }
      // Every refused push backs off before it fetches (full jitter, see backoffMs). Tried this session and
      // reverted: a push refused because the branch had moved before it began (`fetch first`) retried at
      // once, only a collision at the ref update (pushed.collided) backing off. In a burst (N jobs that
      // cloned together) nearly every refusal is `fetch first`, so the losers re-pushed together again:
      // bench/bump's one-round run (bench/results/bump.txt) counted 4.25 extra attempts per writer for 20
      // writers against 1.35 with the backoff, conc/seq 3.0-4.0 against 2.1-2.7, and test/bump/concurrency
      // took 59 s and 84 s against 44 s and 68 s for the backoff (interleaved pairs).
      losses++;
      // the first attempt had no fetch: count one (a fetch costs about what a push does)
      window = Math.min(window, attempt === 1 ? Date.now() - attemptStart + t.push : Date.now() - attemptStart);
      if (Date.now() + window > cfg.deadline) {
        throw fail.timeout(BumpErrors.TIMEOUT, `out of time after ${attempt} push attempts: ${cfg.branch} kept moving`, {
          where: `${cfg.remote.display} (${cfg.branch})`,
          hint: 'raise --timeout, or serialise the jobs with a GitLab resource_group; nothing was pushed',
        });
      }
      // holding the write-back lock, the other writers wait for us: only a writer without it moved the branch, and
      // our next turn is now (backing off would keep the queue waiting on an idle branch)
      let wait = lock ? 0 : backoffMs(losses, window);
      wait = Math.min(wait, Math.max(0, cfg.deadline - Date.now() - window));
      log.info(`push rejected, ${cfg.branch} moved (attempt ${attempt}/${cfg.maxAttempts}); re-applying on the new tip${wait ? ` in ${wait} ms` : ' at once'}`);
      if (wait) await sleep(wait);
      t.backoff = lap();
      attemptStart = Date.now();
      head = await clone.resetToRemoteTip();
      await guard.history.moved(head);
      fetchMs = lap();
      log.debug(`${cfg.branch} is now at ${head}`);
      // the new tip may reference other bases (only new references cost a git call)
      if (cfg.render) await co.closure(cfg.overlays);
    }
  } finally {
    // the lock is given back while the clone is cleaned up (a request to the server, beside the temp dir's removal)
    const released = lock?.release();
    clearImmediate(warm);
    await guard?.close();
    await co?.close();
    await released;
    timing.total = Math.round(performance.now());
    log.debug(`bump timing ${JSON.stringify(timing)}`);
  }
}
