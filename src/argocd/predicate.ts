/**
 * The deploy predicate: is commit C of the config repo deployed by this Application, reconciled and
 * healthy? It mirrors `argocd app wait` (A.3 in the Argo CD notes) and adds the revision check the CLI
 * lacks, so that a job never passes on health that belongs to the previous commit.
 *
 *   inProgress = app.operation != null                                   (requested, not picked up yet)
 *             || operationState.finishedAt == null || phase in {Running, Terminating}
 *             || (!dryRun && (reconciledAt == null || reconciledAt < finishedAt))   (no post-sync reconcile yet)
 *   atTarget   = status.sync.revision (or any of status.sync.revisions) == C
 *             || (--allow-descendant and C is an ancestor of it, decided with git)
 *   done       = !inProgress && atTarget && sync == Synced && health == Healthy
 *             && (operationState == null || phase == Succeeded) && metadata.deletionTimestamp == null
 *
 * The last operation may be for an earlier revision when C did not change this app's manifests: Argo CD
 * then compares at C, finds it Synced and does not sync ("Skipping auto-sync: application status is
 * Synced"). Synced at C after a reconcile proves the live state equals C, so that is accepted.
 *
 * Terminal failures (auto-sync never retries a failed revision):
 *   - phase Failed/Error for an operation on C (or on the accepted descendant), with no new op requested;
 *   - ComparisonError / InvalidSpecError conditions seen at C, or from a reconcile after the wait began;
 *   - health Degraded at C, Synced, after the post-sync reconcile (an Argo Rollouts Rollout Degraded with
 *     "Rollout aborted …", Argo CD's built-in health of an aborted canary, is named as such).
 *
 * Blocked (neither failed nor in progress; `argocd wait` reports it at once, or with --wait-blocked at the
 * end instead of a timeout):
 *   - at C, Synced, health Suspended because a Rollout is Suspended ("Rollout is paused": Argo CD's built-in
 *     health of a canary paused at a step, https://argo-cd.readthedocs.io/en/stable/operator-manual/health/).
 * (A sync window holding the sync is found by wait.ts: Argo CD reports it only through GET …/syncwindows.)
 */
import type { ErrorCode } from '../core/error-codes.js';
import { ArgoErrors } from './errors.js';
import { shortSha, type Application, type ResourceResult, type ResourceStatus } from './types.js';

export type RevisionAnswer = 'yes' | 'no' | 'unknown';

export interface PredicateInput {
  /** the commit the job pushed */
  revision: string;
  /** for a revision R ≠ C: is R a descendant of C? ('unknown' while git is asked) */
  accepts?: (rev: string) => RevisionAnswer;
  /** when the wait began: conditions from reconciles before it may be stale */
  startedAt: number;
}

export type Verdict =
  | { kind: 'done'; revision: string; superseded: boolean }
  | { kind: 'waiting'; reason: string }
  | { kind: 'failed'; code: ErrorCode; message: string; details: string[] }
  | { kind: 'blocked'; code: ErrorCode; message: string; details: string[]; resource?: ResourceStatus };

const time = (t: string | undefined) => (t ? Date.parse(t) : NaN);

export function syncRevisions(app: Application): string[] {
  const s = app.status?.sync;
  if (s?.revisions?.length) return s.revisions;
  return s?.revision ? [s.revision] : [];
}

export function operationInProgress(app: Application): string | undefined {
  if (app.operation) return 'an operation is requested';
  const os = app.status?.operationState;
  if (!os) return undefined;
  if (!os.finishedAt || os.phase === 'Running' || os.phase === 'Terminating') return `operation ${os.phase ?? 'running'}`;
  if (!os.operation?.sync?.dryRun) {
    const rec = time(app.status?.reconciledAt);
    if (Number.isNaN(rec) || rec < time(os.finishedAt)) return 'waiting for the reconcile after the operation';
  }
  return undefined;
}

function failedResources(rs: ResourceResult[] | undefined): string[] {
  return (rs ?? [])
    .filter((r) => r.status === 'SyncFailed' || r.hookPhase === 'Failed' || r.hookPhase === 'Error')
    .map((r) => `${r.kind ?? '?'}/${r.namespace ? `${r.namespace}/` : ''}${r.name ?? '?'}: ${r.status ?? r.hookPhase}${r.message ? `: ${r.message}` : ''}`);
}

export function degradedResources(app: Application): string[] {
  return (app.status?.resources ?? [])
    .filter((r) => r.health?.status === 'Degraded' || r.health?.status === 'Missing')
    .map((r) => `${r.kind ?? '?'}/${r.namespace ? `${r.namespace}/` : ''}${r.name ?? '?'}: ${r.health?.status}${r.health?.message ? `: ${r.health.message}` : ''}`);
}

export function evaluate(app: Application, input: PredicateInput): Verdict {
  const C = input.revision;
  const st = app.status ?? {};
  const os = st.operationState ?? undefined;
  const revs = syncRevisions(app);
  let matched: string | undefined = revs.find((r) => r === C);
  let superseded = false;
  let unknown = false;
  if (!matched && input.accepts) {
    for (const r of revs) {
      const a = input.accepts(r);
      if (a === 'yes') {
        matched = r;
        superseded = true;
        break;
      }
      if (a === 'unknown') unknown = true;
    }
  }
  const target = matched ?? C;
  const inProgress = operationInProgress(app);
  const opRevs = [os?.syncResult?.revision, ...(os?.syncResult?.revisions ?? []), os?.operation?.sync?.revision, ...(os?.operation?.sync?.revisions ?? [])].filter(Boolean);
  const opForTarget = opRevs.includes(target);

  // terminal failures
  if (os && (os.phase === 'Failed' || os.phase === 'Error') && !app.operation && opForTarget) {
    return {
      kind: 'failed',
      code: ArgoErrors.SYNC_FAILED,
      message: `the sync of ${shortSha(target)} ${os.phase === 'Error' ? 'errored' : 'failed'}: ${os.message ?? 'no message'}`,
      details: failedResources(os.syncResult?.resources),
    };
  }
  const bad = (st.conditions ?? []).filter((c) => c.type === 'ComparisonError' || c.type === 'InvalidSpecError');
  const fresh = time(st.reconciledAt) >= Math.floor(input.startedAt / 1000) * 1000;
  if (bad.length && (matched || fresh)) {
    const spec = bad.some((c) => c.type === 'InvalidSpecError') && !bad.some((c) => c.type === 'ComparisonError');
    return {
      kind: 'failed',
      code: spec ? ArgoErrors.INVALID_SPEC : ArgoErrors.COMPARISON_ERROR,
      message: `Argo CD cannot ${spec ? 'use the application spec' : `compare the app at ${shortSha(revs[0] ?? C)}`}: ${bad[0].message ?? bad[0].type}`,
      details: bad.map((c) => `${c.type}: ${c.message ?? ''}`),
    };
  }
  const sync = st.sync?.status ?? 'Unknown';
  const health = st.health?.status ?? 'Unknown';
  const rollouts = (st.resources ?? []).filter((r) => r.kind === 'Rollout');
  if (matched && !inProgress && sync === 'Synced' && health === 'Degraded') {
    const aborted = rollouts.find((r) => r.health?.status === 'Degraded' && /abort/i.test(r.health?.message ?? ''));
    if (aborted) {
      return {
        kind: 'failed',
        code: ArgoErrors.ROLLOUT_ABORTED,
        message: `the Argo Rollouts canary ${aborted.name ?? '?'} was aborted at ${shortSha(target)}: ${aborted.health?.message ?? ''}`,
        details: degradedResources(app),
      };
    }
    return {
      kind: 'failed',
      code: ArgoErrors.DEGRADED,
      message: `the app is Degraded at ${shortSha(target)}${st.health?.message ? `: ${st.health.message}` : ''}`,
      details: degradedResources(app),
    };
  }

  const paused = rollouts.find((r) => r.health?.status === 'Suspended');
  if (matched && !inProgress && sync === 'Synced' && health === 'Suspended' && paused) {
    return {
      kind: 'blocked',
      code: ArgoErrors.ROLLOUT_PAUSED,
      message: `the Argo Rollouts canary ${paused.name ?? '?'} is paused at ${shortSha(target)}${paused.health?.message ? ` (${paused.health.message})` : ''}`,
      details: [],
      resource: paused,
    };
  }

  // a cascade delete leaves the status as it was while the finalizer prunes the app's resources: an app
  // with a deletionTimestamp is going away, not deployed (a recreated app is judged on its own states)
  if (app.metadata?.deletionTimestamp) return { kind: 'waiting', reason: `the app is being deleted (since ${app.metadata.deletionTimestamp})` };
  if (!matched) {
    if (unknown) return { kind: 'waiting', reason: `checking whether ${shortSha(revs[0])} descends from ${shortSha(C)}` };
    return { kind: 'waiting', reason: revs.length ? `Argo CD is at ${shortSha(revs[0])}, not ${shortSha(C)}` : 'Argo CD has not resolved a revision yet' };
  }
  if (inProgress) return { kind: 'waiting', reason: inProgress };
  if (sync !== 'Synced') return { kind: 'waiting', reason: `sync status ${sync}` };
  if (os && os.phase !== 'Succeeded') return { kind: 'waiting', reason: `last operation ${os.phase}` };
  if (health !== 'Healthy') return { kind: 'waiting', reason: `health ${health}` };
  return { kind: 'done', revision: target, superseded };
}
