/** Error codes of `gitops-ci status` and `gitops-ci rollback` (docs/commands/status.md, docs/commands/rollback.md). */
export const StatusErrors = {
  /** flags/env: no config repo, a bad --env or --app */
  CONFIG: 'ESTATUS_CONFIG',
  /** an environment's overlay is missing or holds no kustomization */
  OVERLAY: 'ESTATUS_OVERLAY',
  /** the --annotations or --json file cannot be written */
  WRITE: 'ESTATUS_WRITE',
} as const;

export const RollbackErrors = {
  /** flags: no --env, a malformed --to */
  CONFIG: 'EROLLBACK_CONFIG',
  /** --to names no earlier state of the environment (digest, config commit or steps back) */
  NO_TARGET: 'EROLLBACK_NO_TARGET',
  /** the target was never deployed by Argo CD (not in the app's history): not a verified state */
  NOT_VERIFIED: 'EROLLBACK_NOT_VERIFIED',
  /** a re-run of an old deploy job (GitLab's "Rollback environment" button) that cannot roll back */
  RERUN_REFUSED: 'EROLLBACK_RERUN_REFUSED',
} as const;
