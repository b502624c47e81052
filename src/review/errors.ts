/**
 * Error catalogue of the review area (`gitops-ci review up|down`, src/review/**). The write-back codes it also
 * raises (git, EBUMP_TIMEOUT, EBUMP_RACE_EXHAUSTED, EKUSTOMIZE_OUTSIDE) are the shared ones of bump's loop;
 * docs/commands/review.md tables them all.
 */
export const ReviewErrors = {
  /** bad or missing flags/variables; the details list every problem (2) */
  CONFIG: 'EREVIEW_CONFIG',
  /** --env is not `<folder>/<name>`, or its name could leave the review root (a `/`, `..`, a symlink) (2) */
  NAME: 'EREVIEW_NAME',
  /** --base is not a directory holding a kustomization on the config branch (2) */
  BASE_NOT_FOUND: 'EREVIEW_BASE_NOT_FOUND',
  /** the review directory exists but is not one `review up` wrote (a file, or no kustomization) (2) */
  NOT_REVIEW: 'EREVIEW_NOT_REVIEW',
} as const;
