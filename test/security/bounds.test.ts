/**
 * Bounded reads (issue 18, "nothing it sends can exhaust the job"): every GitLab, Argo CD and registry answer
 * is read with a size cap and a total deadline (src/core/http.ts), and GitLab listings follow at most 100
 * `next` pages. Each row runs the real client (or the CLI bundle) against a real local server that misbehaves:
 *  - huge: an endless body streamed as fast as the socket takes it (before: 600 MB ended in ERR_STRING_TOO_LONG);
 *  - trickle: one byte every 200 ms, for ever (before: the idle timeout never fired, the job hung);
 *  - endless next: every page of a listing links to another (before: followed for ever).
 * Over a bound: a classified GitopsError with its exit code, never a stack trace, and the connection closed.
 * Argo CD and the registry page nothing we read (no listing); the registry's blob redirects stop after 5 hops.
 */
import { afterAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gitlabClient } from '../../src/gitlab/client.js';
import { ArgoClient } from '../../src/argocd/client.js';
import { RegistryClient } from '../../src/registry/client.js';
import { credentialStore } from '../../src/registry/auth.js';
import { Logger } from '../../src/core/log.js';
import { runCli } from '../helpers/cli.js';
import { rejected } from '../helpers/failure.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, base: string) => void;

interface Misbehaving {
  base: string;
  hostPort: string;
  hits: string[];
  /** responses still being written when the client went away */
  closedEarly: number;
}

const servers: http.Server[] = [];
const timers = new Set<NodeJS.Timeout>();
afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: Handler): Promise<Misbehaving> {
  const m: Misbehaving = { base: '', hostPort: '', hits: [], closedEarly: 0 };
  const srv = http.createServer((req, res) => {
    m.hits.push(`${req.method} ${req.url}`);
    res.on('close', () => {
      if (!res.writableFinished) m.closedEarly++;
    });
    handler(req, res, m.base);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  m.hostPort = `127.0.0.1:${port}`;
  m.base = `http://127.0.0.1:${port}`;
  return m;
}

/** an endless JSON-ish body, as fast as the client reads it (no Content-Length: it must be counted) */
function huge(res: http.ServerResponse, headers: Record<string, string> = {}) {
  res.writeHead(200, { 'Content-Type': 'application/json', ...headers });
  const chunk = Buffer.alloc(1024 * 1024, 0x20);
  res.write('[');
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}

/** one byte every 200 ms, for ever: never idle long enough for an idle timeout */
function trickle(res: http.ServerResponse, headers: Record<string, string> = {}) {
  res.writeHead(200, { 'Content-Type': 'application/json', ...headers });
  res.write('[');
  const t = setInterval(() => {
    if (res.destroyed) {
      clearInterval(t);
      timers.delete(t);
      return;
    }
    res.write(' ');
  }, 200);
  timers.add(t);
}

const REGISTRY_HEADERS = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const registryPing = (req: http.IncomingMessage, res: http.ServerResponse) => {
  if (req.url === '/v2/') {
    res.writeHead(200, { ...REGISTRY_HEADERS, 'Content-Type': 'application/json' });
    res.end('{}');
    return true;
  }
  return false;
};

/** the server saw the client close the connection mid-answer (polled: the close reaches it a moment later) */
async function closed(m: Misbehaving) {
  for (let i = 0; i < 100 && m.closedEarly < 1; i++) await new Promise((r) => setTimeout(r, 20));
  expect(m.closedEarly).toBe(1);
}

const quietLog = () => new Logger({ sink: { out: () => undefined, err: () => undefined }, gitlab: false, color: false });

function noStackTrace(text: string) {
  expect(text).not.toMatch(/ERR_STRING_TOO_LONG|Internal error|\n\s+at .+:\d+:\d+/);
}

describe('GitLab client: bounded answers and listings', () => {
  const client = (base: string) => gitlabClient({ apiUrl: `${base}/api/v4`, token: 'glpat-bounds-test-000000', tokenSource: 'GITOPS_GITLAB_TOKEN', project: 1, requestTimeoutMs: 1500 }, { attempts: 3, backoffMs: 10 });

  it('a huge answer: EGITLAB_TOO_LARGE (exit 1) at 32 MiB, not ERR_STRING_TOO_LONG; the connection is closed', async () => {
    const m = await serve((_req, res) => huge(res));
    const gl = client(m.base);
    const e = await rejected(gl.getProject(1));
    gl.close();
    expect(e.code).toBe('EGITLAB_TOO_LARGE');
    expect(e.exitCode).toBe(1);
    expect(e.message).toContain('32 MiB');
    expect(m.hits).toHaveLength(1); // not retried
  });

  it('a Content-Length over the cap is refused before the body is read', async () => {
    const m = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(64 * 1024 * 1024) });
      res.write('{');
    });
    const gl = client(m.base);
    const e = await rejected(gl.getProject(1));
    gl.close();
    expect(e.code).toBe('EGITLAB_TOO_LARGE');
    expect(e.message).toMatch(/larger than 32 MiB/);
  });

  it('a byte every 200 ms: EGITLAB_TIMEOUT (exit 4) at the total deadline, not retried', async () => {
    const m = await serve((_req, res) => trickle(res));
    const gl = client(m.base);
    const e = await rejected(gl.getProject(1));
    gl.close();
    expect(e.code).toBe('EGITLAB_TIMEOUT');
    expect(e.exitCode).toBe(4);
    expect(e.message).toMatch(/did not finish answering GET .* within 1\.5 s/);
    expect(m.hits).toHaveLength(1);
    await closed(m);
  });

  it('a listing whose every page links to another: EGITLAB_TOO_MANY_PAGES (exit 1) at the page bound (20 pages of 100 for our listings)', async () => {
    const m = await serve((req, res, base) => {
      const page = Number(new URL(req.url!, base).searchParams.get('page') ?? '1');
      res.writeHead(200, { 'Content-Type': 'application/json', Link: `<${base}/api/v4/projects/1/merge_requests/1/versions?page=${page + 1}>; rel="next"` });
      res.end(JSON.stringify([{ id: page, head_commit_sha: 'a'.repeat(40), base_commit_sha: 'b'.repeat(40), start_commit_sha: 'b'.repeat(40), created_at: '2026-01-01T00:00:00Z', state: 'collected' }]));
    });
    const gl = client(m.base);
    const e = await rejected(gl.mergeRequestVersions(1, 1));
    gl.close();
    expect(e.code).toBe('EGITLAB_TOO_MANY_PAGES');
    expect(e.exitCode).toBe(1);
    // src/gitlab/client.ts allPages: GITOPS_GITLAB_MAX_PAGES, default 20 (the transport's own bound of 100 `next`
    // links covers the listings gitbeaker follows itself)
    expect(m.hits).toHaveLength(20);
  });

  it('a huge error body is read only in part: the 5xx is still classified (75) and retried', async () => {
    const m = await serve((_req, res) => {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      const chunk = Buffer.alloc(1024 * 1024, 0x41);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const gl = client(m.base);
    const e = await rejected(gl.getProject(1));
    gl.close();
    expect(e.code).toBe('EGITLAB_UNAVAILABLE');
    expect(e.exitCode).toBe(75);
    expect(e.message.length).toBeLessThan(2000);
    expect(m.hits).toHaveLength(3);
  });
});

describe('Argo CD client: bounded answers and watch events', () => {
  const client = (base: string) => new ArgoClient({ baseUrl: base, token: 'argocd-bounds-token', insecure: false, requestTimeoutMs: 1500 }, quietLog());

  it('a huge answer: EARGOCD_TOO_LARGE (exit 1)', async () => {
    const m = await serve((_req, res) => huge(res));
    const c = client(m.base);
    const e = await rejected(c.getApp({ name: 'web' }));
    c.close();
    expect(e.code).toBe('EARGOCD_TOO_LARGE');
    expect(e.exitCode).toBe(1);
  });

  it('a byte every 200 ms: the request ends at its deadline (retryable like an outage, EARGOCD_UNAVAILABLE)', async () => {
    const m = await serve((_req, res) => trickle(res));
    const c = client(m.base);
    const e = await rejected(c.getApp({ name: 'web' }));
    c.close();
    expect(e.code).toBe('EARGOCD_UNAVAILABLE');
    expect(e.message).toMatch(/did not answer GET in time .*1\.5 s/);
    await closed(m);
  });

  it('argocd refresh against a trickling server: exit 4 at --timeout, no stack trace', async () => {
    const m = await serve((_req, res) => trickle(res));
    const r = await runCli(['argocd', 'refresh', '--app', 'web', '--server', m.hostPort, '--plaintext', '--timeout', '2s'], { env: { ARGOCD_AUTH_TOKEN: 'argocd-bounds-token' } });
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('EARGOCD_TIMEOUT');
    noStackTrace(r.all);
  });

  it('argocd refresh against a huge answer: exit 1 EARGOCD_TOO_LARGE, no stack trace', async () => {
    const m = await serve((_req, res) => huge(res));
    const r = await runCli(['argocd', 'refresh', '--app', 'web', '--server', m.hostPort, '--plaintext'], { env: { ARGOCD_AUTH_TOKEN: 'argocd-bounds-token' } });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EARGOCD_TOO_LARGE');
    noStackTrace(r.all);
  });

  it('a watch event without end: EARGOCD_TOO_LARGE, the stream closed', async () => {
    const m = await serve((_req, res) => huge(res));
    const c = client(m.base);
    c.maxBytes = 2 * 1024 * 1024;
    const ctl = new AbortController();
    const e = await rejected(c.watch({ name: 'web' }, { signal: ctl.signal, idleTimeoutMs: 10_000, onEvent: () => undefined }));
    c.close();
    expect(e.code).toBe('EARGOCD_TOO_LARGE');
  });
});

describe('registry client: bounded manifests', () => {
  const client = (hostPort: string, o: { requestTimeoutMs?: number } = {}) => new RegistryClient(hostPort, { creds: credentialStore({}), attempts: 3, backoffMs: 10, ...o });

  it('a huge manifest: EREGISTRY_TOO_LARGE (exit 1) at 4 MiB', async () => {
    const m = await serve((req, res) => registryPing(req, res) || huge(res, { ...REGISTRY_HEADERS, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }));
    const e = await rejected(client(m.hostPort).getManifest('app', '1'));
    expect(e.code).toBe('EREGISTRY_TOO_LARGE');
    expect(e.exitCode).toBe(1);
    expect(e.message).toContain('4 MiB');
  });

  it('a trickling manifest: EREGISTRY_TIMEOUT (exit 4) at the exchange deadline, not retried', async () => {
    const m = await serve((req, res) => registryPing(req, res) || trickle(res, REGISTRY_HEADERS));
    const e = await rejected(client(m.hostPort, { requestTimeoutMs: 1500 }).getManifest('app', '1'));
    expect(e.code).toBe('EREGISTRY_TIMEOUT');
    expect(e.exitCode).toBe(4);
    expect(m.hits.filter((h) => h.includes('/manifests/'))).toHaveLength(1);
  });

  it('image resolve against a trickling registry: exit 4 at --timeout; against a huge one: exit 1; no stack trace', async () => {
    const slow = await serve((req, res) => registryPing(req, res) || trickle(res, REGISTRY_HEADERS));
    const r = await runCli(['image', 'resolve', `${slow.hostPort}/app:1`, '--timeout', '2s']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('EREGISTRY_TIMEOUT');
    noStackTrace(r.all);
    const big = await serve((req, res) => registryPing(req, res) || huge(res, REGISTRY_HEADERS));
    const b = await runCli(['image', 'resolve', `${big.hostPort}/app:1`]);
    expect(b.code, b.all).toBe(1);
    expect(b.stderr).toContain('EREGISTRY_TOO_LARGE');
    noStackTrace(b.all);
  });

  it("a HEAD's Content-Length is not a body: a 5 GiB blob is found, not refused as too large", async () => {
    const m = await serve((req, res) => {
      if (registryPing(req, res)) return;
      res.writeHead(200, { ...REGISTRY_HEADERS, 'Content-Length': String(5 * 1024 ** 3), 'Content-Type': 'application/octet-stream' });
      res.end();
    });
    expect(await client(m.hostPort).blobExists('app', `sha256:${'1'.repeat(64)}`)).toBe(true);
  });

  it('blob redirects that never end stop after 5 hops (EREGISTRY_PROTOCOL)', async () => {
    const m = await serve((req, res, base) => {
      if (registryPing(req, res)) return;
      res.writeHead(307, { ...REGISTRY_HEADERS, Location: `${base}/storage/${m.hits.length}` });
      res.end();
    });
    const e = await rejected(client(m.hostPort).blobStream('app', `sha256:${'0'.repeat(64)}`));
    expect(e.code).toBe('EREGISTRY_PROTOCOL');
    expect(m.hits.filter((h) => h.includes('/storage/')).length).toBe(5);
  });
});
