/**
 * Error catalogue of the promote area (src/promote/**, `gitops-ci promote`). The git, bump, registry and
 * Argo CD codes it also raises are in their own catalogues; docs/commands/promote.md tables them all.
 */
export const PromoteErrors = {
  /** bad or missing flags/variables; the details list every problem (2) */
  CONFIG: 'EPROMOTE_CONFIG',
  /** --from (at the revision read) holds no kustomization (2) */
  SOURCE_NOT_FOUND: 'EPROMOTE_SOURCE_NOT_FOUND',
  /** --from pins no image, or not one named by --image (2) */
  NO_IMAGE: 'EPROMOTE_NO_IMAGE',
  /** an image in --from is pinned by tag and --require-digest refuses to resolve it, or it has neither tag nor digest (1) */
  NOT_PINNED: 'EPROMOTE_NOT_PINNED',
  /** an image's tag in --from does not exist in the registry (1) */
  TAG_UNRESOLVED: 'EPROMOTE_TAG_UNRESOLVED',
  /** --from-app: the app is not deployed, synced and healthy (1) */
  APP_NOT_READY: 'EPROMOTE_APP_NOT_READY',
  /** --from-app: the app deploys another path than --from, or from another repo than the config repo (2) */
  APP_MISMATCH: 'EPROMOTE_APP_MISMATCH',
  /** the config commit Argo CD reports cannot be fetched from the config repo (1) */
  REVISION: 'EPROMOTE_REVISION',
  /** --copy-to copied an image whose digest differs from the source's (1) */
  COPY_DIGEST: 'EPROMOTE_COPY_DIGEST',
  /** --via mr: the push of the promotion branch was refused (1) */
  PUSH: 'EPROMOTE_PUSH',
} as const;
