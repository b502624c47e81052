/**
 * Error model shared by every command.
 *
 * A command throws only GitopsError. The kind decides the exit code; the code (E<AREA>_<PROBLEM>)
 * names the failure for docs and tests; `where` says which file, URL or object failed; `hint` says
 * what to do about it. Messages are masked by the logger before they are printed.
 */
import type { ErrorCode } from './error-codes.js';

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  auth: 3,
  timeout: 4,
  transient: 75,
} as const;

export type ErrorKind = 'failed' | 'usage' | 'auth' | 'timeout' | 'transient';

export interface ErrorInit {
  kind: ErrorKind;
  code: ErrorCode;
  message: string;
  where?: string;
  hint?: string;
  cause?: unknown;
  /** extra lines shown under the message (e.g. the last lines of a build step) */
  details?: string[];
}

export class GitopsError extends Error {
  readonly kind: ErrorKind;
  readonly code: ErrorCode;
  readonly where?: string;
  readonly hint?: string;
  readonly details?: string[];

  constructor(init: ErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'GitopsError';
    this.kind = init.kind;
    this.code = init.code;
    this.where = init.where;
    this.hint = init.hint;
    this.details = init.details;
  }

  get exitCode(): number {
    return ExitCode[this.kind];
  }
}

/** `code` is one of the catalogues' codes (src/core/error-codes.ts): a code that is in none does not type check */
type Maker = (code: ErrorCode, message: string, opts?: Omit<ErrorInit, 'kind' | 'code' | 'message'>) => GitopsError;
const maker = (kind: ErrorKind): Maker => (code, message, opts = {}) => new GitopsError({ kind, code, message, ...opts });

/** Shorthands: `throw fail.usage('EKUSTOMIZE_NO_IMAGE', 'no image given', { hint: '…' })`. */
export const fail = {
  failed: maker('failed'),
  usage: maker('usage'),
  auth: maker('auth'),
  timeout: maker('timeout'),
  transient: maker('transient'),
};

export function isGitopsError(e: unknown): e is GitopsError {
  return e instanceof GitopsError;
}

/**
 * Node system errors that mean "try again later": network resets, refused connections, DNS failures (a name
 * that does not resolve now is, in CI, most often a resolver or network hiccup: git and Argo CD treat it so).
 */
const TRANSIENT_ERRNO = new Set(['ENOTFOUND', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);
export function isTransientErrno(e: unknown): boolean {
  const code = (e as { code?: string; cause?: { code?: string } } | undefined)?.code ?? (e as { cause?: { code?: string } } | undefined)?.cause?.code;
  return typeof code === 'string' && TRANSIENT_ERRNO.has(code);
}
