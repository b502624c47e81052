/**
 * The contract files the tests check against live in the shared reference folder, which sits beside the
 * checkout (../shared, as in CI). GITOPS_SHARED_DIR points elsewhere. A missing folder is a clear error,
 * not an ENOENT deep inside a test.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function contractFile(name: string): string {
  const dir = process.env.GITOPS_SHARED_DIR ?? resolve(root, '../shared');
  const f = join(dir, 'contracts', name);
  if (!existsSync(f)) {
    throw new Error(`contract file ${f} not found: the tests read GitLab's CI schema, Argo CD's swagger and kustomize's cases from the shared folder beside the checkout (../shared); put it there or set GITOPS_SHARED_DIR`);
  }
  return f;
}
