/**
 * bump against a big config repo (20,000 files, 10,000 commits, built with git fast-import), served by the
 * smart-HTTP harness with basic auth. Side by side, interleaved, in one run:
 *
 *   ours   gitops-ci bump (the bundle): sparse shallow blob-filtered clone, edit, commit, push
 *   seed   the seed's path: full clone, edit, commit, push
 *   floor  git's own shallow sparse blob-filtered clone + a one-line change, commit, push (no Node, no checks)
 *
 * plus ours against a small repo (the seed layout alone: cost must not follow the repo), and N bumps of N
 * images, N = 5, 12, 20, on the small and the big repo: one after another on one branch, all at once on one
 * branch (issue #12: at once must cost no more than in a row), and all at once on N branches of their own
 * (no race: what running at once gains on this machine at all); all at once on one branch with the defaults, every
 * writer taking turns through the server's write-back lock (src/writeback/server-lock.ts: the Git LFS locks API the
 * test git server serves as GitLab does), the same racing without it (--server-lock off), and taking turns through
 * one --lock-file instead (writers sharing a host: src/writeback/lock.ts); with how much two processes at once cost
 * here against one, and the trace of where the 20 racing writers' time went (bench/contention.ts).
 *
 * and the write-back through GitLab's commits API (bump --via api, issue 20), side by side with the same floor: one
 * bump on the big repo, and N bumps at once through the API against the same N one after another (with the server's
 * lock, racing, and through one --lock-file). The API is the
 * GitLab double (test/doubles/gitlab) in front of the same git server: its git plumbing runs in this process, so
 * the server side of these rows is the double's, not Gitaly's.
 *
 *   npx tsx bench/bump.ts        → bench/results/bump.txt
 *   smaller, for a quick look (written to bench/results/bump-small.txt):
 *   BENCH_FILES=2000 BENCH_COMMITS=300 BENCH_ROUNDS=1 BENCH_NS=5 BENCH_ONLY=api npx tsx bench/bump.ts
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { CLI, machine, median, ms, parallelCapacity, report, run, table, timeIt } from './lib.js';
import { apart, bumpAsync, concurrent, phases, sequential, type Round } from './contention.js';
import { startGitServer, tmp } from '../test/helpers/services.js';
import { pushTree, seedLayout } from '../test/helpers/config-repo.js';
import { startGitlabDouble } from '../test/doubles/gitlab/server.js';

const IMAGE = 'registry.example.com/shovel/shovel-gitops';
const OVERLAY = '.kubernetes/overlays/production';
const FILES = Number(process.env.BENCH_FILES) || 20_000;
const COMMITS = Number(process.env.BENCH_COMMITS) || 10_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 3;
/** BENCH_ONLY=api: the API rows and the one-bump cases only (the git N rows are skipped) */
const ONLY_API = process.env.BENCH_ONLY === 'api';
const SMALL_RUN = !!(process.env.BENCH_FILES || process.env.BENCH_COMMITS || process.env.BENCH_ROUNDS || process.env.BENCH_NS || ONLY_API);

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
    // packed as a forge keeps it: one pack with a bitmap, and a commit-graph with changed-path Bloom filters (Gitaly's
    // housekeeping writes one: https://gitlab.com/gitlab-org/gitaly/-/merge_requests/3317), which a path's history reads
    run('git', ['-C', path, 'repack', '-adq', '--write-bitmap-index']);
    run('git', ['-C', path, 'commit-graph', 'write', '--reachable', '--changed-paths']);
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

// ------------------------------------------------------------------------------------------------ setup
const big = serverRepo('bench/big.git');
const buildMs = buildBig(big.path);
const count = spawnSync('git', ['-C', big.path, 'rev-list', '--count', 'main']).stdout.toString().trim();
const files = spawnSync('sh', ['-c', `git -C "$1" ls-tree -r main | wc -l`, 'sh', big.path]).stdout.toString().trim();
const packSize = du(join(big.path, 'objects'));
const small = serverRepo('bench/small.git');
pushTree(small.auth, seedLayout(IMAGE));
const base = new Map<string, string>();
/** --lock-file of the locked rounds (a path in a directory of this run; the CLI removes the file after each turn) */
const lockFile = join(tmp('gci-lock-'), 'config.lock');

// the GitLab double in front of the same git server: bump --via api reads and commits through it
const gl = await startGitlabDouble({ git: srv, projects: [{ path: 'bench/big', repo: 'bench/big.git' }, { path: 'bench/small', repo: 'bench/small.git' }] });
const apiEnv = { ...cliEnv, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, GITOPS_WRITE_VIA: 'api' };
/** what one API bump cost, beside its wall time: the client's CPU and requests, and the double's time answering them */
const apiOne: Array<{ cpu: number; requests: number; clientMs: number; doubleMs: number; doubleReq: number }> = [];
/** one bump through the API; spawned, not spawnSync: the double answers from this process's event loop */
async function api(repoUrl: string): Promise<{ t: number; size: number }> {
  const before = gl.requests.length;
  const r = await bumpAsync(apiEnv, repoUrl, `${IMAGE}:api-${++tagSeq}`);
  if (r.code !== 0) throw new Error(`bump --via api exited with ${r.code}: ${r.stderr.slice(-2000)}`);
  const served = gl.requests.slice(before);
  apiOne.push({ cpu: r.timing?.cpu ?? NaN, requests: r.timing?.requests ?? NaN, clientMs: r.timing?.requestMs ?? NaN, doubleMs: served.reduce((a, x) => a + (x.ms ?? 0), 0), doubleReq: served.length });
  return { t: r.ms, size: 0 };
}

// ------------------------------------------------------------------------------------------------ side by side
const cases = {
  'gitops-ci bump (ours), big repo': () => ours(big.url),
  'seed: full clone + edit + commit + push, big repo': () => seed(big.auth),
  'floor: git shallow sparse clone + 1-line change, big repo': () => floor(big.auth),
  'gitops-ci bump (ours), small repo (seed layout only)': () => ours(small.url),
  'gitops-ci bump --via api (GitLab commits API, no clone), big repo': () => api(big.url),
};
const samples: Record<string, { t: number[]; size: number[] }> = Object.fromEntries(Object.keys(cases).map((k) => [k, { t: [], size: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    const x = await fn();
    samples[name]!.t.push(x.t);
    samples[name]!.size.push(x.size);
  }
}
for (const r of [big, small]) base.set(r.path, spawnSync('git', ['-C', r.path, 'rev-parse', 'main']).stdout.toString().trim());
const floorMed = median(samples['floor: git shallow sparse clone + 1-line change, big repo']!.t);
// ours against the floor round by round (the two run one after the other in each round): the machine's drift cancels
const perRound = samples['gitops-ci bump (ours), big repo']!.t.map((t, i) => t / samples['floor: git shallow sparse clone + 1-line change, big repo']!.t[i]!);

// ------------------------------------------------------------------------------------------------ N at once vs N in a row
// On one fresh branch per row (same repo content), N bumps one after another, then N at once, side by side.
const NS = process.env.BENCH_NS ? process.env.BENCH_NS.split(',').map(Number) : [5, 12, 20];
const capacity = await parallelCapacity();
const loadBefore = loadavg()[0]!;
const concRows: string[][] = [];
/** per writer of the concurrent rounds: ms waited for the server's lock */
const lockTurns: number[] = [];
let trace: Record<string, number> | undefined;
let traceRound: Round | undefined;
for (const [label, repo] of ONLY_API ? [] : ([['small', small], ['big', big]] as const)) {
  for (const n of NS) {
    const load = loadavg()[0]!;
    const seqBranch = await freshRound(repo, n, 'sequential');
    const apartRound = await freshRound(repo, n, 'apart');
    const concBranch = await freshRound(repo, n, 'concurrent');
    const racing = await freshRound(repo, n, 'racing');
    const locked = await freshRound(repo, n, 'locked');
    const mean = (r: Round) => (r.runs.reduce((a, x) => a + x.retries, 0) / n).toFixed(2);
    concRows.push([
      label,
      String(n),
      load.toFixed(2),
      `${seqBranch.landed}/${apartRound.landed}/${concBranch.landed}/${racing.landed}/${locked.landed}`,
      ms(seqBranch.round.wall),
      ms(apartRound.round.wall),
      `${(apartRound.round.wall / seqBranch.round.wall).toFixed(2)}`,
      ms(concBranch.round.wall),
      `${(concBranch.round.wall / seqBranch.round.wall).toFixed(2)}`,
      ms(racing.round.wall),
      `${(racing.round.wall / seqBranch.round.wall).toFixed(2)}`,
      ms(locked.round.wall),
      `${(locked.round.wall / seqBranch.round.wall).toFixed(2)}`,
      `${mean(concBranch.round)} / ${mean(racing.round)}`,
    ]);
    if (label === 'big' && n === NS[NS.length - 1]) {
      trace = phases(racing.round);
      traceRound = racing.round;
    }
  }
}

/**
 * reset `main` of the repo to its built state, run n bumps, and count the images that landed. `apart`: on
 * n branches of their own, made at the same commit for the round and removed after it.
 */
async function freshRound(repo: { url: string; path: string }, n: number, mode: 'sequential' | 'concurrent' | 'racing' | 'apart' | 'locked', env: NodeJS.ProcessEnv = cliEnv): Promise<{ round: Round; landed: number }> {
  // concurrent: the default, every writer taking turns through the server's lock (the Git LFS locks API the test git
  // server serves as GitLab does); every other mode without it: sequential and apart have no one to take turns with
  // (the lock's two requests left out of the baseline), racing is the race itself, locked the --lock-file alone
  if (mode !== 'concurrent') env = { ...env, GITOPS_SERVER_LOCK: 'off' };
  const start = base.get(repo.path)!;
  run('git', ['-C', repo.path, 'update-ref', 'refs/heads/main', start]);
  const tag = `${mode[0]}${++tagSeq}`;
  if (mode === 'apart') {
    for (let i = 0; i < n; i++) run('git', ['-C', repo.path, 'update-ref', `refs/heads/race-${i}`, start]);
    const round = await apart(env, repo.url, n, tag);
    let landed = 0;
    for (let i = 0; i < n; i++) {
      const file = spawnSync('git', ['-C', repo.path, 'show', `race-${i}:${OVERLAY}/kustomization.yaml`]).stdout.toString();
      if (round.runs[i]!.code === 0 && new RegExp(`newTag: ["']?${tag}-${i}["']?$`, 'm').test(file)) landed++;
      run('git', ['-C', repo.path, 'update-ref', '-d', `refs/heads/race-${i}`]);
    }
    return { round, landed };
  }
  // locked: N at once taking turns through one --lock-file (GITOPS_LOCK_FILE, as a job sets it), as writers sharing a host do
  const round = mode === 'sequential' ? await sequential(env, repo.url, n, tag) : await concurrent(mode === 'locked' ? { ...env, GITOPS_LOCK_FILE: lockFile } : env, repo.url, n, tag);
  if (mode === 'concurrent') lockTurns.push(...round.runs.map((r) => r.timing?.wait ?? 0));
  const tip = spawnSync('git', ['-C', repo.path, 'show', `main:${OVERLAY}/kustomization.yaml`]).stdout.toString();
  const commits = Number(spawnSync('git', ['-C', repo.path, 'rev-list', '--count', `${start}..main`]).stdout.toString().trim());
  const inFile = Array.from({ length: n }, (_, i) => new RegExp(`newTag: ["']?${tag}-${i}["']?$`, 'm').test(tip)).filter(Boolean).length;
  return { round, landed: round.runs.every((r) => r.code === 0) && commits === n ? inFile : Math.min(inFile, commits) };
}

// ------------------------------------------------------------------------------------------------ N through the API
// The same rounds through GitLab's commits API: N at once on one branch against the same N one after another
// (target: at most 1.2x). A writer whose commit is refused (the file or the branch moved) re-reads only what changed.
const apiRows: string[][] = [];
const cpuOf = (r: Round) => r.runs.reduce((a, x) => a + (x.timing?.cpu ?? 0), 0);
for (const [label, repo] of [['small', small], ['big', big]] as const) {
  for (const n of NS) {
    const load = loadavg()[0]!;
    const seqRound = await freshRound(repo, n, 'sequential', apiEnv);
    const b1 = gl.requests.length;
    const l1 = srv.requests.length;
    const concRound = await freshRound(repo, n, 'concurrent', apiEnv);
    const served = gl.requests.slice(b1);
    const lockReq = srv.requests.slice(l1).filter((q) => q.status !== undefined).length;
    const b2 = gl.requests.length;
    const raceRound = await freshRound(repo, n, 'racing', apiEnv);
    const servedRace = gl.requests.slice(b2);
    const lockedRound = await freshRound(repo, n, 'locked', apiEnv);
    const refused = (q: typeof served) => q.filter((x) => x.method === 'POST' && x.status === 400).length;
    apiRows.push([
      label,
      String(n),
      load.toFixed(2),
      `${seqRound.landed}/${concRound.landed}/${raceRound.landed}/${lockedRound.landed}`,
      ms(seqRound.round.wall),
      ms(concRound.round.wall),
      `${(concRound.round.wall / seqRound.round.wall).toFixed(2)}`,
      ms(raceRound.round.wall),
      `${(raceRound.round.wall / seqRound.round.wall).toFixed(2)}`,
      ms(lockedRound.round.wall),
      `${(lockedRound.round.wall / seqRound.round.wall).toFixed(2)}`,
      `${refused(served)} / ${refused(servedRace)}`,
      `${(served.length / n).toFixed(1)} + ${(lockReq / n).toFixed(1)} / ${(servedRace.length / n).toFixed(1)}`,
      `${ms(cpuOf(seqRound.round))} / ${ms(cpuOf(concRound.round))} / ${ms(cpuOf(raceRound.round))}`,
    ]);
  }
}
const apiMed = median(samples['gitops-ci bump --via api (GitLab commits API, no clone), big repo']!.t);

await gl.stop();
await srv.stop();

report(
  SMALL_RUN ? 'bump-small' : 'bump',
  [
    `bench/bump: ${ROUNDS} interleaved rounds per case (${machine()}; load average ${loadStart.toFixed(2)} at start, ${loadBefore.toFixed(2)} before the concurrent rounds)`,
    `big config repo: ${files} files, ${count} commits, ${kib(packSize)} packed (built with git fast-import in ${ms(buildMs)}); smart HTTP + basic auth on loopback`,
    '',
    table([
      ['case', 'median', 'max', 'vs floor', '.git size'],
      ...Object.entries(samples).map(([n, s]) => [n, ms(median(s.t)), ms(Math.max(...s.t)), `${(median(s.t) / floorMed).toFixed(2)}x`, kib(median(s.size))]),
    ]),
    `ours/floor on the big repo, round by round: ${perRound.map((r) => r.toFixed(2)).join(' ')} (median ${median(perRound).toFixed(2)}x; target at most 1.1x)`,
    '',
    `what two at once cost on this machine against one alone (1.0 = two cores' worth, 2.0 = one core's worth): hashing ${capacity.hashing.toFixed(2)}x, starting 100 git processes ${capacity.spawning.toFixed(2)}x`,
    '',
    `through GitLab's commits API (bump --via api, no clone): one bump on the big repo ${ms(apiMed)}, ${(apiMed / floorMed).toFixed(2)}x the git floor (target at most 0.5x). The API is the GitLab double (test/doubles/gitlab) in front of the same git server, answering from this bench's process (one git cat-file --batch per repo, git for a path's history and the ref update): its time is the double's, not Gitaly's. Per bump, medians of the rounds:`,
    table([
      ['one API bump, big repo', 'wall', 'client CPU', 'requests', 'their time seen by the client (sum)', "the double's time answering them (sum)"],
      ['median', ms(apiMed), ms(median(apiOne.map((x) => x.cpu))), String(median(apiOne.map((x) => x.requests))), ms(median(apiOne.map((x) => x.clientMs))), ms(median(apiOne.map((x) => x.doubleMs)))],
    ]),
    '',
    "N bumps at once through the API against the same N one after another (target at most 1.2x): concurrent = the default, every writer taking turns through the server's write-back lock (--server-lock auto: the Git LFS locks API beside the repo, as GitLab serves it); racing = the same without it (--server-lock off); lock file = taking turns through one --lock-file (writers sharing a host); refused = commits GitLab refused (a file changed since it was read), requests/writer = the double's API requests (+ the locks API's) per writer, client CPU = the N processes' CPU summed:",
    table([['repo', 'N', 'load', 'landed seq/conc/race/file', 'sequential', 'concurrent', 'conc/seq', 'racing', 'race/seq', 'lock file', 'file/seq', 'refused conc / race', 'requests/writer conc / race', 'client CPU seq / conc / race'], ...apiRows]),
    '',
    `N gitops-ci bump processes, N different images, side by side on the same repo reset to the same commit: one after another on one branch (sequential), all at once on N branches of their own (apart: no race, what running at once gains on this machine at best), all at once on one branch with the defaults (concurrent: every writer takes turns through the server's write-back lock, from before its clone to its push), the same without the lock (racing, --server-lock off), and taking turns through one --lock-file instead (lock file: writers sharing a host). load = 1-min load average before the row; retries = extra push attempts per writer. Target: conc/seq at most 1.2x where apart/seq is below 1 (where running at once gains):`,
    table([['repo', 'N', 'load', 'landed seq/apart/conc/race/file', 'sequential', 'apart', 'apart/seq', 'concurrent', 'conc/seq', 'racing', 'race/seq', 'lock file', 'file/seq', 'retries mean conc / race'], ...concRows]),
    `waiting for the server's lock in the concurrent rounds (git and API), per writer: median ${ms(median(lockTurns))}, max ${ms(Math.max(0, ...lockTurns))}`,
    '',
    ...(trace
      ? [
          `where the time of the ${traceRound!.runs.length} racing writers (--server-lock off) on the big repo went, summed over the ${traceRound!.runs.length} processes (bump --verbose "bump timing"):`,
          table([['phase', 'total', 'per writer', 'share'], ...Object.entries(trace).filter(([k]) => k !== 'processes' && k !== 'attempts').map(([k, v]) => [k, ms(v), ms(v / traceRound!.runs.length), `${((100 * v) / trace!.processes!).toFixed(0)}%`])]),
          `(${trace.attempts} attempts for ${traceRound!.runs.length} writers; sum of the processes' wall time ${ms(trace.processes!)}; wall of the round ${ms(traceRound!.wall)})`,
        ]
      : []),
    '',
    'ours includes Node start-up (~0.1 s), the stale-guard history read and the sparse closure of the bases;',
    'seed edits with a regex instead of kustomize, so its real cost is higher. The machine is shared: compare rows, not runs.',
  ].join('\n'),
);
