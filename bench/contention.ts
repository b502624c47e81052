/**
 * N bumps of one branch, at once and one after another, with the trace of where each process's time went
 * (`bump timing` from --verbose). Shared by bench/bump.ts; run alone for a quick look:
 *
 *   npx tsx bench/contention.ts [small|big] [N...]
 */
import { spawn } from 'node:child_process';
import { CLI } from './lib.js';

export const OVERLAY = '.kubernetes/overlays/production';

export interface Timing {
  start: number;
  clone: number;
  attempts: Array<{ fetch?: number; plan: number; commit: number; push: number; result: string; backoff?: number }>;
  /** waiting for --lock-file */
  wait?: number;
  total?: number;
  /** bump --via api: its HTTP requests to GitLab, their summed time, and the process's CPU time (user + system) */
  via?: 'api';
  requests?: number;
  requestMs?: number;
  cpu?: number;
}

export interface Run {
  code: number;
  ms: number;
  retries: number;
  timing?: Timing;
  stderr: string;
}

export function bumpAsync(env: NodeJS.ProcessEnv, repoUrl: string, image: string, branch = 'main'): Promise<Run> {
  return new Promise((resolve) => {
    const s = process.hrtime.bigint();
    const p = spawn(process.execPath, [process.env.BUMP_CLI ?? CLI, 'bump', '-v', '--repo', repoUrl, '--branch', branch, '--dir', OVERLAY, '--image', image], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      const m = /bump timing (\{.*\})/.exec(err);
      const timing = m ? (JSON.parse(m[1]!) as Timing) : undefined;
      resolve({ code: code ?? -1, ms: Number(process.hrtime.bigint() - s) / 1e6, retries: timing ? Math.max(0, timing.attempts.length - 1) : (err.match(/push rejected|commit refused/g) ?? []).length, timing, stderr: err });
    });
  });
}

export interface Round {
  wall: number;
  runs: Run[];
}

export async function concurrent(env: NodeJS.ProcessEnv, url: string, n: number, tag: string): Promise<Round> {
  const t0 = process.hrtime.bigint();
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => bumpAsync(env, url, `registry.example.com/team/svc-${String(i).padStart(2, '0')}:${tag}-${i}`)));
  return { wall: Number(process.hrtime.bigint() - t0) / 1e6, runs };
}

/**
 * N bumps at once, each on a branch of its own (`race-0` … `race-<N-1>`, which must exist): the same work
 * and the same competition for the machine as `concurrent`, without the race for one branch. What N at
 * once can gain on this machine at best; concurrent/apart is what racing for one branch costs.
 */
export async function apart(env: NodeJS.ProcessEnv, url: string, n: number, tag: string): Promise<Round> {
  const t0 = process.hrtime.bigint();
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => bumpAsync(env, url, `registry.example.com/team/svc-${String(i).padStart(2, '0')}:${tag}-${i}`, `race-${i}`)));
  return { wall: Number(process.hrtime.bigint() - t0) / 1e6, runs };
}

export async function sequential(env: NodeJS.ProcessEnv, url: string, n: number, tag: string): Promise<Round> {
  const t0 = process.hrtime.bigint();
  const runs: Run[] = [];
  for (let i = 0; i < n; i++) runs.push(await bumpAsync(env, url, `registry.example.com/team/svc-${String(i).padStart(2, '0')}:${tag}-${i}`));
  return { wall: Number(process.hrtime.bigint() - t0) / 1e6, runs };
}

/** summed phases over all processes of a round (ms) */
export function phases(r: Round): Record<string, number> {
  const sum: Record<string, number> = { processes: 0, start: 0, clone: 0, fetch: 0, plan: 0, commit: 0, push_ok: 0, push_lost: 0, backoff: 0, wait: 0, other: 0, attempts: 0 };
  for (const x of r.runs) {
    const t = x.timing;
    if (!t) continue;
    sum.processes! += x.ms;
    sum.start! += t.start;
    sum.clone! += t.clone;
    sum.wait! += t.wait ?? 0;
    let acc = t.start + t.clone + (t.wait ?? 0);
    for (const a of t.attempts) {
      sum.attempts!++;
      sum.fetch! += a.fetch ?? 0;
      sum.plan! += a.plan;
      sum.commit! += a.commit;
      if (a.result === 'ok') sum.push_ok! += a.push;
      else sum.push_lost! += a.push;
      sum.backoff! += a.backoff ?? 0;
      acc += (a.fetch ?? 0) + a.plan + a.commit + a.push + (a.backoff ?? 0);
    }
    sum.other! += x.ms - acc;
  }
  return sum;
}

if (process.argv[1]?.endsWith('contention.ts')) {
  const { startGitServer } = await import('../test/helpers/services.js');
  const { pushTree, seedLayout } = await import('../test/helpers/config-repo.js');
  const { loadavg } = await import('node:os');
  const srv = await startGitServer();
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password };
  const ns = process.argv.slice(3).map(Number);
  let k = 0;
  for (const n of ns.length ? ns : [20]) {
    for (const mode of (process.env.MODES ?? 'seq,conc').split(',') as Array<'seq' | 'conc'>) {
      const name = `bench/c${++k}.git`;
      const url = srv.createRepo(name);
      pushTree(srv.authUrl(name), seedLayout('registry.example.com/shovel/shovel-gitops'));
      const load = loadavg()[0]!;
      const r = mode === 'seq' ? await sequential(env, url, n, mode) : await concurrent(env, url, n, mode);
      const failed = r.runs.filter((x) => x.code !== 0);
      const p = phases(r);
      console.log(`${mode} N=${n} load=${load.toFixed(2)} wall=${r.wall.toFixed(0)} failed=${failed.length} retries=${r.runs.reduce((a, x) => a + x.retries, 0)} ${Object.entries(p).map(([a, b]) => `${a}=${Math.round(b)}`).join(' ')}`);
      if (failed.length) console.log(failed[0]!.stderr.slice(-2000));
      if (process.env.TRACE) for (const x of r.runs) console.log(JSON.stringify(x.timing));
    }
  }
  await srv.stop();
}
