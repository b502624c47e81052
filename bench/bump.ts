/**
 * bump against a big config repo (20,000 files, 10,000 commits, built with git fast-import), served by the
 * smart-HTTP harness with basic auth. Side by side, interleaved, in one run:
 *
 *   ours   gitops-ci bump (the bundle): sparse shallow blob-filtered clone, edit, commit, push
 *   seed   the seed's path: full clone, edit, commit, push
 *   floor  git's own shallow sparse blob-filtered clone + a one-line change, commit, push (no Node, no checks)
 *
 * plus ours against a small repo (the seed layout alone: cost must not follow the repo), and 20 concurrent
 * bumps of 20 images on one branch of the big repo (3 rounds: on a 2-core machine 20 processes contend for
 * the CPU, and the retries a round needs vary with the draw of the backoff).
 *
 *   npx tsx bench/bump.ts        → bench/results/bump.txt
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { CLI, machine, median, ms, report, run, table, timeIt } from './lib.js';
import { startGitServer, tmp } from '../test/helpers/services.js';
import { pushTree, seedLayout } from '../test/helpers/config-repo.js';

const IMAGE = 'registry.example.com/shovel/shovel-gitops';
const OVERLAY = '.kubernetes/overlays/production';
const FILES = 20_000;
const COMMITS = 10_000;
const ROUNDS = 3;

const loadStart = loadavg()[0]!;
run(process.execPath, ['scripts/build.mjs']);
const srv = await startGitServer();
const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.test', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.test' };

function serverRepo(name: string): { url: string; auth: string; path: string } {
  const url = srv.createRepo(name);
  const path = srv.repoPath(name);
  run('git', ['-C', path, 'config', 'uploadpack.allowFilter', 'true']);
  return { url, auth: srv.authUrl(name), path };
}

/** the big repo: one commit with 20,000 files + the seed layout, then 9,999 commits changing one file each */
function buildBig(path: string): number {
  return timeIt(() => {
    const chunks: string[] = [];
    const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
    let t = 1_700_000_000;
    const commit = (msg: string, files: Array<[string, string]>) => {
      chunks.push(`commit refs/heads/main\ncommitter bench <bench@example.test> ${t++} +0000\n${data(msg)}`);
      for (const [p, c] of files) chunks.push(`M 100644 inline ${p}\n${data(c)}`);
      chunks.push('\n');
    };
    const first: Array<[string, string]> = Object.entries(seedLayout(IMAGE));
    const extra = FILES - first.length;
    for (let i = 0; i < extra; i++) {
      first.push([`apps/app-${String(i % 2000).padStart(4, '0')}/manifests/file-${String(i).padStart(5, '0')}.yaml`, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  key: "${'x'.repeat(120)}-${i}"\n`]);
    }
    commit('initial import', first);
    for (let i = 1; i < COMMITS; i++) {
      const n = (i * 7919) % (FILES - 10);
      commit(`change ${i}`, [[`apps/app-${String(n % 2000).padStart(4, '0')}/manifests/file-${String(n).padStart(5, '0')}.yaml`, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${n}\ndata:\n  key: "rev-${i}"\n`]]);
    }
    const stream = join(tmp('gci-fi-'), 'stream');
    writeFileSync(stream, chunks.join(''));
    const r = spawnSync('sh', ['-c', `git -C "$1" fast-import --quiet < "$2"`, 'sh', path, stream], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error('fast-import failed');
    rmSync(stream, { force: true });
    // packed as a forge keeps it: one pack with a bitmap
    run('git', ['-C', path, 'repack', '-adq', '--write-bitmap-index']);
  });
}

function du(dir: string): number {
  const r = spawnSync('du', ['-sk', dir]);
  return Number(String(r.stdout).split('\t')[0]) * 1024;
}
function kib(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`;
}

const cliEnv = { PATH: process.env.PATH, HOME: process.env.HOME, GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password };

let tagSeq = 0;
function ours(repoUrl: string): { t: number; size: number } {
  const work = join(tmp('gci-b-'), 'clone');
  const tag = `ours-${++tagSeq}`;
  const t = timeIt(() => run(process.execPath, [CLI, 'bump', '--repo', repoUrl, '--branch', 'main', '--dir', OVERLAY, '--image', `${IMAGE}:${tag}`, '--workdir', work], { env: cliEnv }));
  const size = du(join(work, '.git'));
  rmSync(work, { recursive: true, force: true });
  return { t, size };
}

/** sed -i on the newTag line: the seed runs `kustomize edit set image`, which costs more than this */
function editLine(file: string, tag: string): void {
  const text = readFileSync(file, 'utf8').replace(/newTag: .*/, `newTag: "${tag}"`);
  writeFileSync(file, text);
}

function seed(auth: string): { t: number; size: number } {
  const dir = tmp('gci-s-');
  const tag = `seed-${++tagSeq}`;
  const g = (args: string[]) => run('git', args, { env: gitEnv, cwd: join(dir, 'c') });
  const t = timeIt(() => {
    run('git', ['clone', '-q', auth, join(dir, 'c')], { env: gitEnv });
    g(['checkout', '-q', '-B', 'main']);
    editLine(join(dir, 'c', OVERLAY, 'kustomization.yaml'), tag);
    g(['commit', '-qam', `[skip ci] bump ${tag}`]);
    g(['push', '-q', 'origin', 'main']);
  });
  const size = du(join(dir, 'c', '.git'));
  rmSync(dir, { recursive: true, force: true });
  return { t, size };
}

function floor(auth: string): { t: number; size: number } {
  const dir = tmp('gci-f-');
  const tag = `floor-${++tagSeq}`;
  const g = (args: string[]) => run('git', args, { env: gitEnv, cwd: join(dir, 'c') });
  const t = timeIt(() => {
    run('git', ['clone', '-q', '--depth=1', '--filter=blob:none', '--sparse', '--no-checkout', '--branch=main', auth, join(dir, 'c')], { env: gitEnv });
    g(['sparse-checkout', 'set', '--cone', OVERLAY]);
    g(['checkout', '-q', 'main']);
    editLine(join(dir, 'c', OVERLAY, 'kustomization.yaml'), tag);
    g(['commit', '-qam', `[skip ci] bump ${tag}`]);
    g(['push', '-q', 'origin', 'HEAD:refs/heads/main']);
  });
  const size = du(join(dir, 'c', '.git'));
  rmSync(dir, { recursive: true, force: true });
  return { t, size };
}

function bumpAsync(repoUrl: string, image: string): Promise<{ code: number; ms: number; retries: number }> {
  return new Promise((resolve) => {
    const s = process.hrtime.bigint();
    const p = spawn(process.execPath, [CLI, 'bump', '--repo', repoUrl, '--branch', 'main', '--dir', OVERLAY, '--image', image], { env: cliEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code: code ?? -1, ms: Number(process.hrtime.bigint() - s) / 1e6, retries: (err.match(/push rejected/g) ?? []).length }));
  });
}

// ------------------------------------------------------------------------------------------------ setup
const big = serverRepo('bench/big.git');
const buildMs = buildBig(big.path);
const count = spawnSync('git', ['-C', big.path, 'rev-list', '--count', 'main']).stdout.toString().trim();
const files = spawnSync('sh', ['-c', `git -C "$1" ls-tree -r main | wc -l`, 'sh', big.path]).stdout.toString().trim();
const packSize = du(join(big.path, 'objects'));
const small = serverRepo('bench/small.git');
pushTree(small.auth, seedLayout(IMAGE));

// ------------------------------------------------------------------------------------------------ side by side
const cases = {
  'gitops-ci bump (ours), big repo': () => ours(big.url),
  'seed: full clone + edit + commit + push, big repo': () => seed(big.auth),
  'floor: git shallow sparse clone + 1-line change, big repo': () => floor(big.auth),
  'gitops-ci bump (ours), small repo (seed layout only)': () => ours(small.url),
};
const samples: Record<string, { t: number[]; size: number[] }> = Object.fromEntries(Object.keys(cases).map((k) => [k, { t: [], size: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    const x = fn();
    samples[name]!.t.push(x.t);
    samples[name]!.size.push(x.size);
  }
}
const floorMed = median(samples['floor: git shallow sparse clone + 1-line change, big repo']!.t);

// ------------------------------------------------------------------------------------------------ 20 concurrent
const N = 20;
const CONC_ROUNDS = 3;
const loadBefore = loadavg()[0]!;
const concRows: string[][] = [];
for (let round = 1; round <= CONC_ROUNDS; round++) {
  const load = loadavg()[0]!;
  const t0 = process.hrtime.bigint();
  const conc = await Promise.all(Array.from({ length: N }, (_, i) => bumpAsync(big.url, `registry.example.com/team/svc-${String(i).padStart(2, '0')}:r${round}-c${i}`)));
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const landed = conc.filter((c) => c.code === 0).length;
  const tip = spawnSync('git', ['-C', big.path, 'show', `main:${OVERLAY}/kustomization.yaml`]).stdout.toString();
  const inFile = Array.from({ length: N }, (_, i) => tip.includes(`registry.example.com/team/svc-${String(i).padStart(2, '0')}`) && new RegExp(`newTag: ["']?r${round}-c${i}["']?$`, 'm').test(tip)).filter(Boolean).length;
  const retries = conc.map((c) => c.retries);
  concRows.push([String(round), load.toFixed(2), `${landed}/${N}`, `${inFile}/${N}`, ms(wall), ms(median(conc.map((c) => c.ms))), ms(Math.max(...conc.map((c) => c.ms))), String(median(retries)), String(Math.max(...retries)), String(retries.reduce((a, b) => a + b, 0))]);
}

await srv.stop();

report(
  'bump',
  [
    `bench/bump: ${ROUNDS} interleaved rounds per case (${machine()}; load average ${loadStart.toFixed(2)} at start, ${loadBefore.toFixed(2)} before the concurrent rounds)`,
    `big config repo: ${files} files, ${count} commits, ${kib(packSize)} packed (built with git fast-import in ${ms(buildMs)}); smart HTTP + basic auth on loopback`,
    '',
    table([
      ['case', 'median', 'max', 'vs floor', '.git size'],
      ...Object.entries(samples).map(([n, s]) => [n, ms(median(s.t)), ms(Math.max(...s.t)), `${(median(s.t) / floorMed).toFixed(2)}x`, kib(median(s.size))]),
    ]),
    '',
    `${N} concurrent gitops-ci bump processes, ${N} different images, one branch of the big repo, ${CONC_ROUNDS} rounds (load = 1-min load average before the round):`,
    table([['round', 'load', 'landed', 'images in file', 'wall', 'per process median', 'max', 'retries median', 'retries max', 'retries total'], ...concRows]),
    '',
    'ours includes Node start-up (~0.1 s), the stale-guard history read and the sparse closure of the bases;',
    'seed edits with a regex instead of kustomize, so its real cost is higher. The machine is shared: compare rows, not runs.',
  ].join('\n'),
);
