/**
 * Waiting for one or more apps to reach the deploy predicate (predicate.ts): one GET first (an app
 * already deployed returns at once), a refresh request when Argo CD is not at the commit yet, then the
 * watch stream, resumed from the last resourceVersion when it drops, falling back to polling GET when
 * the stream is not available. Transient errors (5xx, network) are retried for --retry-for; 401/403 stop
 * at once. Each state change prints one line.
 */
import { fail, GitopsError, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ArgoClient, ArgoHttpError } from './client.js';
import { formatMs } from './duration.js';
import { ArgoErrors, ArgoExit, ArgoStateError } from './errors.js';
import { blocking, describeWindow } from './windows.js';
import { degradedResources, evaluate, operationInProgress, syncRevisions, type RevisionAnswer, type Verdict } from './predicate.js';
import { appLabel, shortSha, type AppRef, type Application } from './types.js';

export interface WaitOptions {
  revision: string;
  timeoutMs: number;
  /** accept a descendant of the revision: answers from git (Ancestry); repoURL is the source the revision belongs to */
  isDescendant?: (ancestor: string, rev: string, app: Application, repoURL: string | undefined) => Promise<boolean>;
  /** ask Argo CD to refresh when it is not at the revision yet (default true) */
  refresh: boolean;
  /** poll interval when the stream is unavailable */
  pollIntervalMs: number;
  /** how long transient errors are retried before exit 75 */
  retryForMs: number;
  /** reconnect the stream after this long without data */
  streamIdleMs: number;
  /** force polling (no stream) */
  poll?: boolean;
  /** a paused canary or a sync window does not end the wait; at the timeout it is reported instead of one */
  waitBlocked?: boolean;
}

export interface AppOutcome {
  ref: AppRef;
  app: Application;
  revision: string;
  superseded: boolean;
  durationMs: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => (clearTimeout(t), resolve());
    // the listener goes with the timer: a long wait sleeps many times on one signal
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export function stateLine(app: Application): string {
  const st = app.status ?? {};
  const os = st.operationState;
  const opRev = os?.syncResult?.revision ?? os?.operation?.sync?.revision;
  const phase = os?.phase ? `${os.phase}${opRev ? ` (${shortSha(opRev)})` : ''}` : undefined;
  // while an operation runs, `operation` stays set: show the phase once the controller has picked it up
  const op = app.operation ? (os && !os.finishedAt && phase ? phase : 'requested') : (phase ?? '-');
  const conds = (st.conditions ?? []).filter((c) => /Error$/.test(c.type ?? '')).map((c) => c.type);
  return `revision ${syncRevisions(app).map(shortSha).join(',') || '-'} · sync ${st.sync?.status ?? 'Unknown'} · health ${st.health?.status ?? 'Unknown'} · operation ${op}${operationInProgress(app) === 'waiting for the reconcile after the operation' ? ' · reconcile pending' : ''}${conds.length ? ` · ${[...new Set(conds)].join(', ')}` : ''}`;
}

class AppWaiter {
  last?: Application;
  private lastLine = '';
  private lastRv?: string;
  private readonly answers = new Map<string, RevisionAnswer>();
  private firstTransientAt?: number;
  private settle!: { resolve: (o: AppOutcome) => void; reject: (e: unknown) => void };
  readonly result: Promise<AppOutcome>;
  private settled = false;
  private readonly ctl = new AbortController();
  private readonly started = Date.now();
  private notedSuperseded = false;
  /** how this app ended, when it failed */
  error?: GitopsError;
  /** the blocking state seen last (paused canary, sync window), while it lasts */
  blocked?: GitopsError;
  private lastWindowCheck = 0;
  private windowCheck?: Promise<void>;
  private blockedLine = '';
  private pausedLookup = false;

  constructor(
    private readonly client: ArgoClient,
    private readonly log: Logger,
    readonly ref: AppRef,
    private readonly opts: WaitOptions,
    private readonly multi: boolean,
  ) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => undefined);
  }

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  stop(): void {
    this.ctl.abort();
  }

  private prefix(): string {
    return this.multi ? `[${appLabel(this.ref)}] ` : '';
  }

  /** the app reached the predicate */
  done = false;

  private finish(err: unknown, outcome?: AppOutcome): void {
    if (this.settled) return;
    if (!err) this.done = true;
    this.settled = true;
    this.ctl.abort();
    if (err) this.error = isGitopsError(err) ? err : undefined;
    if (err) this.settle.reject(err);
    else this.settle.resolve(outcome!);
  }

  private accepts = (rev: string): RevisionAnswer => {
    if (!this.opts.isDescendant) return 'no';
    // only commits can descend: a Helm chart version of another source cannot
    if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(rev)) return 'no';
    const a = this.answers.get(rev);
    if (a) return a;
    this.answers.set(rev, 'unknown');
    const app = this.last!;
    // multi-source: status.sync.revisions[i] belongs to spec.sources[i]
    const i = app.status?.sync?.revisions?.indexOf(rev) ?? -1;
    const repoURL = i >= 0 && app.spec?.sources?.[i] ? app.spec.sources[i].repoURL : (app.spec?.source?.repoURL ?? app.spec?.sources?.[0]?.repoURL);
    this.opts.isDescendant(this.opts.revision, rev, app, repoURL).then(
      (yes) => {
        this.answers.set(rev, yes ? 'yes' : 'no');
        if (this.last) this.handle(this.last);
      },
      (e) => this.finish(e),
    );
    return 'unknown';
  };

  /** evaluates one observed state; prints a line when it changed */
  handle(app: Application): Verdict {
    if (this.settled || this.failing) return { kind: 'waiting', reason: 'settled' };
    this.last = app;
    if (app.metadata?.resourceVersion) this.lastRv = app.metadata.resourceVersion;
    this.firstTransientAt = undefined;
    const line = stateLine(app);
    if (line !== this.lastLine) {
      this.lastLine = line;
      this.log.info(`${this.prefix()}${line}`);
    }
    const v = evaluate(app, { revision: this.opts.revision, accepts: this.opts.isDescendant ? this.accepts : undefined, startedAt: this.started });
    if (v.kind === 'done') {
      this.finish(undefined, { ref: this.ref, app, revision: v.revision, superseded: v.superseded, durationMs: Date.now() - this.started });
    } else if (v.kind === 'failed') {
      this.fail(v, app);
    } else if (v.kind === 'blocked') {
      this.onBlocked(v, app);
    } else if (!this.notedSuperseded && !this.opts.isDescendant && !operationInProgress(app) && app.status?.sync?.status === 'Synced' && syncRevisions(app).length && !syncRevisions(app).includes(this.opts.revision) && Date.parse(app.status?.reconciledAt ?? '') >= (Math.floor(this.started / 1000) + 1) * 1000) {
      this.notedSuperseded = true;
      this.log.info(`${this.prefix()}note: Argo CD reconciled after the wait began and tracks ${shortSha(syncRevisions(app)[0])}, not ${shortSha(this.opts.revision)}: if the branch moved on, --allow-descendant accepts a later commit`);
    }
    if (v.kind === 'waiting') {
      // a blocking state that is over (the canary was promoted) is forgotten
      if (this.blocked?.code === ArgoErrors.ROLLOUT_PAUSED) this.blocked = undefined;
      const revs = syncRevisions(app);
      if (revs.length && !operationInProgress(app) && app.status?.sync?.status === 'OutOfSync' && (revs.includes(this.opts.revision) || this.answers.get(revs[0]!) === 'yes')) this.checkWindows(app);
    }
    return v;
  }

  /** the state blocks: end the wait now, or (--wait-blocked) remember it for the timeout */
  private report(err: GitopsError): void {
    if (!this.opts.waitBlocked) return this.finish(err);
    this.blocked = err;
    if (err.message !== this.blockedLine) {
      this.blockedLine = err.message;
      this.log.info(`${this.prefix()}${err.message}; waiting (--wait-blocked)`);
    }
  }

  private onBlocked(v: Extract<Verdict, { kind: 'blocked' }>, app: Application): void {
    const r = v.resource;
    const base = { where: `application ${appLabel(this.ref)}`, hint: '' };
    const make = (step?: string) =>
      new ArgoStateError(
        {
          kind: 'failed',
          code: v.code,
          message: `${appLabel(this.ref)}: ${v.message}${step ? `, ${step}` : ''}`,
          ...base,
          details: [`last state: ${stateLine(app)}`],
          hint: `promote the canary (\`kubectl argo rollouts promote ${r?.name ?? 'NAME'}${r?.namespace ? ` -n ${r.namespace}` : ''}\`, or Argo CD's "resume" action) and wait again, or abort it; --wait-blocked keeps waiting through pauses until --timeout`,
        },
        ArgoExit.ROLLOUT_PAUSED,
      );
    if (!r || this.blocked?.code === v.code) return this.report(this.blocked ?? make());
    if (this.pausedLookup) return;
    this.pausedLookup = true;
    // the step, from the live Rollout (status.currentStepIndex of spec.strategy.canary.steps)
    this.client.liveResource(this.ref, { group: r.group ?? 'argoproj.io', version: r.version, kind: 'Rollout', namespace: r.namespace, name: r.name }, { signal: this.signal }).then(
      (live) => {
        const steps: Array<Record<string, any>> = live.spec?.strategy?.canary?.steps ?? [];
        const i = Number(live.status?.currentStepIndex);
        const reason = (live.status?.pauseConditions ?? []).map((c: { reason?: string }) => c.reason).filter(Boolean).join(', ');
        const step = Number.isInteger(i) && steps.length ? `at step ${i + 1} of ${steps.length}${steps[i]?.pause ? (steps[i]!.pause.duration ? ` (pause ${steps[i]!.pause.duration})` : ' (a pause without duration: waits for a promote)') : ''}${reason ? ` [${reason}]` : ''}` : undefined;
        this.pausedLookup = false;
        if (!this.settled) this.report(make(step));
      },
      () => {
        this.pausedLookup = false;
        if (!this.settled) this.report(make());
      },
    );
  }

  /** Argo CD reports a sync window only through GET …/syncwindows: ask when the app waits at the commit, unsynced */
  private checkWindows(app: Application): void {
    if (this.windowCheck || Date.now() - this.lastWindowCheck < 5000) return;
    this.lastWindowCheck = Date.now();
    this.windowCheck = this.client
      .syncWindows(this.ref, { signal: this.signal })
      .then(
        (ans) => {
          if (this.settled) return;
          if (ans.canSync !== false) {
            if (this.blocked?.code === ArgoErrors.SYNC_WINDOW) this.blocked = undefined;
            return;
          }
          const b = blocking(ans);
          const opens = b.opensAt !== undefined ? `; it opens at ${new Date(b.opensAt).toISOString().replace(/\.\d+Z$/, 'Z')} (in ${formatMs(Math.max(0, b.opensAt - Date.now()))}, schedules read in UTC)` : '';
          this.report(
            new ArgoStateError(
              {
                kind: 'failed',
                code: ArgoErrors.SYNC_WINDOW,
                message: `${appLabel(this.ref)}: a sync window blocks the sync of ${shortSha(syncRevisions(app)[0])}${opens}`,
                where: `application ${appLabel(this.ref)}`,
                details: [...b.windows.map(describeWindow), `last state: ${stateLine(app)}`],
                hint: 'run the job again when the window opens (a pipeline can retry on exit 6), sync by hand if the window allows manual syncs, or change the AppProject\'s sync windows; --wait-blocked waits until --timeout',
              },
              ArgoExit.SYNC_WINDOW,
            ),
          );
        },
        (e) => this.log.debug(`${this.prefix()}sync windows: ${(e as Error).message}`),
      )
      .finally(() => (this.windowCheck = undefined));
  }

  private failing = false;

  private fail(v: Extract<Verdict, { kind: 'failed' }>, app: Application): void {
    if (this.failing) return;
    this.failing = true;
    const details = [...v.details];
    if (v.code === ArgoErrors.DEGRADED) {
      // the resource tree has per-pod health messages the app status may lack
      this.client.resourceTree(this.ref).then(
        (tree) => {
          for (const n of tree.nodes ?? []) {
            if (n.health?.status === 'Degraded' || n.health?.status === 'Missing') {
              const l = `${n.kind}/${n.namespace ? `${n.namespace}/` : ''}${n.name}: ${n.health.status}${n.health.message ? `: ${n.health.message}` : ''}`;
              if (!details.includes(l)) details.push(l);
            }
          }
          this.finish(this.failure(v, details, app));
        },
        () => this.finish(this.failure(v, details.length ? details : degradedResources(app), app)),
      );
      return;
    }
    this.finish(this.failure(v, details, app));
  }

  private failure(v: Extract<Verdict, { kind: 'failed' }>, details: string[], app: Application): GitopsError {
    return fail.failed(v.code, `${appLabel(this.ref)}: ${v.message}`, {
      where: `application ${appLabel(this.ref)}`,
      details: [...details, `last state: ${stateLine(app)}`],
      hint:
        v.code === ArgoErrors.SYNC_FAILED
          ? 'fix the manifests and push a new commit (Argo CD does not retry a failed revision); `argocd app get` shows the full result'
          : v.code === ArgoErrors.DEGRADED
            ? 'the new version does not become healthy: check the resources above (events, pod logs), fix and push again'
            : 'fix the config repo or the Application spec; Argo CD shows the same message in the app\'s conditions',
    });
  }

  /** handles an error of one attempt: rethrow (stop) or return to retry */
  private onError(e: unknown): void {
    if (isGitopsError(e) && e.kind !== 'transient') throw e;
    const now = Date.now();
    this.firstTransientAt ??= now;
    this.log.debug(`${this.prefix()}transient: ${(e as Error).message}`);
    if (now - this.firstTransientAt >= this.opts.retryForMs) {
      throw isGitopsError(e) ? e : fail.transient(ArgoErrors.UNAVAILABLE, String(e));
    }
  }

  async run(): Promise<void> {
    const signal = this.ctl.signal;
    try {
      // 1. the current state: an app already deployed returns at once
      let backoff = 200;
      while (!signal.aborted && !this.last) {
        try {
          this.handle(await this.client.getApp(this.ref, { signal }));
        } catch (e) {
          if (signal.aborted) return;
          this.onError(e);
          this.log.info(`${this.prefix()}Argo CD unavailable (${(e as Error).message}); retrying`);
          await sleep(backoff, signal);
          backoff = Math.min(backoff * 2, 5000);
        }
      }
      if (signal.aborted) return;
      // 2. not there yet: ask for a refresh now rather than at the next poll (up to 3 min away)
      if (this.opts.refresh && !syncRevisions(this.last!).includes(this.opts.revision)) this.kickRefresh();
      // 3. follow the stream; fall back to polling
      let mode: 'stream' | 'poll' = this.opts.poll ? 'poll' : 'stream';
      let streamFailures = 0;
      backoff = 200;
      while (!signal.aborted) {
        if (mode === 'stream') {
          try {
            const r = await this.client.watch(this.ref, { resourceVersion: this.lastRv, signal, idleTimeoutMs: this.opts.streamIdleMs, onEvent: (_t, app) => void this.handle(app) });
            if (signal.aborted) return;
            if (r.events > 0) streamFailures = 0;
            else streamFailures++;
            this.log.debug(`${this.prefix()}watch ended (${r.ended}, ${r.events} events); reconnecting from resourceVersion ${this.lastRv}`);
            if (r.ended !== 'idle') await sleep(r.events > 0 ? 100 : backoff, signal);
          } catch (e) {
            if (signal.aborted) return;
            const status = e instanceof ArgoHttpError ? e.status : 0;
            if (status === 404 || status === 405 || status === 501 || (isGitopsError(e) && e.code === ArgoErrors.REJECTED && !status)) {
              this.log.info(`${this.prefix()}the watch stream is not available (${(e as Error).message}); polling every ${formatMs(this.opts.pollIntervalMs)}`);
              mode = 'poll';
              continue;
            }
            this.onError(e);
            streamFailures++;
            if (streamFailures >= 3) {
              this.log.info(`${this.prefix()}the watch stream keeps failing (${(e as Error).message}); polling every ${formatMs(this.opts.pollIntervalMs)}`);
              mode = 'poll';
              continue;
            }
            await sleep(backoff, signal);
            backoff = Math.min(backoff * 2, 5000);
          }
        } else {
          try {
            this.handle(await this.client.getApp(this.ref, { signal }));
          } catch (e) {
            if (signal.aborted) return;
            this.onError(e);
          }
          await sleep(this.opts.pollIntervalMs, signal);
        }
      }
    } catch (e) {
      this.finish(e);
    }
  }

  private kickRefresh(): void {
    // GET ?refresh=normal blocks on the server until the controller has reconciled; its answer is a fresh state
    this.client.getApp(this.ref, { refresh: 'normal', signal: this.ctl.signal, timeoutMs: Math.min(this.opts.timeoutMs, 120_000) }).then(
      (app) => {
        // a refresh answer may be older than a stream event already seen: only use it when it is newer
        if (!this.last || Number(app.metadata?.resourceVersion ?? 0) >= Number(this.last.metadata?.resourceVersion ?? 0)) this.handle(app);
      },
      (e) => {
        if (isGitopsError(e) && e.kind === 'auth') this.finish(e);
        else this.log.debug(`${this.prefix()}refresh request: ${(e as Error).message}`);
      },
    );
  }
}

const RANK = (e: GitopsError) => (e.kind === 'auth' || e.kind === 'usage' ? 0 : e.kind === 'failed' && !(e instanceof ArgoStateError) ? 1 : e instanceof ArgoStateError ? 2 : e.kind === 'timeout' ? 3 : 4);

function pendingLine(w: AppWaiter, revision: string): string {
  if (w.blocked) return `${appLabel(w.ref)}: ${w.blocked.code}: ${w.blocked.message.replace(`${appLabel(w.ref)}: `, '')}`;
  if (!w.last) return `${appLabel(w.ref)}: no state received from Argo CD`;
  const v = evaluate(w.last, { revision, startedAt: 0 });
  const conds = (w.last.status?.conditions ?? []).map((c) => `; ${c.type}: ${c.message ?? ''}`).join('');
  return `${appLabel(w.ref)}: last state: ${stateLine(w.last)}${v.kind === 'waiting' ? ` (${v.reason})` : ''}${conds}`;
}

/**
 * Waits for every app. The first failure ends the wait; with several apps the error names each app that
 * does not run the commit (its failure, its blocking state, or how far it got) and takes the code and exit
 * of the worst (auth/usage, a failed deploy, a blocking state, a timeout). A timeout while an app is blocked
 * (--wait-blocked) is reported as the blocking state. Throws GitopsError (exit 1, 3, 4, 5, 6 or 75).
 */
export async function waitForApps(client: ArgoClient, log: Logger, refs: AppRef[], opts: WaitOptions): Promise<AppOutcome[]> {
  const waiters = refs.map((r) => new AppWaiter(client, log, r, opts, refs.length > 1));
  const sha = shortSha(opts.revision);
  let timer: NodeJS.Timeout | undefined;
  const timeoutError = (): GitopsError => {
    const pending = waiters.filter((w) => !w.signal.aborted);
    const blocked = pending.map((w) => w.blocked).filter((e): e is GitopsError => !!e);
    if (refs.length === 1 && blocked[0]) return blocked[0];
    const worst = blocked.sort((a, b) => RANK(a) - RANK(b))[0];
    const init = {
      details: pending.map((w) => pendingLine(w, opts.revision)),
      hint: worst?.hint ?? (pending.some((w) => w.last && !opts.isDescendant && syncRevisions(w.last).length && !syncRevisions(w.last).includes(opts.revision) && w.last.status?.sync?.status === 'Synced')
        ? 'Argo CD is at another commit: if the branch moved past yours, --allow-descendant accepts a later commit that contains it; else check the app\'s targetRevision and that the webhook or polling works (gitops-ci argocd notify)'
        : 'raise --timeout if the rollout is slow; if Argo CD never picks the commit up, check the app\'s targetRevision and that the webhook or polling works (gitops-ci argocd notify)'),
    };
    const msg = `timed out after ${formatMs(opts.timeoutMs)} waiting for ${pending.map((w) => appLabel(w.ref)).join(', ')} to deploy ${sha}`;
    if (worst) return new ArgoStateError({ kind: worst.kind, code: worst.code, message: `${msg}: ${blocked.length === pending.length ? 'blocked' : 'some blocked'} (${worst.code})`, ...init }, worst.exitCode);
    return fail.timeout(ArgoErrors.TIMEOUT, msg, init);
  };
  const all = new Promise<AppOutcome[]>((resolve, reject) => {
    const results: AppOutcome[] = [];
    let left = waiters.length;
    waiters.forEach((w, i) =>
      w.result.then(
        (o) => {
          results[i] = o;
          if (--left === 0) resolve(results);
        },
        reject,
      ),
    );
    timer = setTimeout(() => reject(timeoutError()), opts.timeoutMs);
  });
  for (const w of waiters) void w.run();
  try {
    return await all;
  } catch (e) {
    if (refs.length === 1 || !isGitopsError(e) || e.code === ArgoErrors.TIMEOUT || e.message.startsWith('timed out')) throw e;
    if (e.kind === 'auth' || e.kind === 'usage' || e.kind === 'transient') throw e;
    // a fleet: name every app that does not run the commit, with the worst failure's code and exit
    const failed = waiters.filter((w) => w.error).map((w) => w.error!);
    const worst = [...failed].sort((a, b) => RANK(a) - RANK(b))[0] ?? e;
    const notDone = waiters.filter((w) => !w.done);
    const lines = notDone.map((w) => (w.error ? `${appLabel(w.ref)}: ${w.error.code}: ${w.error.message.replace(`${appLabel(w.ref)}: `, '')}` : `${pendingLine(w, opts.revision)} (not finished when the wait ended)`));
    const ok = waiters.filter((w) => w.done).map((w) => appLabel(w.ref));
    throw new ArgoStateError(
      {
        kind: worst.kind,
        code: worst.code,
        message: `${notDone.length} of ${waiters.length} apps do not run ${sha} synced and healthy: ${notDone.map((w) => appLabel(w.ref)).join(', ')}`,
        where: worst.where,
        details: [...lines, ...worst.details ?? [], ...(ok.length ? [`deployed: ${ok.join(', ')}`] : [])],
        hint: worst.hint,
      },
      worst.exitCode,
    );
  } finally {
    clearTimeout(timer);
    for (const w of waiters) w.stop();
  }
}

export function outcomeLines(o: AppOutcome): string[] {
  const st = o.app.status ?? {};
  return [
    `app:      ${appLabel(o.ref)}`,
    `revision: ${o.revision}${o.superseded ? ' (a descendant of the requested commit)' : ''}`,
    `sync:     ${st.sync?.status ?? '-'}`,
    `health:   ${st.health?.status ?? '-'}`,
    `duration: ${formatMs(o.durationMs)}`,
    `images:   ${(st.summary?.images ?? []).join(', ') || '-'}`,
  ];
}
