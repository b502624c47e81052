/**
 * Error catalogue of the edit layer (src/edit/**: the targets, `gitops-ci pin`, the edit step of set-image,
 * bump, promote and preview for files other than kustomizations). Every refusal is a usage error (exit 2)
 * naming file:line, why, and what to pass instead; docs/commands/pin.md lists the codes.
 */
export const EditErrors = {
  /** the file is not valid YAML */
  YAML: 'EEDIT_YAML',
  /** --kind names no target */
  KIND: 'EEDIT_KIND',
  /** --target does not follow the grammar of the kind */
  BAD_TARGET: 'EEDIT_BAD_TARGET',
  /** --value is neither a tag nor a digest */
  BAD_VALUE: 'EEDIT_BAD_VALUE',
  /** the target (key, container, parameter, image) is not in the file; nothing is invented */
  NOT_FOUND: 'EEDIT_TARGET_NOT_FOUND',
  /** the target matches more than one place */
  AMBIGUOUS: 'EEDIT_AMBIGUOUS',
  /** the target is reached through, or shared by, an anchor/alias (or a merge key) */
  ANCHOR: 'EEDIT_ANCHOR',
  /** the current value is a template expression ({{ … }}, ${…}) */
  TEMPLATE: 'EEDIT_TEMPLATE',
  /** the target is not a string scalar (a map, a list, a block scalar, a tagged value) */
  NOT_SCALAR: 'EEDIT_NOT_SCALAR',
  /** the new value would be read back as another type (a Helm --set parameter without forceString) */
  TYPE: 'EEDIT_TYPE',
  /** a tag-only change on an image pinned by a digest (the change would not change what runs) */
  DIGEST_PINNED: 'EEDIT_DIGEST_PINNED',
  /** a flag is missing or flags cannot be combined */
  FLAGS: 'EEDIT_FLAGS',
  /** the file does not exist or is not a regular file */
  NO_FILE: 'EEDIT_NO_FILE',
  /** the file cannot be read or written */
  IO: 'EEDIT_IO',
  /** the file leads outside the work tree through a symlink */
  OUTSIDE: 'EEDIT_OUTSIDE',
} as const;

export type EditErrorCode = (typeof EditErrors)[keyof typeof EditErrors];
