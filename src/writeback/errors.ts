/**
 * Error catalogue of the shared write-back checkout (src/writeback/**: bump, promote, preview). A path out of the
 * clone keeps its historic code EKUSTOMIZE_OUTSIDE (src/kustomize/errors.ts); the overlay codes stay the
 * commands' own (EBUMP_OVERLAY_NOT_FOUND, EPROMOTE_SOURCE_NOT_FOUND...).
 */
export const WritebackErrors = {
  /** a directory holds files of more than one edit target kind (--target-kind auto), or several files of the kind (2) */
  TARGET_AMBIGUOUS: 'EWRITEBACK_TARGET_AMBIGUOUS',
  /** --via api cannot be used for this config repo (not an https URL on the pipeline's GitLab, no write token, --skip-ci push-option, --workdir) (2) */
  API_UNAVAILABLE: 'EWRITEBACK_API_UNAVAILABLE',
  /** GitLab's repository API answered something that is not a file or tree of the config repo (1) */
  API_ANSWER: 'EWRITEBACK_API_ANSWER',
  /** --lock-file cannot be created (its directory is missing or not writable) (2) */
  LOCK_FILE: 'EWRITEBACK_LOCK_FILE',
  /** the write-back lock (--lock-file) was still held by another writer at the deadline (4) */
  LOCK_TIMEOUT: 'EWRITEBACK_LOCK_TIMEOUT',
} as const;
