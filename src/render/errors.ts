/** Error catalogue of the rendered diff (src/render/**, used by `promote` and `preview`). */
export const RenderErrors = {
  /** `kustomize build` produced output that is not YAML (1) */
  YAML: 'ERENDER_YAML',
  /** a kustomization of the change names a remote resource, base, component or chart (http(s), git, ssh): refused, nothing fetched (1) */
  REMOTE: 'ERENDER_REMOTE',
  /** a kustomization of the change reads a path outside the checkout (`../` out of it, an absolute path, a symlink out of it) (1) */
  OUTSIDE: 'ERENDER_OUTSIDE',
  /** a kustomization of the change cannot be read as kustomize reads it (several documents, a key given twice, two keys naming one field ignoring case): refused, not rendered (1) */
  UNCHECKED: 'ERENDER_UNCHECKED',
  /** kustomize did not finish before the deadline (--timeout); it was stopped (4) */
  TIMEOUT: 'ERENDER_TIMEOUT',
  /** kustomize went over its memory limit (GITOPS_RENDER_MEMORY_MB, e.g. a YAML alias bomb) and was stopped (1) */
  MEMORY: 'ERENDER_MEMORY',
  /** kustomize's output went over the size limit (GITOPS_RENDER_MAX_MB) and was stopped (1) */
  TOO_LARGE: 'ERENDER_TOO_LARGE',
} as const;
