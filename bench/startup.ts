/**
 * Start-up cost of the bundled CLI: `gitops-ci --version` and `gitops-ci --help` against `node -e 0`, the
 * floor for any Node program. Side by side, interleaved, in one run.
 */
import { CLI, machine, median, ms, report, run, table, timeIt } from './lib.js';

run(process.execPath, ['scripts/build.mjs']);
const N = 30;
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
report(
  'startup',
  [`bench/startup: ${N} interleaved runs each (${machine()})`, '', table([['command', 'median', 'max', 'vs floor', '× floor'], ...cases.map(([n], j) => [n, ms(median(samples[j]!)), ms(Math.max(...samples[j]!)), `+${ms(median(samples[j]!) - floor)}`, `${(median(samples[j]!) / floor).toFixed(2)}×`])])].join('\n'),
);
