/**
 * Error codes of the argocd area (`gitops-ci argocd wait|sync|refresh|notify`). Each is listed in
 * docs/commands/argocd.md with its exit code and what to do.
 */
import { GitopsError, type ErrorInit } from '../core/errors.js';

export const ArgoErrors = {
  /** flags/env: no server, bad duration, bad app name, no revision */
  CONFIG: 'EARGOCD_CONFIG',
  /** 401 from Argo CD: no/invalid/expired token, bad username or password */
  UNAUTHENTICATED: 'EARGOCD_UNAUTHENTICATED',
  /** 403 from Argo CD: RBAC denied (or the app does not exist and no --project was given) */
  PERMISSION_DENIED: 'EARGOCD_PERMISSION_DENIED',
  /** 404 with --project: the app is not in that project, or does not exist */
  APP_NOT_FOUND: 'EARGOCD_APP_NOT_FOUND',
  /** 5xx, 429, connection refused/reset, client timeout on a request */
  UNAVAILABLE: 'EARGOCD_UNAVAILABLE',
  /** TLS verification failed (unknown CA, wrong host name) */
  TLS: 'EARGOCD_TLS',
  /** an answer (or one watch event) larger than the client reads (32 MiB) */
  TOO_LARGE: 'EARGOCD_TOO_LARGE',
  /** a 4xx answer we do not otherwise handle (415, bad revision, ...) */
  REJECTED: 'EARGOCD_REJECTED',
  /** the sync operation for the revision failed (phase Failed/Error) */
  SYNC_FAILED: 'EARGOCD_SYNC_FAILED',
  /** the app became Degraded at the revision */
  DEGRADED: 'EARGOCD_DEGRADED',
  /** ComparisonError condition: Argo CD could not render/compare the revision */
  COMPARISON_ERROR: 'EARGOCD_COMPARISON_ERROR',
  /** InvalidSpecError condition: the Application spec is invalid */
  INVALID_SPEC: 'EARGOCD_INVALID_SPEC',
  /** the deadline passed before the app reached the state */
  TIMEOUT: 'EARGOCD_TIMEOUT',
  /** the webhook was refused (400 Webhook processing failed: usually the secret) */
  WEBHOOK_REJECTED: 'EARGOCD_WEBHOOK_REJECTED',
  /** ancestry of revisions could not be decided with git */
  ANCESTRY: 'EARGOCD_ANCESTRY',
  /** an Argo Rollouts canary of the app is paused at a step (waits for a promote): exit 5 */
  ROLLOUT_PAUSED: 'EARGOCD_ROLLOUT_PAUSED',
  /** an Argo Rollouts canary of the app was aborted (analysis failed or by hand): exit 1 */
  ROLLOUT_ABORTED: 'EARGOCD_ROLLOUT_ABORTED',
  /** a sync window of the app's project blocks the sync now: exit 6 */
  SYNC_WINDOW: 'EARGOCD_SYNC_WINDOW',
  /** --selector or --appset names no application */
  FLEET_EMPTY: 'EARGOCD_FLEET_EMPTY',
  /** --appset: the ApplicationSet does not exist (404) */
  APPSET_NOT_FOUND: 'EARGOCD_APPSET_NOT_FOUND',
} as const;

/**
 * Exit codes of states that are neither a failed deploy nor a timeout: a pipeline can tell "a human must
 * promote the canary" (5) and "a sync window holds the deploy" (6) from a broken deploy (1) and a slow one (4).
 */
export const ArgoExit = {
  ROLLOUT_PAUSED: 5,
  SYNC_WINDOW: 6,
} as const;

/** a GitopsError whose exit code is one of ArgoExit's, not its kind's */
export class ArgoStateError extends GitopsError {
  private readonly exit: number;
  constructor(init: ErrorInit, exit: number) {
    super(init);
    this.exit = exit;
  }
  override get exitCode(): number {
    return this.exit;
  }
}
