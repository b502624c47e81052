/**
 * set-image on 1,000 overlays, side by side in one run:
 *   - ours: ONE `gitops-ci set-image` call with 1,000 --dir (the bundle, dist/gitops-ci.cjs);
 *   - the I/O floor: one `sed -i` over the 1,000 files, and a shell loop of one `sed -i` per file;
 *   - one process per overlay, what a `kustomize edit set image` loop costs: `gitops-ci set-image --dir X` per
 *     overlay, and `kubectl kustomize X` per overlay (the kustomize binary is absent here; kubectl's embedded
 *     kustomize renders rather than edits, so it stands in for "start a Go kustomize process and read the
 *     overlay", not for the edit itself).
 * The per-process loops run on a sample of overlays and are scaled to 1,000 (labelled), to keep the bench
 * under ~2 minutes. Every method's result is checked.
 *
 * Helm values rows: 1,000 values files (`image: {repository, tag}`), one tag bumped in each: one `sed -i` over
 * them, the Helm edit target over them in this process (src/edit/helm.ts: read, edit, write; no process start),
 * and one `gitops-ci pin --kind helm` per file (sampled and scaled like the loops above).
 *
 * The target (issue 17): ours at most 2× the one-`sed -i` floor. Most of the time was the `yaml` parser's
 * allocations (a full parse per overlay, twice: the edit and the unused-image check) and an asynchronous
 * realpath/readdir/readFile per overlay through libuv's thread pool; set-image now reads plain block YAML with a
 * line reader (src/edit/simple-yaml.ts, with the full parser as fallback) and looks up files synchronously, once.
 *
 * Run: npx tsx bench/set-image.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync as readText, writeFileSync as writeText } from 'node:fs';
import { helm } from '../src/edit/helm.js';
import { CLI, machine, median, ms, report, run, table, timeIt } from './lib.js';

const N = 1000;
const SAMPLE = Number(process.env.BENCH_SAMPLE ?? 100);
const ROUNDS = 3;

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
  for (const o of subset) {
    const t = readFileSync(join(root, o, 'kustomization.yaml'), 'utf8');
    if (!t.includes('    newTag: "1.0.1"   # bumped by CI\n')) throw new Error(`${label}: ${o} not edited:\n${t}`);
  }
}
const files = overlays.map((o) => join(root, o, 'kustomization.yaml'));
const EXPR = 'registry.example.com/team/app:1.0.1';
const SED = 's/newTag: "1.0.0"/newTag: "1.0.1"/';
const sample = overlays.slice(0, SAMPLE);

const VALUES = (i: number) => `# values for env ${i}
replicaCount: 2
image:
  repository: registry.example.com/team/app
  tag: "1.0.0" # bumped by CI
  pullPolicy: IfNotPresent
service:
  port: 8080
`;
const valuesFiles = overlays.map((o) => join(root, o, 'values.yaml'));
function resetValues(): void {
  valuesFiles.forEach((f, i) => writeFileSync(f, VALUES(i)));
}
function checkValues(subset: string[], label: string): void {
  for (const f of subset) if (!readFileSync(f, 'utf8').includes('  tag: "1.0.1" # bumped by CI\n')) throw new Error(`${label}: ${f} not edited`);
}

type Method = { name: string; n: number; fn: () => void; subset: string[] };
const methods: Method[] = [
  {
    name: `gitops-ci set-image, 1 call with ${N} --dir`,
    n: N,
    subset: overlays,
    fn: () => run(process.execPath, [CLI, 'set-image', ...overlays.flatMap((o) => ['--dir', o]), EXPR], { cwd: root }),
  },
  { name: `sed -i, 1 call over ${N} files (I/O floor)`, n: N, subset: overlays, fn: () => run('sed', ['-i', SED, ...files]) },
  {
    name: `sh loop: sed -i per file (${N} processes)`,
    n: N,
    subset: overlays,
    fn: () => run('sh', ['-c', `for f in "$@"; do sed -i '${SED}' "$f"; done`, 'sh', ...files]),
  },
  {
    name: `gitops-ci set-image --dir X per overlay`,
    n: SAMPLE,
    subset: sample,
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
  { name: `Helm values: sed -i, 1 call over ${N} files`, n: N, subset: valuesFiles, fn: () => run('sed', ['-i', SED.replace(/newTag/g, 'tag'), ...valuesFiles]) },
  {
    name: `Helm values: edit target in-process over ${N} files (no start-up)`,
    n: N,
    subset: valuesFiles,
    fn: () => {
      for (const f of valuesFiles) {
        const before = readText(f, 'utf8');
        const r = helm.pin!(before, f, { target: 'image.tag', value: '1.0.1' });
        if (r.text !== before) writeText(f, r.text);
      }
    },
  },
  {
    name: `Helm values: gitops-ci pin --kind helm per file`,
    n: SAMPLE,
    subset: valuesFiles.slice(0, SAMPLE),
    fn: () => {
      for (const f of valuesFiles.slice(0, SAMPLE)) run(process.execPath, [CLI, 'pin', '--kind', 'helm', '--file', f, '--target', 'image.tag', '--value', '1.0.1'], { cwd: root });
    },
  },
];

const load0 = loadavg()[0];
const samples = methods.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  methods.forEach((m, j) => {
    if (round > 0 && m.n < N) return; // the slow per-process loops run once
    reset();
    samples[j].push(timeIt(m.fn));
    if (m.subset.length) check(m.subset, m.name);
  });
}
reset();
const helmSamples = helmMethods.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  helmMethods.forEach((m, j) => {
    if (round > 0 && m.n < N) return;
    resetValues();
    helmSamples[j].push(timeIt(m.fn));
    checkValues(m.subset, m.name);
  });
}
rmSync(root, { recursive: true, force: true });

const ours = median(samples[0]);
const all = [...methods, ...helmMethods];
const allSamples = [...samples, ...helmSamples];
const rows = all.map((m, j) => {
  const t = median(allSamples[j]);
  const for1000 = (t * N) / m.n;
  return [m.name, m.n < N ? `${ms(t)} for ${m.n}` : ms(t), m.n < N ? `≈ ${ms(for1000)} (×${N / m.n})` : ms(for1000), `${(for1000 / N).toFixed(2)} ms`, j === 0 ? '1.0×' : `${(for1000 / ours).toFixed(1)}×`];
});
report(
  'set-image',
  [
    `bench/set-image: ${N} overlays, one image bumped in each (${machine()})`,
    `median of ${ROUNDS} rounds for the whole-set methods; per-process loops measured once on ${SAMPLE} overlays and scaled`,
    `load average (1 min) at start ${load0.toFixed(2)}, at end ${loadavg()[0].toFixed(2)}: other work on the machine inflates every row alike`,
    '',
    table([['method', 'measured', `for ${N}`, 'per file', 'vs ours'], ...rows]),
    '',
    `ours / one sed -i: ${(ours / median(samples[1])).toFixed(2)}× (target: at most 2×)`,
    '',
    'kubectl kustomize renders the overlay (reads base too) instead of editing; the kustomize binary is not installed here,',
    'so it stands in for the cost of one Go kustomize process per overlay, not for `kustomize edit set image` itself.',
  ].join('\n'),
);
