/**
 * The rows of bench/bump's "N at once" table again with a network between the jobs and the git server:
 * every byte held 25 ms each way by a proxy (50 ms round trip, as between GitLab runners and a GitLab they
 * reach over a WAN; this machine has no netem). On loopback a bump is bound by this machine's CPU (which
 * does not run processes in parallel: bench/bump's first line); here much of it is waiting, which N at
 * once can overlap. Small repo (seed layout), N = 5, 12, 20: one after another on one branch, at once on N
 * branches of their own (apart: no race), at once on one branch (concurrent). Issue #12.
 *
 *   npx tsx bench/latency.ts        → bench/results/latency.txt
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { machine, ms, report, run, startDelayProxy, table } from './lib.js';
import { apart, concurrent, sequential, type Round } from './contention.js';
import { startGitServer } from '../test/helpers/services.js';
import { pushTree, seedLayout } from '../test/helpers/config-repo.js';

const ONE_WAY_MS = 25;
const NS = [5, 12, 20];
const OVERLAY = '.kubernetes/overlays/production';

run(process.execPath, ['scripts/build.mjs']);
const srv = await startGitServer();
const proxy = await startDelayProxy(srv.port, ONE_WAY_MS);
const env = { PATH: process.env.PATH, HOME: process.env.HOME, GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password };
const name = 'bench/latency.git';
srv.createRepo(name);
pushTree(srv.authUrl(name), seedLayout('registry.example.com/shovel/shovel-gitops'));
const bare = srv.repoPath(name);
const base = execFileSync('git', ['-C', bare, 'rev-parse', 'main']).toString().trim();
const url = `http://127.0.0.1:${proxy.port}/${name}`;

let seq = 0;
/** main (and race-0 … race-<n-1> for apart) reset to the same commit; n bumps; how many landed */
async function round(n: number, mode: 'sequential' | 'apart' | 'concurrent'): Promise<{ r: Round; landed: number }> {
  execFileSync('git', ['-C', bare, 'update-ref', 'refs/heads/main', base]);
  for (let i = 0; i < n; i++) execFileSync('git', ['-C', bare, 'update-ref', `refs/heads/race-${i}`, base]);
  const tag = `${mode[0]}${++seq}`;
  const r = mode === 'sequential' ? await sequential(env, url, n, tag) : mode === 'apart' ? await apart(env, url, n, tag) : await concurrent(env, url, n, tag);
  const has = (ref: string, i: number) => new RegExp(`newTag: ["']?${tag}-${i}["']?$`, 'm').test(execFileSync('git', ['-C', bare, 'show', `${ref}:${OVERLAY}/kustomization.yaml`]).toString());
  const landed = Array.from({ length: n }, (_, i) => r.runs[i]!.code === 0 && has(mode === 'apart' ? `race-${i}` : 'main', i)).filter(Boolean).length;
  for (let i = 0; i < n; i++) execFileSync('git', ['-C', bare, 'update-ref', '-d', `refs/heads/race-${i}`]);
  return { r, landed };
}

const rows: string[][] = [];
for (const n of NS) {
  const load = loadavg()[0]!;
  const s = await round(n, 'sequential');
  const a = await round(n, 'apart');
  const c = await round(n, 'concurrent');
  const retries = c.r.runs.map((x) => x.retries);
  rows.push([String(n), load.toFixed(2), `${s.landed}/${a.landed}/${c.landed}`, ms(s.r.wall), ms(a.r.wall), ms(c.r.wall), (a.r.wall / s.r.wall).toFixed(2), (c.r.wall / s.r.wall).toFixed(2), (c.r.wall / a.r.wall).toFixed(2), (retries.reduce((x, y) => x + y, 0) / n).toFixed(2)]);
}
await proxy.stop();
await srv.stop();

report(
  'latency',
  [
    `bench/latency: N gitops-ci bump processes, N different images, small repo (seed layout), with a ${2 * ONE_WAY_MS} ms round trip to the git server (a proxy holds each chunk ${ONE_WAY_MS} ms each way) (${machine()})`,
    'sequential: one after another on one branch; apart: all at once on N branches of their own (no race); concurrent: all at once on one branch. load = 1-min load average before the row; retries = extra push attempts per writer in the concurrent round:',
    table([['N', 'load', 'landed seq/apart/conc', 'sequential', 'apart', 'concurrent', 'apart/seq', 'conc/seq', 'conc/apart', 'retries mean'], ...rows]),
  ].join('\n'),
);
