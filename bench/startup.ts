/**
 * Start-up cost of the bundled CLI: `gitops-ci --version` and `gitops-ci --help` against `node -e 0`, the
 * floor for any Node program, and two commands' --help, which load the command's code from the second file of
 * the bundle (dist/gitops-ci.chunks: scripts/build.mjs). Side by side, interleaved, in one run.
 *
 *   npx tsx bench/startup.ts                       30 rounds (STARTUP_RUNS=N for another count)
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/startup.ts   as in the runner image, which does not set it
 *
 * Each round runs every case once, in turn; "× floor" is the median of the per-round ratios (each case against
 * the floor of its own round, so a slower or faster spell of the machine moves both), with the middle half of
 * those ratios beside it; "median" is the median of the times themselves.
 */
import { statSync } from 'node:fs';
import { CLI, machine, median, ms, report, run, table, timeIt } from './lib.js';

run(process.execPath, ['scripts/build.mjs']);
const N = Number(process.env.STARTUP_RUNS ?? 30);
if (!Number.isInteger(N) || N < 1) throw new Error(`STARTUP_RUNS must be a whole number of rounds, 1 or more (got ${process.env.STARTUP_RUNS})`);
const cases: Array<[string, string[]]> = [
  ['node -e 0 (floor)', ['-e', '0']],
  ['gitops-ci --version', [CLI, '--version']],
  ['gitops-ci --help', [CLI, '--help']],
  ['gitops-ci set-image --help (loads the command)', [CLI, 'set-image', '--help']],
  ['gitops-ci bump --help (loads the command)', [CLI, 'bump', '--help']],
];
const samples = cases.map(() => [] as number[]);
for (let i = 0; i < N; i++) cases.forEach(([, args], j) => samples[j]!.push(timeIt(() => run(process.execPath, args))));
const floor = median(samples[0]!);
/** the per-round ratios of case j to the floor: median and the middle half */
function ratios(j: number): { mid: number; lo: number; hi: number } {
  const r = samples[j]!.map((t, i) => t / samples[0]![i]!).sort((a, b) => a - b);
  const at = (q: number) => r[Math.min(r.length - 1, Math.max(0, Math.round(q * (r.length - 1))))]!;
  return { mid: median(r), lo: at(0.25), hi: at(0.75) };
}
const kb = (f: string) => `${Math.round(statSync(f).size / 1024)} KB`;
report(
  'startup',
  [
    `bench/startup: ${N} interleaved rounds (${machine()})`,
    `NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'set (every node start, the floor included, parses that CA bundle; the runner image does not set it)' : 'unset, as in the runner image'}`,
    `bundle: dist/gitops-ci.cjs ${kb(CLI)}, read at every start; dist/gitops-ci.chunks ${kb(CLI.replace(/\.cjs$/, '.chunks'))}, of which a command reads its own code and the shared code it imports`,
    '',
    table([
      ['command', 'median', 'max', 'vs floor', '× floor', 'middle half'],
      ...cases.map(([n], j) => {
        const r = ratios(j);
        return [n, ms(median(samples[j]!)), ms(Math.max(...samples[j]!)), `${median(samples[j]!) < floor ? '-' : '+'}${ms(Math.abs(median(samples[j]!) - floor))}`, `${r.mid.toFixed(2)}×`, `${r.lo.toFixed(2)}-${r.hi.toFixed(2)}×`];
      }),
    ]),
  ].join('\n'),
);
