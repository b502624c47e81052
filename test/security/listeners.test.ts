/**
 * A long `argocd wait` whose watch stream keeps dropping (Low of issue #10) reconnects on one abort signal:
 * no listener may be left behind per stream (node warns at 11: MaxListenersExceededWarning). Against the Argo
 * CD double, cutting every stream after one event, 20 times.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { runCli } from '../helpers/cli.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';

let argo: ArgoCdDouble | undefined;
afterAll(() => argo?.stop());

describe('watch reconnects', () => {
  it('20 dropped streams: no MaxListenersExceededWarning', async () => {
    argo = await startArgoCdDouble({ repoURL: bareRepo(seedLayout()), apps: [{ name: 'web', path: '.kubernetes/overlays/staging', targetRevision: 'main', destinationNamespace: 'web' }], pollIntervalMs: 60_000 });
    argo.faults.dropStream = { afterEvents: 1, times: 20 };
    const r = await runCli(['argocd', 'wait', '--app', 'web', '--revision', 'c'.repeat(40), '--timeout', '8s', '--verbose'], { env: { ARGOCD_SERVER: argo.url, ARGOCD_AUTH_TOKEN: argo.token } });
    expect(r.code, r.all).toBe(4);
    const watches = argo.requests.filter((q) => q.path === '/api/v1/stream/applications').length;
    expect(watches).toBeGreaterThan(11);
    expect(r.stderr).not.toContain('MaxListenersExceededWarning');
  });
});
