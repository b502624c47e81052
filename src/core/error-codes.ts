/**
 * Every error code the CLI can raise: the union of the area catalogues (src/<area>/errors.ts) and the core one
 * (src/core/catalogue.ts). `fail.*` (src/core/errors.ts) takes only these, so a code that is in no catalogue does
 * not type check, and docs/errors.md's table, generated from the same catalogues (scripts/errors-doc.mjs), lists
 * every code there is. A new area adds its catalogue here, once.
 *
 * Type-only imports: nothing of the areas is loaded with the core (the CLI's start-up stays small).
 */
import type { ArgoErrors } from '../argocd/errors.js';
import type { BumpErrors } from '../bump/errors.js';
import type { EditErrors } from '../edit/errors.js';
import type { GIT_ERRORS } from '../git/errors.js';
import type { GitlabErrors } from '../gitlab/errors.js';
import type { KustomizeErrors } from '../kustomize/errors.js';
import type { PreviewErrors } from '../preview/errors.js';
import type { PromoteErrors } from '../promote/errors.js';
import type { REGISTRY_ERROR_CODES } from '../registry/errors.js';
import type { RenderErrors } from '../render/errors.js';
import type { ReviewErrors } from '../review/errors.js';
import type { RollbackErrors } from '../rollback/errors.js';
import type { StatusErrors } from '../status/errors.js';
import type { WritebackErrors } from '../writeback/errors.js';
import type { CoreErrors } from './catalogue.js';

type Codes<T> = T[keyof T];

export type ErrorCode =
  | Codes<typeof ArgoErrors>
  | Codes<typeof BumpErrors>
  | Codes<typeof EditErrors>
  | keyof typeof GIT_ERRORS
  | Codes<typeof GitlabErrors>
  | Codes<typeof KustomizeErrors>
  | Codes<typeof PreviewErrors>
  | Codes<typeof PromoteErrors>
  | (typeof REGISTRY_ERROR_CODES)[number]
  | Codes<typeof RenderErrors>
  | Codes<typeof ReviewErrors>
  | Codes<typeof RollbackErrors>
  | Codes<typeof StatusErrors>
  | Codes<typeof WritebackErrors>
  | Codes<typeof CoreErrors>;
