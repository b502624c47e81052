/**
 * A config repo URL whose server redirects to another host: git follows the redirect of its first request
 * (http.followRedirects=initial) and asks the credential helper again, for the new host. Ours answers only
 * for the remote's own host and scheme, so the token never reaches the other server; the job fails with
 * exit 3 and says where it was redirected. Real git against two real HTTP servers on loopback (127.0.0.1
 * redirecting to 127.0.0.2, which asks for credentials and records what it is sent).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from '../helpers/cli.js';

const TOKEN = 'glpat-redirect-SECRET-8c1f';
const seen: Array<{ url: string; authorization?: string }> = [];
let a: http.Server;
let b: http.Server;

beforeAll(async () => {
  b = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="elsewhere"' });
    res.end('HTTP Basic: Access denied\n');
  });
  await new Promise<void>((r) => b.listen(0, '0.0.0.0', r));
  a = http.createServer((req, res) => {
    res.writeHead(302, { Location: `http://127.0.0.2:${(b.address() as AddressInfo).port}${req.url}` });
    res.end();
  });
  await new Promise<void>((r) => a.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => a.close(r));
  await new Promise((r) => b.close(r));
});

describe('credentials and redirects', () => {
  it('a redirect to another host gets no token: exit 3, naming the redirect; the other server saw no credentials', async () => {
    const repo = `http://127.0.0.1:${(a.address() as AddressInfo).port}/shovel/config.git`;
    const res = await runCli(['bump', '--repo', repo, '--branch', 'main', '--dir', '.kubernetes/overlays/staging', '--image', 'registry.example.com/shovel/app:1.0'], {
      env: { GITOPS_GIT_TOKEN: TOKEN, GITOPS_GIT_USER: 'deployer' },
    });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain('EGIT_AUTH');
    expect(res.stderr).toMatch(/redirected to 127\.0\.0\.2:\d+, which asked for credentials: they are only given to 127\.0\.0\.1:\d+/);
    // git did follow the redirect (the other server was asked), and was never given the token
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) {
      const decoded = s.authorization?.startsWith('Basic ') ? Buffer.from(s.authorization.slice(6), 'base64').toString() : (s.authorization ?? '');
      expect(`${s.authorization ?? ''} ${decoded}`).not.toContain(TOKEN);
      expect(s.authorization).toBeUndefined();
    }
    expect(res.stderr + res.stdout).not.toContain(TOKEN);
  });
});
