/**
 * Helpers for the image tests: a local busybox base image (no Docker Hub), a fault-injecting HTTP proxy in
 * front of a registry (503s, dropped connections, request log, optional Bearer token auth), and the secrecy
 * assertion.
 */
import http from 'node:http';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { expect } from 'vitest';
import { tmp, useDocker } from '../helpers/services.js';

export const BASE = 'gci-test/busybox:1';

export async function docker(): Promise<{ docker: Docker; host: string }> {
  const d = await useDocker();
  return { docker: new Docker({ socketPath: d.socketPath }), host: d.host };
}

export function follow(docker: Docker, s: NodeJS.ReadableStream): Promise<Array<Record<string, unknown>>> {
  return new Promise((res, rej) =>
    docker.modem.followProgress(s, (err: Error | null, out: Array<Record<string, unknown>>) => {
      if (err) return rej(err);
      const e = out.find((o) => o.error);
      return e ? rej(new Error(String(e.error))) : res(out);
    }),
  );
}

/** FROM scratch + busybox-static, with the applets installed: the base of every test image */
export async function makeBase(d: Docker): Promise<string> {
  try {
    await d.getImage(BASE).inspect();
    return BASE;
  } catch {
    /* build it */
  }
  const ctx = tmp('gci-bb-');
  copyFileSync('/bin/busybox', join(ctx, 'busybox'));
  writeFileSync(
    join(ctx, 'Dockerfile'),
    'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN mkdir -p /tmp /etc /root && echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd\nENV PATH=/bin\nCMD ["/bin/sh"]\n',
  );
  await follow(d, await d.buildImage({ context: ctx, src: ['Dockerfile', 'busybox'] }, { t: BASE }));
  return BASE;
}

export function writeTree(dir: string, files: Record<string, string>): string {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  return dir;
}

/** pass it on, drop the connection, answer a status (a generic UNAVAILABLE error), or answer a status with the registry error given */
export type Fault = 'pass' | 'drop' | number | { status: number; code: string; message: string };

export interface ProxyLog {
  method: string;
  url: string;
  status?: number;
  fault?: Fault;
}

export interface FaultProxy {
  host: string;
  log: ProxyLog[];
  /** decide what to do with the n-th request (0-based); default pass */
  decide: (req: http.IncomingMessage, n: number) => Fault;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of a (plain HTTP) registry. Faults: a status code (answered without forwarding) or
 * 'drop' (the connection is destroyed without an answer). With `bearer`, it also plays a token server: the
 * registry's basic auth is hidden behind WWW-Authenticate: Bearer and a /token endpoint that checks the same
 * credentials, as GitLab's registry does.
 */
export async function faultProxy(target: string, opts: { bearer?: { user: string; password: string } } = {}): Promise<FaultProxy> {
  const log: ProxyLog[] = [];
  const tokens = new Set<string>();
  let n = 0;
  const p: FaultProxy = { host: '', log, decide: () => 'pass', stop: async () => undefined };
  const server = http.createServer((req, res) => {
    const entry: ProxyLog = { method: req.method ?? '', url: req.url ?? '' };
    log.push(entry);
    const f = p.decide(req, n++);
    entry.fault = f;
    if (f === 'drop') {
      req.socket.destroy();
      return;
    }
    if (typeof f === 'number' || typeof f === 'object') {
      req.resume();
      const status = typeof f === 'number' ? f : f.status;
      entry.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [typeof f === 'number' ? { code: 'UNAVAILABLE', message: 'injected fault' } : { code: f.code, message: f.message }] }));
      return;
    }
    const headers = { ...req.headers };
    if (opts.bearer) {
      if (req.url?.startsWith('/token')) {
        req.resume();
        const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
        const ok = m && Buffer.from(m[1], 'base64').toString() === `${opts.bearer.user}:${opts.bearer.password}`;
        entry.status = ok ? 200 : 401;
        if (!ok) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
          return;
        }
        const t = randomBytes(16).toString('hex');
        tokens.add(t);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ token: t, expires_in: 300 }));
        return;
      }
      const b = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      if (!b || !tokens.has(b[1])) {
        req.resume();
        entry.status = 401;
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${p.host}/token",service="test-registry",scope="repository:x:pull"`, 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
      headers.authorization = `Basic ${Buffer.from(`${opts.bearer.user}:${opts.bearer.password}`).toString('base64')}`;
    }
    const up = http.request({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: req.url, headers }, (ur) => {
      entry.status = ur.statusCode;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  p.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.stop = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return p;
}

/** the secret must appear nowhere: raw, URL-encoded, base64 (alone and as user:secret) */
export function expectNoSecret(text: string, secret: string, user?: string): void {
  const forms = [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')];
  if (user) forms.push(Buffer.from(`${user}:${secret}`).toString('base64'), encodeURIComponent(`${user}:${secret}`));
  for (const f of forms) expect(text.includes(f), `secret form ${JSON.stringify(f.slice(0, 4))}… leaked`).toBe(false);
}

export function registryEnv(reg: { host: string; user: string; password: string }, extra: Record<string, string> = {}): Record<string, string> {
  return { CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: reg.password, ...extra };
}

/** push a local image with dockerode; returns the digest the engine reports */
export async function pushImage(d: Docker, ref: string, reg: { host: string; user: string; password: string }): Promise<string> {
  const s = (await d.getImage(ref).push({ authconfig: { username: reg.user, password: reg.password, serveraddress: reg.host } } as never)) as unknown as NodeJS.ReadableStream;
  const out = await follow(d, s);
  return out.map((o) => (o.aux as { Digest?: string } | undefined)?.Digest).find(Boolean)!;
}
