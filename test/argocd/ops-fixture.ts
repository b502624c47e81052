/**
 * The set-up `status` and `rollback` tests share: a config repo whose staging overlay was written back by
 * real `gitops-ci bump` runs (trailers and all), each deploy waited for in the Argo CD double, so that the
 * repo's history and Argo CD's deploy history both hold them.
 */
import { expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { runCli } from '../helpers/cli.js';
import { IMAGE, setup, STAGING, type Fixture } from './fixture.js';

export const PRODUCTION = '.kubernetes/overlays/production';

export interface Release {
  tag: string;
  digest: string;
  source: string;
  pipeline: string;
  /** the config commit the bump pushed */
  config: string;
}

export const digestOf = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
export const sourceOf = (n: number) => `${String(n).padStart(2, '0')}`.repeat(20);

export function jobEnv(fx: Fixture, pipeline: string, source: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...fx.env,
    CI_PROJECT_PATH: 'shovel/shovel',
    CI_PROJECT_NAME: 'shovel',
    CI_SERVER_URL: 'https://gitlab.example.com',
    CI_COMMIT_SHA: source,
    CI_COMMIT_REF_NAME: 'main',
    CI_PIPELINE_ID: pipeline,
    CI_PIPELINE_URL: `https://gitlab.example.com/shovel/shovel/-/pipelines/${pipeline}`,
    CI_JOB_URL: `https://gitlab.example.com/shovel/shovel/-/jobs/${pipeline}0`,
    ...extra,
  };
}

/** bump staging to `tag@digest` as pipeline `pipeline` of source commit `source`, then wait until Argo CD runs it */
export async function release(fx: Fixture, n: number, o: { wait?: boolean; overlay?: string } = {}): Promise<Release> {
  const tag = `1.${n}.0`;
  const digest = digestOf(n);
  const pipeline = String(100 + n);
  const source = sourceOf(n);
  const r = await runCli(['bump', '--repo', fx.repo, '--branch', 'main', '--dir', o.overlay ?? STAGING, '--image', `${IMAGE}:${tag}@${digest}`], { env: jobEnv(fx, pipeline, source), timeoutMs: 60_000 });
  expect(r.code, r.all).toBe(0);
  const config = fx.tip();
  if (o.wait !== false) {
    const w = await fx.cli(['argocd', 'wait', '--app', o.overlay === PRODUCTION ? 'shovel-production' : 'shovel-staging', '--revision', config, '--timeout', '60s']);
    expect(w.code, w.all).toBe(0);
  }
  return { tag, digest, source, pipeline, config };
}

export async function opsSetup(): Promise<Fixture> {
  return setup({
    repoURL: bareRepo(seedLayout(IMAGE)),
    apps: [
      { name: 'shovel-staging', path: STAGING, targetRevision: 'main', destinationNamespace: 'shovel-staging' },
      { name: 'shovel-production', path: PRODUCTION, targetRevision: 'main', destinationNamespace: 'shovel-production' },
    ],
  });
}

export const workDir = () => mkdtempSync(join(tmpdir(), 'gci-ops-'));
