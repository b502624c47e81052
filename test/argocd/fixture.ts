/**
 * Shared set-up of the argocd tests: a real config repo (bare git repo) with the seed layout, the Argo CD
 * double over it with short delays, a contract recorder validating every response, and helpers to push
 * a new image tag and to run the CLI against the double.
 */
import { expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bareRepo, git, pushTree, seedLayout } from '../helpers/config-repo.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startArgoCdDouble, type ArgoCdDouble, type ArgoCdDoubleOptions, type DoubleAppSpec } from '../doubles/argocd/server.js';
import { contractRecorder } from './contract.js';

export const IMAGE = 'registry.example.com/shovel/shovel-gitops';
export const STAGING = '.kubernetes/overlays/staging';
export const FAST = { refreshMs: 40, operationStartMs: 30, syncMs: 150, reconcileMs: 60, healthyMs: 150 };

export interface Fixture {
  repo: string;
  argo: ArgoCdDouble;
  recorder: ReturnType<typeof contractRecorder>;
  /** current tip of main */
  tip(): string;
  /** commits a new image tag for the staging overlay; returns the SHA */
  bump(tag: string, extra?: Record<string, string>): string;
  /** runs the CLI with ARGOCD_SERVER/ARGOCD_AUTH_TOKEN pointing at the double */
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export function overlayWithTag(tag: string): string {
  return seedLayout(IMAGE, { tag })[`${STAGING}/kustomization.yaml`];
}

export async function setup(opts: Partial<ArgoCdDoubleOptions> & { apps?: DoubleAppSpec[] } = {}): Promise<Fixture> {
  const repo = opts.repoURL ?? bareRepo(seedLayout(IMAGE));
  const recorder = contractRecorder();
  const argo = await startArgoCdDouble({
    repoURL: repo,
    apps: opts.apps ?? [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main', destinationNamespace: 'shovel-staging' }],
    pollIntervalMs: 60_000, // tests decide when Argo CD notices a push (refresh, webhook, pollNow)
    delays: FAST,
    ...opts,
    onResponse: recorder.onResponse,
  });
  const env: NodeJS.ProcessEnv = { ARGOCD_SERVER: argo.url, ARGOCD_AUTH_TOKEN: argo.token };
  const fx: Fixture = {
    repo,
    argo,
    recorder,
    env,
    tip: () => git(repo, ['rev-parse', 'refs/heads/main']),
    bump: (tag, extra = {}) => pushTree(repo, { [`${STAGING}/kustomization.yaml`]: overlayWithTag(tag), ...extra }, { message: `bump ${tag} [skip ci]` }),
    cli: (args, e = {}) => runCli(args, { env: { ...env, ...e }, timeoutMs: 60_000 }),
    stop: () => argo.stop(),
  };
  active.add(fx);
  return fx;
}

const active = new Set<Fixture>();

/**
 * afterEach: stop every fixture the test set up, and check that each response the double sent met the swagger;
 * with `checked`, also that every fixture answered at least one response (a test that talks to the double, so its
 * claims rest on answers the contract checked)
 */
export async function stopFixtures(opts: { checked?: boolean } = {}): Promise<void> {
  const all = [...active];
  active.clear();
  for (const fx of all) await fx.stop();
  for (const fx of all) expect(fx.recorder.violations).toEqual([]);
  if (opts.checked) for (const fx of all) expect(fx.recorder.checked).toBeGreaterThan(0);
}

export function tmpFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'gci-argocd-')), name);
}

export function readDotenv(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

export const short = (sha: string) => sha.slice(0, 8);
