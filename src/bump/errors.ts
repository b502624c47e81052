/**
 * Error catalogue of the bump area (src/bump/**, `gitops-ci bump`). The git codes it also raises are in
 * src/git/errors.ts, the edit codes in src/kustomize/errors.ts; docs/commands/bump.md tables them all.
 */
export const BumpErrors = {
  /** bad or missing flags/variables; the details list every problem (2) */
  CONFIG: 'EBUMP_CONFIG',
  /** --message has an unknown placeholder or is empty (2) */
  MESSAGE_TEMPLATE: 'EBUMP_MESSAGE_TEMPLATE',
  /** an overlay dir holds several kustomization files (2) */
  OVERLAY: 'EBUMP_OVERLAY',
  /** an overlay dir or its kustomization is missing on the branch (2) */
  OVERLAY_NOT_FOUND: 'EBUMP_OVERLAY_NOT_FOUND',
  /** the branch moved and the overlay is gone or unparseable at the new tip (1) */
  CONFLICT: 'EBUMP_CONFLICT',
  /** the push was still refused, the branch moving, after --max-attempts (1) */
  RACE_EXHAUSTED: 'EBUMP_RACE_EXHAUSTED',
  /** --timeout passed while retrying (4) */
  TIMEOUT: 'EBUMP_TIMEOUT',
} as const;
