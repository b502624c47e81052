/**
 * Error catalogue of the shared write-back checkout (src/writeback/**: bump, promote, preview). A path out of the
 * clone keeps its historic code EKUSTOMIZE_OUTSIDE (src/kustomize/errors.ts); the overlay codes stay the
 * commands' own (EBUMP_OVERLAY_NOT_FOUND, EPROMOTE_SOURCE_NOT_FOUND...).
 */
export const WritebackErrors = {
  /** a directory holds files of more than one edit target kind (--target-kind auto), or several files of the kind (2) */
  TARGET_AMBIGUOUS: 'EWRITEBACK_TARGET_AMBIGUOUS',
} as const;
