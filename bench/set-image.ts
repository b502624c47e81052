/**
 * set-image on 1,000 overlays, and the Helm edit target on 1,000 values files, side by side in one run, each
 * against one `sed -i` over the same files (the target of issue 17: ours at most 2× that).
 *
 * Kustomization rows (1,000 overlays, one image bumped in each):
 *   - ours: ONE `gitops-ci set-image` call with 1,000 --dir (the bundle, dist/gitops-ci.cjs);
 *   - one `sed -i` over the 1,000 files (the reference), and a shell loop of one `sed -i` per file;
 *   - the floor of a node process: `node -e 0` (start alone), and one node process that reads each file,
 *     replaces the tag and writes it atomically (temp + rename), nothing else: what no Node CLI can go under;
 *   - one process per overlay, what a `kustomize edit set image` loop costs: `gitops-ci set-image --dir X` per
 *     overlay, and `kubectl kustomize X` per overlay (the kustomize binary is absent here; kubectl's embedded
 *     kustomize renders rather than edits, so it stands in for "start a Go kustomize process and read the
 *     overlay", not for the edit itself).
 * Helm rows (1,000 values files, `image: {repository, tag}`, the tag bumped in each):
 *   - ours: one node process running the Helm edit target (src/edit/helm.ts, bundled by this bench with esbuild
 *     from the sources) over the 1,000 files: read, pin image.tag, then write them atomically as set-image
 *     writes a batch (src/core/fsutil.ts writeFilesAtomic: every temp file, then the renames in the thread pool);
 *   - the same target in this process (no start-up: the edit itself; written one by one, writeFileAtomicSync);
 *   - one `sed -i` over them; the node floor as above; one `gitops-ci pin --kind helm` per file (sampled).
 * The per-process loops run on a sample (BENCH_SAMPLE, default 100) and are scaled to 1,000 (labelled).
 *
 * Every row gives wall time and CPU time (user + sys of the process or its children), median of ROUNDS: on a
 * shared machine wall time counts the waits for a core, CPU time much less so. Every method's result is checked.
 *
 * Where the time goes (bench/results/set-image.txt has the figures): node's start, then loading the set-image
 * chunk of the bundle (scripts/build.mjs) without the `yaml` parser (src/kustomize/set-images.ts and fast-edit.ts
 * import it only for a file the line reader cannot answer), then per overlay a readdir, a read and the edit (a line
 * reader, src/edit/simple-yaml.ts; the same scan gives the resources for the unused-image check), all synchronous
 * (realpath once per parent directory, the git work tree looked up once per parent directory too, one stderr
 * write for the per-overlay lines); then every temp file is written and the renames run a few at a time in the
 * thread pool (a rename over an existing ext4 file starts its writeback: that is where sed -i waits too); then
 * the exit, without the heap teardown (src/cli.ts). A perf profile of the main thread (1,000 overlays) splits it
 * into about 45% JavaScript, 25% system calls (the openat of the reads and of the temp files most), 13% page
 * faults of the growing heap, 10% compiling (most of it node's and the bundle's start) and 6% garbage
 * collection; beside it, V8's background threads spend about 200 ms of CPU optimising the hot functions and the
 * thread pool about 80 ms renaming. That CPU is why ours costs 4-5× sed's CPU for 2× its wall time.
 * Tried and dropped (measured no better): reads and readdirs in the thread pool (a callback per small file costs
 * the main thread about what the synchronous call does: 1,000 reads with 120 µs of work each took 204-209 ms
 * against 164 synchronously), temp files written in the thread pool (54-84 ms against 59, and 1.5-2× the CPU),
 * and the unused-image scan run while the renames are in flight (the renames then wait for the scan to yield:
 * the main thread's idle time grew 13-28 ms). The Helm target pins without the parse too (src/edit/helm-fast.ts),
 * but its module imports `yaml`, so the Helm process still loads the parser.
 *
 * Run: npx tsx bench/set-image.ts   (BENCH_SAMPLE=10 and BENCH_ROUNDS=3 for a quick run)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { helm } from '../src/edit/helm.js';
import { writeFileAtomicSync } from '../src/core/fsutil.js';
import { CLI, childCpuMs, machine, median, ms, report, run, table } from './lib.js';

const N = 1000;
const SAMPLE = Number(process.env.BENCH_SAMPLE ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

run(process.execPath, ['scripts/build.mjs']);

const root = mkdtempSync(join(tmpdir(), 'gci-bench-setimage-'));
const overlays = Array.from({ length: N }, (_, i) => `overlays/o${String(i).padStart(4, '0')}`);
const TEXT = (i: number) => `# overlay ${i}
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # shared base
namespace: env-${i}

images:
  # the application
  - name: registry.example.com/team/app
    newTag: "1.0.0"   # bumped by CI
  - name: sidecar
    newTag: v2
`;
mkdirSync(join(root, 'base'), { recursive: true });
writeFileSync(join(root, 'base', 'kustomization.yaml'), 'resources:\n- deployment.yaml\n');
writeFileSync(
  join(root, 'base', 'deployment.yaml'),
  'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/team/app:0.0.1\n',
);
function reset(): void {
  overlays.forEach((o, i) => {
    mkdirSync(join(root, o), { recursive: true });
    writeFileSync(join(root, o, 'kustomization.yaml'), TEXT(i));
  });
}
function check(subset: string[], label: string): void {
  for (const f of subset) {
    const t = readFileSync(f, 'utf8');
    if (!t.includes('newTag: "1.0.1"   # bumped by CI\n')) throw new Error(`${label}: ${f} not edited:\n${t}`);
  }
}
const files = overlays.map((o) => join(root, o, 'kustomization.yaml'));
const EXPR = 'registry.example.com/team/app:1.0.1';
const SED = 's/newTag: "1.0.0"/newTag: "1.0.1"/';
const sample = overlays.slice(0, SAMPLE);

// the Helm values files live beside the overlays, in a tree of their own (set-image's walk does not see them)
const valuesFiles = overlays.map((o) => join(root, 'values', `${o.replace('overlays/', '')}.yaml`));
const VALUES = (i: number) => `# values for env ${i}
replicaCount: 2
image:
  repository: registry.example.com/team/app
  tag: "1.0.0" # bumped by CI
  pullPolicy: IfNotPresent
service:
  port: 8080
`;
function resetValues(): void {
  mkdirSync(join(root, 'values'), { recursive: true });
  valuesFiles.forEach((f, i) => writeFileSync(f, VALUES(i)));
}
function checkValues(subset: string[], label: string): void {
  for (const f of subset) if (!readFileSync(f, 'utf8').includes('  tag: "1.0.1" # bumped by CI\n')) throw new Error(`${label}: ${f} not edited`);
}
const SED_HELM = 's/^  tag: "1.0.0"/  tag: "1.0.1"/';

// the floor: one node process, read + replace + atomic write per file, nothing else
const floorScript = join(root, 'floor.cjs');
writeFileSync(
  floorScript,
  `const fs = require('fs'), path = require('path');
const [from, to, ...files] = process.argv.slice(2);
let n = 0;
for (const f of files) {
  const t = fs.readFileSync(f, 'utf8');
  const tmp = path.join(path.dirname(f), '.' + path.basename(f) + '.' + process.pid + '.' + n++ + '.tmp');
  fs.writeFileSync(tmp, t.replace(from, to), { flag: 'wx' });
  fs.renameSync(tmp, f);
}
`,
);
// ours for Helm values: the Helm target and the atomic write from the sources, bundled like the CLI's chunks
const helmScript = join(root, 'helm-pin.cjs');
const src = fileURLToPath(new URL('../src/', import.meta.url));
await build({
  stdin: {
    contents: `import { readFileSync } from 'node:fs';
import { helm } from './edit/helm.js';
import { writeFilesAtomic } from './core/fsutil.js';
const [target, value, ...files] = process.argv.slice(2);
const out = [];
for (const f of files) {
  const before = readFileSync(f, 'utf8');
  const r = helm.pin(before, f, { target, value });
  if (r.text !== before) out.push({ file: f, data: r.text });
}
writeFilesAtomic(out).then((w) => {
  if (w.failed) throw w.failed.error;
});
`,
    resolveDir: src,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: helmScript,
  logLevel: 'warning',
});

type Method = { name: string; n: number; fn: () => void; subset: string[]; inProcess?: boolean; reference?: boolean };
const kustomizeMethods: Method[] = [
  {
    name: `gitops-ci set-image, 1 call with ${N} --dir`,
    n: N,
    subset: files,
    fn: () => run(process.execPath, [CLI, 'set-image', ...overlays.flatMap((o) => ['--dir', o]), EXPR], { cwd: root }),
  },
  { name: `sed -i, 1 call over ${N} files`, n: N, subset: files, reference: true, fn: () => run('sed', ['-i', SED, ...files]) },
  { name: `node floor: read + atomic write, 1 process`, n: N, subset: files, fn: () => run(process.execPath, [floorScript, 'newTag: "1.0.0"', 'newTag: "1.0.1"', ...files]) },
  { name: `node -e 0 (process start alone)`, n: N, subset: [], fn: () => run(process.execPath, ['-e', '0']) },
  {
    name: `sh loop: sed -i per file (${N} processes)`,
    n: N,
    subset: files,
    fn: () => run('sh', ['-c', `for f in "$@"; do sed -i '${SED}' "$f"; done`, 'sh', ...files]),
  },
  {
    name: `gitops-ci set-image --dir X per overlay`,
    n: SAMPLE,
    subset: files.slice(0, SAMPLE),
    fn: () => {
      for (const o of sample) run(process.execPath, [CLI, 'set-image', '--dir', o, EXPR], { cwd: root });
    },
  },
  {
    name: `kubectl kustomize X per overlay (stand-in)`,
    n: SAMPLE,
    subset: [],
    fn: () => {
      for (const o of sample) {
        const r = spawnSync('kubectl', ['kustomize', o], { cwd: root, stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`kubectl kustomize ${o} exited with ${r.status}`);
      }
    },
  },
];

const helmMethods: Method[] = [
  { name: `Helm target, 1 node process over ${N} files`, n: N, subset: valuesFiles, fn: () => run(process.execPath, [helmScript, 'image.tag', '1.0.1', ...valuesFiles]) },
  { name: `sed -i, 1 call over ${N} files`, n: N, subset: valuesFiles, reference: true, fn: () => run('sed', ['-i', SED_HELM, ...valuesFiles]) },
  { name: `node floor: read + atomic write, 1 process`, n: N, subset: valuesFiles, fn: () => run(process.execPath, [floorScript, '  tag: "1.0.0"', '  tag: "1.0.1"', ...valuesFiles]) },
  {
    name: `Helm target in this process (no start-up)`,
    n: N,
    subset: valuesFiles,
    inProcess: true,
    fn: () => {
      for (const f of valuesFiles) {
        const before = readFileSync(f, 'utf8');
        const r = helm.pin!(before, f, { target: 'image.tag', value: '1.0.1' });
        if (r.text !== before) writeFileAtomicSync(f, r.text);
      }
    },
  },
  {
    name: `gitops-ci pin --kind helm per file`,
    n: SAMPLE,
    subset: valuesFiles.slice(0, SAMPLE),
    fn: () => {
      for (const f of valuesFiles.slice(0, SAMPLE)) run(process.execPath, [CLI, 'pin', '--kind', 'helm', '--file', f, '--target', 'image.tag', '--value', '1.0.1'], { cwd: root });
    },
  },
];

/** wall and CPU time (ms) of one run: the children's user+sys, or this process's for an in-process method */
function measure(m: Method): { wall: number; cpu: number } {
  const c0 = m.inProcess ? process.cpuUsage() : undefined;
  const k0 = childCpuMs();
  const t = process.hrtime.bigint();
  m.fn();
  const wall = Number(process.hrtime.bigint() - t) / 1e6;
  if (c0) {
    const c = process.cpuUsage(c0);
    return { wall, cpu: (c.user + c.system) / 1000 };
  }
  return { wall, cpu: childCpuMs() - k0 };
}

const load0 = loadavg()[0]!;
function runAll(methods: Method[], resetFn: () => void, checkFn: (s: string[], l: string) => void) {
  const samples = methods.map(() => [] as Array<{ wall: number; cpu: number }>);
  for (let round = 0; round < ROUNDS; round++) {
    // interleaved, so that a burst of load on the machine hits every method alike
    methods.forEach((m, j) => {
      if (round > 0 && m.n < N) return; // the slow per-process loops run once
      resetFn();
      samples[j].push(measure(m));
      if (m.subset.length) checkFn(m.subset, m.name);
    });
  }
  return methods.map((m, j) => ({ m, wall: median(samples[j].map((s) => s.wall)), cpu: median(samples[j].map((s) => s.cpu)) }));
}
const kust = runAll(kustomizeMethods, reset, check);
const helmRows = runAll(helmMethods, resetValues, checkValues);
const load1 = loadavg()[0]!;
rmSync(root, { recursive: true, force: true });

function section(title: string, rows: ReturnType<typeof runAll>): string[] {
  const ref = rows.find((r) => r.m.reference)!;
  const lines = rows.map(({ m, wall, cpu }) => {
    const k = N / m.n;
    return [
      m.name,
      m.n < N ? `${ms(wall)} for ${m.n}` : ms(wall),
      m.n < N ? `≈ ${ms(wall * k)} (×${k})` : ms(wall),
      m.n < N ? `≈ ${ms(cpu * k)}` : ms(cpu),
      `${((wall * k) / ref.wall).toFixed(1)}×`,
      `${((cpu * k) / ref.cpu).toFixed(1)}×`,
    ];
  });
  return [title, table([['method', 'measured', `wall, ${N}`, `CPU, ${N}`, 'wall/sed', 'CPU/sed'], ...lines])];
}
const ratio = (rows: ReturnType<typeof runAll>, i: number) => {
  const ref = rows.find((r) => r.m.reference)!;
  return `${ms(rows[i].wall)} / ${ms(rows[i].cpu)} against ${ms(ref.wall)} / ${ms(ref.cpu)}: ${(rows[i].wall / ref.wall).toFixed(2)}× wall, ${(rows[i].cpu / ref.cpu).toFixed(2)}× CPU`;
};
report(
  'set-image',
  [
    `bench/set-image: ${N} files, one image bumped in each (${machine()})`,
    `median of ${ROUNDS} rounds (interleaved) for the whole-set methods; per-process loops measured once on ${SAMPLE} files and scaled`,
    `CPU = user + sys of the process(es); load average (1 min) at start ${load0.toFixed(2)}, at end ${load1.toFixed(2)}`,
    ...(process.env.NODE_EXTRA_CA_CERTS ? ['NODE_EXTRA_CA_CERTS is set: every node process parses that CA bundle at start (tens of ms of CPU each); unset it to measure what a runner without it pays'] : []),
    '',
    ...section(`Kustomize overlays (${N})`, kust),
    '',
    ...section(`Helm values files (${N})`, helmRows),
    '',
    'Side by side, ours against one sed -i over the same files (wall / CPU; target: at most 2×):',
    `  kustomization: set-image, 1 call        ${ratio(kust, 0)}`,
    `  Helm values:   Helm target, 1 process   ${ratio(helmRows, 0)}`,
    `  the floor, a node process that only reads and writes: ${ratio(kust, 2)}`,
    '',
    'kubectl kustomize renders the overlay (reads base too) instead of editing; the kustomize binary is not installed here,',
    'so it stands in for the cost of one Go kustomize process per overlay, not for `kustomize edit set image` itself.',
  ].join('\n'),
);
