/** Error codes of `gitops-ci status` (docs/commands/status.md). */
export const StatusErrors = {
  /** flags/env: no config repo, a bad --env or --app */
  CONFIG: 'ESTATUS_CONFIG',
  /** an environment's overlay is missing or holds no kustomization */
  OVERLAY: 'ESTATUS_OVERLAY',
  /** the --annotations or --json file cannot be written */
  WRITE: 'ESTATUS_WRITE',
} as const;
