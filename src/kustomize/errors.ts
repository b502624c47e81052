/**
 * Error catalogue of the kustomize area (src/kustomize/**, `gitops-ci set-image`, the edit step of `bump`).
 * Every GitopsError thrown by this area uses one of these codes; docs/commands/set-image.md lists them too.
 */
export const KustomizeErrors = {
  /** no image expression given (kustomize: errImageNoArgs, "no image specified") */
  NO_IMAGE: 'EKUSTOMIZE_NO_IMAGE',
  /** an image expression kustomize rejects (kustomize: errImageInvalidArgs) */
  BAD_IMAGE_EXPR: 'EKUSTOMIZE_BAD_IMAGE_EXPR',
  /** the overlay directory does not exist, or holds no kustomization file */
  NOT_FOUND: 'EKUSTOMIZE_NOT_FOUND',
  /** more than one of kustomization.yaml, kustomization.yml, Kustomization in one directory */
  MULTIPLE: 'EKUSTOMIZE_MULTIPLE_FILES',
  /** the kustomization file is not valid YAML (where: file:line:col) */
  YAML: 'EKUSTOMIZE_YAML',
  /** the kustomization is not a mapping, or holds several YAML documents */
  NOT_A_MAPPING: 'EKUSTOMIZE_NOT_A_MAPPING',
  /** `images:` is not a list */
  IMAGES_NOT_LIST: 'EKUSTOMIZE_IMAGES_NOT_LIST',
  /** an `images:` entry is not a mapping of name/newName/newTag/digest/tagSuffix to strings */
  BAD_IMAGE_ENTRY: 'EKUSTOMIZE_BAD_IMAGE_ENTRY',
  /** the kustomization file cannot be read */
  READ: 'EKUSTOMIZE_READ',
  /** the kustomization file cannot be written (every file already written was restored) */
  WRITE: 'EKUSTOMIZE_WRITE',
  /** `kustomize build` / `kubectl kustomize` failed on an edited overlay (files restored) */
  RENDER: 'EKUSTOMIZE_RENDER',
  /** neither `kustomize` nor `kubectl` is on PATH */
  NO_RENDERER: 'EKUSTOMIZE_NO_RENDERER',
  /** --render: no rendered resource uses the image (files restored) */
  IMAGE_UNUSED: 'EKUSTOMIZE_IMAGE_UNUSED',
  /** the overlay directory or its kustomization file leads outside the work tree (or the clone) through a symlink */
  OUTSIDE: 'EKUSTOMIZE_OUTSIDE',
  /** flags that cannot be combined */
  FLAGS: 'EKUSTOMIZE_FLAGS',
} as const;

export type KustomizeErrorCode = (typeof KustomizeErrors)[keyof typeof KustomizeErrors];
