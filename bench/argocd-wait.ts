/**
 * bench/argocd-wait: how long after Argo CD reaches the deployed state does the CI job notice?
 *
 * Side by side in one run, against the same deploy of the same commit (the Argo CD double over a real git
 * repo, rendering with kubectl kustomize):
 *   - ours:   `gitops-ci argocd wait` (the built bundle, a child process): follows the watch stream;
 *   - poll 1s: a loop GET /api/v1/applications/NAME every 1 s evaluating the same predicate. 1 s is the
 *             argocd CLI's own retry cadence: `WatchApplicationWithRetry` in pkg/apiclient/apiclient.go
 *             sleeps `time.Sleep(1 * time.Second)` before re-reading the app whenever its watch fails,
 *             which is how `argocd app wait` behaves when the stream is cut (proxies, grpc-web ingress);
 *   - poll 5s: the same loop every 5 s, the `until …; do sleep 5; done` cadence of hand-written CI waits.
 * The pollers start at a random phase relative to the deploy (the deploy is triggered 0.3-5.3 s after
 * all waiters started). Latency = waiter's exit - the moment the double emitted the final state
 * (Synced + Healthy at the commit, reconciled after the sync). The poll loops run in this process, so
 * they pay no process start/exit; ours does, which counts against it.
 *
 *   npx tsx bench/argocd-wait.ts [reps]      → prints a table, writes bench/results/argocd-wait.txt
 */
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startArgoCdDouble } from '../test/doubles/argocd/server.js';
import { bareRepo, pushTree, seedLayout } from '../test/helpers/config-repo.js';
import { evaluate } from '../src/argocd/predicate.js';
import { $ } from 'zx';

const REPS = Number(process.argv[2] ?? 7);
const CLI = fileURLToPath(new URL('../dist/gitops-ci.cjs', import.meta.url));
const IMAGE = 'registry.example.com/shovel/shovel-gitops';
const STAGING = '.kubernetes/overlays/staging';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!existsSync(CLI)) await $({ stdio: 'inherit' })`${process.execPath} ${fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))}`;

const repo = bareRepo(seedLayout(IMAGE));
const delays = { refreshMs: 200, operationStartMs: 50, syncMs: 500, reconcileMs: 200, healthyMs: 800 };
const argo = await startArgoCdDouble({ repoURL: repo, apps: [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main' }], pollIntervalMs: 3_600_000, delays });
const headers = { Authorization: `Bearer ${argo.token}` };

function runOurs(sha: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, 'argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--skip-refresh', '--timeout', '60s'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ARGOCD_SERVER: argo.url, ARGOCD_AUTH_TOKEN: argo.token },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? resolve(Date.now()) : reject(new Error(`ours exited ${code}: ${err}`))));
  });
}

async function runPoll(sha: string, intervalMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const r = await fetch(`${argo.url}/api/v1/applications/shovel-staging`, { headers, signal: AbortSignal.timeout(10_000) });
    const app = await r.json();
    const v = evaluate(app, { revision: sha, startedAt: started });
    if (v.kind === 'done') return Date.now();
    if (v.kind === 'failed') throw new Error(v.message);
    await sleep(intervalMs);
  }
}

const samples: Record<string, number[]> = { 'ours (watch stream)': [], 'poll 1s (argocd CLI retry interval)': [], 'poll 5s (shell loop)': [] };
for (let i = 0; i < REPS; i++) {
  const sha = pushTree(repo, { [`${STAGING}/kustomization.yaml`]: seedLayout(IMAGE, { tag: `bench-${i}` })[`${STAGING}/kustomization.yaml`] }, { message: `bench ${i}` });
  let healthyAt = 0;
  const reached = argo.waitFor('shovel-staging', (a) => evaluate(a, { revision: sha, startedAt: 0 }).kind === 'done', 60_000).then(() => (healthyAt = Date.now()));
  const waiters = [runOurs(sha), runPoll(sha, 1000), runPoll(sha, 5000)];
  await sleep(300 + Math.random() * 5000); // all waiters are watching/polling; the deploy starts at a random phase of the 5 s poll
  argo.pollNow();
  const exits = await Promise.all(waiters);
  await reached;
  const names = Object.keys(samples);
  exits.forEach((t, k) => samples[names[k]].push(t - healthyAt));
  process.stderr.write(`rep ${i + 1}/${REPS}: ${exits.map((t, k) => `${names[k].split(' (')[0]} ${t - healthyAt} ms`).join(', ')}\n`);
}
await argo.stop();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
};
const lines = [
  `argocd-wait: time from Argo CD (double) reaching Synced+Healthy at the commit to the waiter's exit`,
  `${REPS} deploys, node ${process.version}, ${new Date().toISOString().slice(0, 19)}Z; double delays ${JSON.stringify(delays)}`,
  '',
  `${'waiter'.padEnd(38)}${'median'.padStart(10)}${'max'.padStart(10)}${'min'.padStart(10)}`,
  ...Object.entries(samples).map(([k, xs]) => `${k.padEnd(38)}${`${median(xs)} ms`.padStart(10)}${`${Math.max(...xs)} ms`.padStart(10)}${`${Math.min(...xs)} ms`.padStart(10)}`),
  '',
  'ours includes the CLI process exit; the poll loops run in-process (see bench/argocd-wait.ts for the intervals and their sources).',
];
const out = lines.join('\n') + '\n';
process.stdout.write(out);
mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
writeFileSync(fileURLToPath(new URL('./results/argocd-wait.txt', import.meta.url)), out);
