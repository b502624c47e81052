/**
 * Runs once per `vitest run`: builds the CLI bundle that end-to-end tests execute, and stops any service the
 * run started lazily (dockerd is shared by all test files; see services.ts).
 *
 * The run dir (GITOPS_TEST_RUN_DIR) holds the shared dockerd, every service's log (logs/) and the list of the
 * services started (services.jsonl). When the caller gives one (scripts/run-tests.mjs, i.e. `make test`), the
 * caller owns it: it reports the services and their logs when a test failed, then cleans it. Otherwise it is
 * made here and removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default async function setup(): Promise<() => Promise<void>> {
  if (!process.env.GITOPS_SKIP_BUILD) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const given = process.env.GITOPS_TEST_RUN_DIR;
  const runDir = given || mkdtempSync(join(tmpdir(), 'gci-run-'));
  process.env.GITOPS_TEST_RUN_DIR = runDir;
  return async () => {
    const { stopSharedServices } = await import('./services.js');
    await stopSharedServices(runDir);
    if (!given) rmSync(runDir, { recursive: true, force: true });
  };
}
