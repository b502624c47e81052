/**
 * Digests are checked (issue 18, Deliver 6): a `Docker-Content-Digest` that is not `sha256:<64 hex>`, or that
 * the manifest bytes read back do not hash to, is refused (EREGISTRY_DIGEST, exit 1) by `image resolve`,
 * promote's tag resolution (pinDigests) and `image copy`; nothing is printed, pinned, written to a dotenv or
 * copied. Before, `image resolve` printed whatever the header said.
 *
 * The registry is the real docker-registry; a hostile stand-in (a small HTTP proxy on loopback) sits in front
 * of it and, per mode, rewrites the manifest answers: a wrong but well-formed digest, a malformed one, or
 * other bytes under the true digest. Mode `none` passes everything through: the same commands succeed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startRegistry, tmp, type Registry } from '../helpers/services.js';
import { pushImage, registryApi, sha256 } from '../helpers/registry-api.js';
import { runCli } from '../helpers/cli.js';
import { rejected } from '../helpers/failure.js';
import { Registries } from '../../src/registry/client.js';
import { credentialStore } from '../../src/registry/auth.js';
import { pinDigests } from '../../src/promote/source.js';
import { Logger } from '../../src/core/log.js';

const sha = sha256;
let reg: Registry;
let proxy: http.Server;
let proxyHost: string;
let manifest: Buffer;
type Mode = 'none' | 'wrong' | 'malformed' | 'uppercase' | 'other-bytes';
let mode: Mode = 'none';

const api = (method: string, url: string) => registryApi(reg, method, url);

/** the hostile stand-in: forwards to the real registry, rewriting manifest answers per `mode` */
function startProxy(): Promise<string> {
  proxy = http.createServer((req, res) => {
    const target = new URL(req.url!, reg.url);
    const up = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (ur) => {
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        let body = Buffer.concat(chunks);
        const headers = { ...ur.headers };
        if (/\/manifests\//.test(target.pathname) && ur.statusCode === 200 && mode !== 'none') {
          const real = String(headers['docker-content-digest'] ?? '');
          if (mode === 'wrong') headers['docker-content-digest'] = sha(Buffer.from('some other manifest'));
          if (mode === 'malformed') headers['docker-content-digest'] = 'sha256:not-a-digest](https://evil.example)';
          if (mode === 'uppercase') headers['docker-content-digest'] = real.toUpperCase();
          if (mode === 'other-bytes' && req.method === 'GET') {
            const j = JSON.parse(body.toString()) as Record<string, unknown>;
            body = Buffer.from(JSON.stringify({ ...j, annotations: { 'swapped-by': 'proxy' } }));
            headers['content-length'] = String(body.length);
          }
        }
        res.writeHead(ur.statusCode ?? 502, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((r) => proxy.listen(0, '127.0.0.1', () => r(`127.0.0.1:${(proxy.address() as AddressInfo).port}`)));
}

beforeAll(async () => {
  reg = await startRegistry({ user: 'reguser', password: `reg+pw=${randomBytes(6).toString('hex')}` });
  ({ manifest } = await pushImage(reg, 'src/app', { ref: '1', layer: randomBytes(2048) }));
  proxyHost = await startProxy();
});
afterAll(async () => {
  proxy?.closeAllConnections();
  proxy?.close();
  await reg?.stop();
});

const auth = () => {
  const a = Buffer.from(`${reg.user}:${reg.password}`).toString('base64');
  return JSON.stringify({ auths: { [proxyHost]: { auth: a }, [reg.host]: { auth: a } } });
};

const hostile: Array<{ mode: Exclude<Mode, 'none'>; says: RegExp }> = [
  { mode: 'wrong', says: /but the manifest it sent hashes to sha256:[0-9a-f]{64}; refused/ },
  { mode: 'malformed', says: /which is not sha256:<64 hex digits>; refused/ },
  { mode: 'uppercase', says: /which is not sha256:<64 hex digits>; refused/ },
  { mode: 'other-bytes', says: /but the manifest it sent hashes to sha256:[0-9a-f]{64}; refused/ },
];

describe('image resolve checks the digest against the bytes', () => {
  it('through the stand-in in pass-through mode: the digest of the manifest bytes (the proxy is transparent)', async () => {
    mode = 'none';
    const r = await runCli(['image', 'resolve', `${proxyHost}/src/app:1`], { env: { DOCKER_AUTH_CONFIG: auth() } });
    expect(r.code, r.all).toBe(0);
    expect(r.stdout.trim()).toBe(sha(manifest));
  });

  for (const h of hostile) {
    it(`a ${h.mode} Docker-Content-Digest: exit 1 EREGISTRY_DIGEST, nothing printed, no dotenv`, async () => {
      mode = h.mode;
      const dir = tmp('gci-digest-');
      const r = await runCli(['image', 'resolve', `${proxyHost}/src/app:1`, '--dotenv', join(dir, 'out.env')], { env: { DOCKER_AUTH_CONFIG: auth() } });
      mode = 'none';
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toContain('EREGISTRY_DIGEST');
      expect(r.stderr).toMatch(h.says);
      expect(r.stdout).toBe('');
      expect(existsSync(join(dir, 'out.env')) ? readFileSync(join(dir, 'out.env'), 'utf8') : '').not.toMatch(/IMAGE_DIGEST/);
    });
  }
});

describe("promote's tag resolution (pinDigests) checks the digest", () => {
  const log = new Logger({ sink: { out: () => undefined, err: () => undefined }, gitlab: false, color: false });
  const regs = () => new Registries({ creds: credentialStore({ DOCKER_AUTH_CONFIG: auth() }), attempts: 2, backoffMs: 10 });
  const image = () => ({ name: 'app', ref: { name: 'app', newName: `${proxyHost}/src/app`, tag: '1', line: 1 } });

  it('pins the digest of the bytes when the registry is honest', async () => {
    mode = 'none';
    const [p] = await pinDigests([image()], { regs: async () => regs(), requireDigest: false, copyTo: new Map(), log });
    expect(p!.digest).toBe(sha(manifest));
    expect(p!.how).toBe('resolved');
  });

  for (const h of hostile) {
    it(`refuses a ${h.mode} digest: nothing is pinned`, async () => {
      mode = h.mode;
      const e = await rejected(pinDigests([image()], { regs: async () => regs(), requireDigest: false, copyTo: new Map(), log }));
      mode = 'none';
      expect(e.code).toBe('EREGISTRY_DIGEST');
      expect(e.exitCode).toBe(1);
    });
  }
});

describe('image copy checks the source digest before writing anything', () => {
  for (const m of ['wrong', 'malformed'] as const) {
    it(`a ${m} digest from the source: exit 1, the destination tag never appears in the real registry`, async () => {
      mode = m;
      const dst = `${reg.host}/dst-${m}/app:1`;
      const r = await runCli(['image', 'copy', `${proxyHost}/src/app:1`, dst], { env: { DOCKER_AUTH_CONFIG: auth() } });
      mode = 'none';
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toContain('EREGISTRY_DIGEST');
      const head = await api('HEAD', `/v2/dst-${m}/app/manifests/1`);
      expect(head.status).toBe(404);
    });
  }

  it('the same copy through the honest stand-in succeeds and keeps the digest', async () => {
    mode = 'none';
    const r = await runCli(['image', 'copy', `${proxyHost}/src/app:1`, `${reg.host}/dst-ok/app:1`], { env: { DOCKER_AUTH_CONFIG: auth() } });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr + r.stdout).toContain(sha(manifest));
  });
});
