/** Error catalogue of the rendered diff (src/render/**, used by `promote` and `preview`). */
export const RenderErrors = {
  /** `kustomize build` produced output that is not YAML (1) */
  YAML: 'ERENDER_YAML',
} as const;
