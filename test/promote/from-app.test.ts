/**
 * --from-app picks the config repo's source of the Argo CD app (multi-source apps list chart and value repos
 * too; status.sync.revisions has one revision per source) and refuses an app that deploys from another repo.
 * The Application bodies are checked against the Argo CD contract (test/contracts/argocd-swagger.json).
 */
import { describe, expect, it } from 'vitest';
import { Logger } from '../../src/core/log.js';
import { parseRemote } from '../../src/git/url.js';
import { deployedRevision } from '../../src/promote/source.js';
import type { ArgoClient } from '../../src/argocd/client.js';
import type { Application } from '../../src/argocd/types.js';
import { validateResponse } from '../argocd/contract.js';
import { rejected } from '../helpers/failure.js';

const SHA = 'a1b2c3d4'.repeat(5);
const FROM = '.kubernetes/overlays/staging';
const NOW = new Date(Date.now() - 60_000).toISOString();

function app(sources: Array<{ repoURL: string; path?: string; chart?: string; targetRevision: string }>, revisions: string[]): Application {
  const body = {
    metadata: { name: 'shovel-staging', namespace: 'argocd' },
    spec: { project: 'default', destination: { server: 'https://kubernetes.default.svc', namespace: 'shovel' }, ...(sources.length === 1 ? { source: sources[0] } : { sources }) },
    status: {
      sync: { status: 'Synced', ...(sources.length === 1 ? { revision: revisions[0] } : { revisions }) },
      health: { status: 'Healthy' },
      reconciledAt: NOW,
      operationState: { phase: 'Succeeded', startedAt: NOW, finishedAt: NOW, operation: { sync: sources.length === 1 ? { revision: revisions[0] } : { revisions } }, syncResult: sources.length === 1 ? { revision: revisions[0] } : { revisions } },
    },
  };
  expect(validateResponse({ method: 'GET', path: '/api/v1/applications/shovel-staging', status: 200, schema: 'v1alpha1Application', body })).toEqual([]);
  return body as unknown as Application;
}

function run(a: Application, repo: string) {
  const warnings: string[] = [];
  const log = new Logger({ color: false, sink: { out: () => {}, err: (s) => void (s.startsWith('warning:') && warnings.push(s)) } });
  const client = { getApp: async () => a } as unknown as ArgoClient;
  return { warnings, result: deployedRevision(client, { name: 'shovel-staging' }, { from: FROM, repo: parseRemote(repo, '/work'), log }) };
}


describe('promote --from-app: which source of the app is the config repo', () => {
  it('a multi-source app: the revision of the config repo\'s source, not of the chart listed first', async () => {
    const a = app(
      [
        { repoURL: 'https://charts.example.com/stable', chart: 'shovel', targetRevision: '1.4.2' },
        { repoURL: 'https://gitlab.example.com/shovel/config.git', path: FROM, targetRevision: 'main' },
      ],
      ['1.4.2', SHA],
    );
    const { result } = run(a, 'https://gitlab.example.com/shovel/config.git');
    expect((await result).revision).toBe(SHA);
  });

  it('the same repo spelled otherwise (credentials, port, .git, case, ssh) is the same repo; another host name is taken with a warning', async () => {
    const a = app([{ repoURL: 'ssh://git@gitlab.internal:22/Shovel/Config', path: `./${FROM}/`, targetRevision: 'main' }], [SHA]);
    const { result, warnings } = run(a, 'https://ci-token:s3cret@gitlab.example.com:443/shovel/config.git');
    expect((await result).revision).toBe(SHA);
    expect(warnings.join('')).toContain('reaches the config repo as ssh://gitlab.internal:22/Shovel/Config, this job as https://gitlab.example.com/shovel/config.git');
    expect(warnings.join('')).not.toContain('s3cret');
    const same = run(app([{ repoURL: 'git@gitlab.example.com:shovel/config.git', path: FROM, targetRevision: 'main' }], [SHA]), 'https://gitlab.example.com/shovel/config');
    expect((await same.result).revision).toBe(SHA);
    expect(same.warnings).toEqual([]);
  });

  it('an app that deploys from another repo is refused (EPROMOTE_APP_MISMATCH, exit 2), naming both without credentials', async () => {
    const a = app([{ repoURL: 'https://user:apptoken@gitlab.example.com/other/config.git', path: FROM, targetRevision: 'main' }], [SHA]);
    const e = await rejected(run(a, 'https://gitlab.example.com/shovel/config.git').result);
    expect(e.code).toBe('EPROMOTE_APP_MISMATCH');
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('deploys from https://gitlab.example.com/other/config.git, not from the config repo https://gitlab.example.com/shovel/config.git');
    expect(e.message).not.toContain('apptoken');
  });

  it('a repoURL that cannot be read as a location: the path decides, with a warning', async () => {
    const a = app([{ repoURL: 'https://[broken/config.git', path: FROM, targetRevision: 'main' }], [SHA]);
    const { result, warnings } = run(a, 'https://gitlab.example.com/shovel/config.git');
    expect((await result).revision).toBe(SHA);
    expect(warnings.join('')).toContain('cannot compare its repoURL https://[broken/config.git with the config repo https://gitlab.example.com/shovel/config.git; going by the path alone');
  });

  it('the config repo\'s source deploys another path than --from: refused as before', async () => {
    const a = app([{ repoURL: 'https://gitlab.example.com/shovel/config.git', path: '.kubernetes/overlays/production', targetRevision: 'main' }], [SHA]);
    const e = await rejected(run(a, 'https://gitlab.example.com/shovel/config.git').result);
    expect(e.code).toBe('EPROMOTE_APP_MISMATCH');
    expect(e.message).toContain('deploys .kubernetes/overlays/production, not --from .kubernetes/overlays/staging');
  });
});
