/**
 * The errors of the bundle's chunk runtime (scripts/chunk-runtime.cjs): the CLI ships as two files of one build,
 * gitops-ci.cjs and gitops-ci.chunks (the commands' code, loaded when a command runs; scripts/build.mjs). The
 * runtime is plain JavaScript inside the bundle; its failures are made here so that they are GitopsErrors with
 * catalogued codes, printed and mapped to an exit code like any other.
 */
import { CoreErrors } from './catalogue.js';
import { fail, type GitopsError } from './errors.js';

const BOTH = 'gitops-ci.cjs and gitops-ci.chunks are one build: copy or install both, side by side in one directory (`node scripts/build.mjs` writes both to dist/; the npm package and the runner image carry both)';

/** `chunks`: the path looked for, beside the real path of the bundle (symlinks resolved) */
export function chunksMissing(chunks: string, bundle: string, cause: unknown): GitopsError {
  const why = (cause as NodeJS.ErrnoException | undefined)?.code;
  return fail.failed(CoreErrors.BUNDLE_CHUNKS_MISSING, `the command code of gitops-ci cannot be read: ${why === 'ENOENT' ? 'the file is missing' : (cause as Error)?.message ?? String(cause)}`, {
    where: `${chunks} (beside ${bundle})`,
    hint: BOTH,
    cause,
  });
}

/** the file's first line is not the one this bundle was built with, or the file ends early: `detail` says which */
export function chunksMismatch(chunks: string, bundle: string, detail: string): GitopsError {
  return fail.failed(CoreErrors.BUNDLE_CHUNKS_MISMATCH, `the command code of gitops-ci is not of the same build as the CLI: ${detail}`, {
    where: `${chunks} (beside ${bundle})`,
    hint: `${BOTH}. If a build was writing them just then, run the command again`,
  });
}
