/**
 * No success that was not read back (High 5 of issue #10): `image copy` to a destination that answers 200
 * text/html to everything (an SSO page), and to one that accepts every upload but stores nothing, must fail
 * (exit 1), write no dotenv IMAGE, and leak no registry password; the same copy to the real registry succeeds
 * and is read back. The source image lives in the real registry (pushed through its API).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startRegistry, tmp, type Registry } from '../helpers/services.js';
import { pushImage, registryApi, sha256 } from '../helpers/registry-api.js';
import { runAbused } from './abuse.js';

const sha = sha256;
let reg: Registry;
const servers: http.Server[] = [];

const api = (method: string, url: string) => registryApi(reg, method, url);

/** an HTTP server on loopback; returns host:port */
async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  reg = await startRegistry({ user: 'reguser', password: `reg+pw=${randomBytes(6).toString('hex')}` });
  await pushImage(reg, 'src/app', { ref: '1', layer: randomBytes(2048) });
});
afterAll(async () => {
  for (const s of servers) s.closeAllConnections(), s.close();
  await reg?.stop();
});

const destinations: Array<{ name: string; start: () => Promise<string>; says: string }> = [
  {
    name: 'a page that answers 200 text/html to everything (an SSO login page)',
    start: () =>
      serve((req, res) => {
        req.resume();
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<html><body>Sign in</body></html>');
      }),
    says: 'does not serve the registry API',
  },
  {
    name: 'a registry that accepts every upload and stores nothing',
    start: () =>
      serve((req, res) => {
        req.resume();
        const h = { 'Docker-Distribution-API-Version': 'registry/2.0', 'Content-Type': 'application/json' };
        const u = req.url ?? '';
        if (req.method === 'GET' && u === '/v2/') return res.writeHead(200, h).end('{}');
        if (req.method === 'POST' && /\/blobs\/uploads\/$/.test(u)) return res.writeHead(202, { ...h, Location: `${u}${randomBytes(4).toString('hex')}` }).end();
        if (req.method === 'PUT' && /\/blobs\/uploads\//.test(u)) return res.writeHead(201, h).end();
        if (req.method === 'PUT' && /\/manifests\//.test(u)) {
          let body = Buffer.alloc(0);
          req.on('data', (d) => (body = Buffer.concat([body, d])));
          return req.on('end', () => res.writeHead(201, { ...h, 'Docker-Content-Digest': sha(body) }).end());
        }
        res.writeHead(404, h).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
      }),
    says: 'EREGISTRY_NOT_STORED',
  },
];

describe('image copy: no success that was not read back', () => {
  for (const dst of destinations) {
    it(`to ${dst.name}: exit 1, no dotenv IMAGE, no secret`, async () => {
      const host = await dst.start();
      const out = join(tmp('gci-copy-'), 'copy.env');
      const res = await runAbused(['image', 'copy', `${reg.host}/src/app:1`, `${host}/dst/app:1`, '--dotenv', out], {
        env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') }, [host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } }) },
        secret: reg.password,
        users: [reg.user],
        dirs: [join(out, '..')],
      });
      expect(res.code, res.all).toBe(1);
      expect(res.stderr).toContain(dst.says);
      expect(existsSync(out) ? readFileSync(out, 'utf8') : '').not.toContain('IMAGE=');
    });
  }

  it('to the real registry: exit 0 after reading the manifest back by digest', async () => {
    const out = join(tmp('gci-copy-'), 'copy.env');
    const res = await runAbused(['image', 'copy', `${reg.host}/src/app:1`, `${reg.host}/dst/app:2`, '--dotenv', out], {
      env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } }) },
      secret: reg.password,
      users: [reg.user],
    });
    expect(res.code, res.all).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/IMAGE=.*\/dst\/app@sha256:[0-9a-f]{64}/);
  });
});
