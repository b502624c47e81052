/**
 * Runs once per `vitest run`: builds the CLI bundle that end-to-end tests execute, and stops any service the
 * run started lazily (dockerd is shared by all test files; see services.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default async function setup(): Promise<() => Promise<void>> {
  if (!process.env.GITOPS_SKIP_BUILD) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const runDir = mkdtempSync(join(tmpdir(), 'gci-run-'));
  process.env.GITOPS_TEST_RUN_DIR = runDir;
  return async () => {
    const { stopSharedServices } = await import('./services.js');
    await stopSharedServices(runDir);
    rmSync(runDir, { recursive: true, force: true });
  };
}
