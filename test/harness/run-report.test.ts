/**
 * `make test`'s runner, scripts/run-tests.mjs, on two fixture files (test/fixtures/harness/run-report/): when a
 * test fails it says which services the run started and where their logs are (and keeps those logs), with the
 * closing line `Tests: N passed, N failed` last; when all pass it prints no such report and leaves no run dir.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmp } from '../helpers/services.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONFIG = 'test/fixtures/harness/run-report/vitest.config.ts';
const FAILING = 'test/fixtures/harness/run-report/failing.fixture.ts';

/** scripts/run-tests.mjs as `make test` runs it, in a fresh environment (none of this run's vitest state) with its own TMPDIR */
function runTests(args: string[]): { code: number; out: string; lines: string[]; tmpDir: string } {
  const tmpDir = tmp('gci-rr-');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'GITOPS_TEST_RUN_DIR' && k !== 'NODE_OPTIONS'));
  const r = spawnSync(process.execPath, ['scripts/run-tests.mjs', '--config', CONFIG, ...args], {
    cwd: ROOT,
    env: { ...env, TMPDIR: tmpDir, GITOPS_SKIP_BUILD: '1', NO_COLOR: '1', FORCE_COLOR: '0' },
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const out = `${r.stdout}${r.stderr}`;
  return { code: r.status ?? -1, out, lines: r.stdout.trimEnd().split('\n'), tmpDir };
}

describe('scripts/run-tests.mjs', () => {
  it('on a failure, names the services the run started and where their logs are, and keeps the logs', () => {
    const r = runTests([]);
    try {
      expect(r.code, r.out).toBe(1);
      expect(r.lines.at(-1)).toBe('Tests: 1 passed, 1 failed');
      const runDirs = readdirSync(r.tmpDir).filter((e) => e.startsWith('gci-run-'));
      expect(runDirs).toHaveLength(1);
      const runDir = join(r.tmpDir, runDirs[0]!);
      // the count covers every service (the passing file's git server too); the detail, the failed file's
      expect(r.out).toMatch(/Services this run started or used: .*docker-registry ×1/);
      expect(r.out).toMatch(/Services this run started or used: .*git smart-HTTP ×2/);
      expect(r.out).toMatch(/Services this run started or used: .*sshd ×1/);
      expect(r.out).toContain(`their logs are kept in ${runDir}.`);
      const entries = [...r.out.matchAll(/^ {2}(docker-registry|git smart-HTTP|sshd)\s+(\S+) \(pid \d+\) {2}started by (\S+)\n\s+log: (\S+)/gm)];
      expect(entries.map((m) => m[1]).sort()).toEqual(['docker-registry', 'git smart-HTTP', 'sshd']);
      for (const [, , at, file, log] of entries) {
        expect(at).toMatch(/^(http|ssh):\/\/127\.0\.0\.1:\d+$/);
        expect(file).toBe(FAILING);
        expect(log!.startsWith(join(runDir, 'logs') + '/')).toBe(true);
        expect(existsSync(log!), log).toBe(true);
      }
      expect(r.out).toContain(`1 more, started by files that passed: ${join(runDir, 'services.jsonl')}`);
      // the engine the failed file used: the machine's or DOCKER_HOST's (reused, its log is not ours), or the
      // run's own dockerd, whose log is kept in the run dir
      const engine = /^ {2}dockerd\s+(unix:\/\/\S+)(?: \(pid \d+\))? {2}(used by|shared by the run, started for) (\S+)\n\s+log: (\S+)/m.exec(r.out);
      expect(engine, r.out).not.toBeNull();
      expect(engine![3]).toBe(FAILING);
      if (engine![2] === 'used by') expect(engine![4]).toBe('-');
      else expect(existsSync(engine![4]!)).toBe(true);
      // the run dir keeps the logs and the list (and the shared dockerd's log, without its data), nothing else
      expect(readdirSync(runDir).filter((e) => e !== 'd').sort()).toEqual(['logs', 'services.jsonl']);
      if (existsSync(join(runDir, 'd'))) expect(readdirSync(join(runDir, 'd'))).toEqual(['dockerd.log']);
    } finally {
      rmSync(r.tmpDir, { recursive: true, force: true });
    }
  }, 180_000);

  it('when all pass, prints no services report and removes the run dir', () => {
    const r = runTests(['passing']);
    try {
      expect(r.code, r.out).toBe(0);
      expect(r.lines.at(-1)).toBe('Tests: 1 passed, 0 failed');
      expect(r.out).not.toContain("Services this run");
      expect(readdirSync(r.tmpDir).filter((e) => e.startsWith('gci-run-'))).toEqual([]);
    } finally {
      rmSync(r.tmpDir, { recursive: true, force: true });
    }
  }, 180_000);
});
