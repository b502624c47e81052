// Runs the whole vitest suite (arguments are passed on to vitest: a file filter, `-t NAME`, ...) and prints a
// plain closing line `Tests: N passed, N failed` that any CI reader understands, always last. Exits with
// vitest's code.
//
// It owns the run dir (GITOPS_TEST_RUN_DIR: the shared dockerd, every service's log in logs/, the list of the
// services started in services.jsonl, the shared dockerd in d/; see test/helpers/services.ts). When a test failed, it prints which
// services the run started, for the failed files in full, and where their logs are, and keeps the logs (the
// engine's data root is removed); when all passed, it removes the run dir. TMPDIR is the run dir's tmp/, so that the
// temp dirs of the tests go with it.
import { $ } from 'zx';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const runDir = mkdtempSync(join(tmpdir(), 'gci-run-'));
const report = join(runDir, 'report.json');
// every temp dir a test makes (and the CLI runs it starts) lands in the run dir, so a run leaves nothing in $TMPDIR:
// before, each run left about 2,000 of them behind
const runTmp = join(runDir, 'tmp');
mkdirSync(runTmp);
const r = await $({ stdio: 'inherit', nothrow: true, env: { ...process.env, GITOPS_TEST_RUN_DIR: runDir, TMPDIR: runTmp } })`npx vitest run --reporter=default --reporter=json --outputFile.json=${report} ${process.argv.slice(2)}`;

let line = '';
let failedFiles = null; // null: vitest gave no report, so every service is of interest
try {
  const j = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
  line = `Tests: ${j.numPassedTests} passed, ${j.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`;
  failedFiles = (j.testResults ?? []).filter((t) => t.status === 'failed').map((t) => relative(process.cwd(), t.name));
  if (j.numTotalTests === 0) {
    console.error('no test ran');
    process.exitCode = 1;
  }
} catch {
  line = 'Tests: 0 passed, 1 failed';
}
process.exitCode = process.exitCode || (r.exitCode ?? 1);

if (process.exitCode === 0) {
  rmSync(runDir, { recursive: true, force: true });
} else {
  servicesReport(failedFiles);
}
console.log(line);

/** which services the run started and where their logs are; the run dir keeps only the logs and the list */
function servicesReport(failed) {
  const listFile = join(runDir, 'services.jsonl');
  const all = existsSync(listFile)
    ? readFileSync(listFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  // an engine that was reused is recorded by every file that asked for it: once is enough
  const seen = new Set();
  const services = all.filter((s) => (s.pid ? true : !seen.has(s.at) && seen.add(s.at)));
  // keep the logs, drop the rest (a dockerd data root can be large); the teardown has stopped that dockerd
  for (const e of readdirSync(runDir)) {
    if (e === 'logs' || e === 'services.jsonl') continue;
    if (e === 'd') {
      // the shared dockerd's dir: its log stays, its data root goes
      for (const f of readdirSync(join(runDir, 'd'))) if (f !== 'dockerd.log') tryRm(join(runDir, 'd', f));
    } else tryRm(join(runDir, e));
  }
  const out = [''];
  if (services.length === 0) {
    out.push(`Services: this run started none (run dir ${runDir}).`);
  } else {
    const counts = new Map();
    for (const s of services) counts.set(s.service, (counts.get(s.service) ?? 0) + 1);
    out.push(`Services this run started or used: ${[...counts].map(([k, n]) => `${k} ×${n}`).join(', ')}; their logs are kept in ${runDir}.`);
    // every engine is shown: the run's shared dockerd serves all files, a reused one is not ours
    const shown = services.filter((s) => failed === null || !s.file || failed.includes(s.file) || s.service === 'dockerd');
    out.push(failed === null ? 'All of them (vitest gave no report):' : 'Those of the failed test files, and the Docker engines:');
    const sharedDir = join(runDir, 'd');
    for (const s of shown) {
      const who = !s.pid ? `used by ${s.file ?? 'the run'}` : s.log?.startsWith(sharedDir) ? `shared by the run, started for ${s.file ?? '?'}` : `started by ${s.file ?? '?'}`;
      out.push(`  ${s.service.padEnd(15)} ${s.at}${s.pid ? ` (pid ${s.pid})` : ''}  ${who}`);
      const gone = s.log && !existsSync(s.log) ? ' (removed with its test\'s own directory)' : '';
      out.push(`  ${''.padEnd(15)} log: ${s.log ?? '-'}${gone}${s.note ? `  (${s.note})` : ''}`);
    }
    if (shown.length < services.length) out.push(`  ${services.length - shown.length} more, started by files that passed: ${listFile}`);
  }
  console.log(out.join('\n'));
}

function tryRm(p) {
  try {
    rmSync(p, { recursive: true, force: true });
  } catch (e) {
    console.error(`could not remove ${p}: ${e.message}`);
  }
}
