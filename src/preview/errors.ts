/** Error catalogue of the preview area (src/preview/**, `gitops-ci preview`); docs/commands/preview.md tables it. */
export const PreviewErrors = {
  /** bad or missing flags/variables; the details list every problem (2) */
  CONFIG: 'EPREVIEW_CONFIG',
  /** no merge request: not an MR pipeline and no --mr (2) */
  NO_MR: 'EPREVIEW_NO_MR',
  /** the base or head commit of the MR is not in the local repo and cannot be fetched (1) */
  COMMIT: 'EPREVIEW_COMMIT',
  /** an overlay named by --dir does not exist (2) */
  OVERLAY_NOT_FOUND: 'EPREVIEW_OVERLAY_NOT_FOUND',
  /** an overlay could not be rendered; the note says which and why (1) */
  RENDER: 'EPREVIEW_RENDER',
} as const;
