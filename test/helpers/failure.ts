/** The GitopsError a call throws (or a promise rejects with); anything else, or no failure, fails the test. */
import { isGitopsError, type GitopsError } from '../../src/core/errors.js';

export function thrown(fn: () => unknown): GitopsError {
  try {
    fn();
  } catch (e) {
    if (isGitopsError(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

export async function rejected(p: Promise<unknown>): Promise<GitopsError> {
  try {
    await p;
  } catch (e) {
    if (isGitopsError(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}
