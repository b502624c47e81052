/** Error codes of `gitops-ci rollback` and of a re-run deploy job's bump (docs/commands/rollback.md). */
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
