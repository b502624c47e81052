/**
 * Error catalogue of the codes every command shares (src/core/): its outputs and its secrets. The areas keep
 * theirs in src/<area>/errors.ts; docs/errors.md's table of every code is generated from all of them
 * (scripts/errors-doc.mjs).
 */
export const CoreErrors = {
  /** --dotenv: a variable name GitLab's dotenv report does not accept (2) */
  DOTENV_KEY: 'EDOTENV_KEY',
  /** --dotenv: a value with a line break, which GitLab's dotenv report rejects (1) */
  DOTENV_VALUE: 'EDOTENV_VALUE',
  /** --dotenv: its directory does not exist or cannot be written, or it names something else than a file; checked before the command acts (2) */
  DOTENV_PATH: 'EDOTENV_PATH',
  /** --dotenv: the existing file cannot be read (1) */
  DOTENV_READ: 'EDOTENV_READ',
  /** --dotenv: the file cannot be written (1) */
  DOTENV_WRITE: 'EDOTENV_WRITE',
  /** a secret (token, password, credentials in a URL) holds a control or non-Latin-1 character: refused, never shown (2) */
  SECRET_INVALID: 'ESECRET_INVALID',
  /** bump, promote: GitLab sets CI_DEPLOY_FREEZE (a deploy freeze is in effect); nothing is touched (1) */
  FREEZE_ACTIVE: 'EFREEZE_ACTIVE',
  /** the bundle's command chunks file (gitops-ci.chunks beside the real gitops-ci.cjs) is missing or unreadable (1) */
  BUNDLE_CHUNKS_MISSING: 'EBUNDLE_CHUNKS_MISSING',
  /** the command chunks file beside gitops-ci.cjs is of another build, or cut short (1) */
  BUNDLE_CHUNKS_MISMATCH: 'EBUNDLE_CHUNKS_MISMATCH',
  /** a numeric tuning variable (GITOPS_RETRY_ATTEMPTS, GITOPS_GITLAB_MAX_PAGES, GITOPS_RENDER_MEMORY_MB, GITOPS_RENDER_MAX_MB, GITOPS_SETIMAGE_CONCURRENCY) is not a whole number within its range (2) */
  NUMERIC_VARIABLE: 'EENV_NUMBER',
} as const;
