/**
 * Auth, transport and secrecy of the argocd commands against the double: 401/403 with clear messages, the
 * token never printed, a dropped watch stream resumed from the last resourceVersion, 503s retried (and
 * exit 75 when they last), polling when the stream route is missing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup, type Fixture, stopFixtures } from './fixture.js';

let fx: Fixture | undefined;
afterEach(stopFixtures);

function expectNoSecret(all: string, secret: string) {
  expect(all).not.toContain(secret);
  expect(all).not.toContain(encodeURIComponent(secret));
  expect(all).not.toContain(Buffer.from(secret).toString('base64'));
  expect(all).not.toContain(Buffer.from(secret).toString('base64url').slice(0, 24));
}

describe('argocd auth', () => {
  it('401 with an unknown (expired) token: exit 3, a clear message, the token never printed', async () => {
    fx = await setup();
    const stale = fx.argo.issueToken('ci-bot').replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')); // JWT-shaped, not valid here
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip(), '--verbose'], { ARGOCD_AUTH_TOKEN: stale });
    expect(r.code, r.all).toBe(3);
    expect(r.stderr).toContain('Argo CD refused the credentials (401 invalid session: token signature is invalid)');
    expect(r.stderr).toContain('EARGOCD_UNAUTHENTICATED');
    expect(r.stderr).toContain('ARGOCD_AUTH_TOKEN');
    expectNoSecret(r.all, stale);
  });

  it('401 for a non-JWT token (Argo CD ignores it: no session information)', async () => {
    fx = await setup();
    const r = await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging'], { ARGOCD_AUTH_TOKEN: 'not-a-jwt-token-value' });
    expect(r.code, r.all).toBe(3);
    expect(r.stderr).toContain('401 no session information');
    expectNoSecret(r.all, 'not-a-jwt-token-value');
  });

  it('403: exit 3 naming the RBAC rights; a missing app without --project is a 403 too, with --project a 404', async () => {
    fx = await setup();
    fx.argo.faults.auth = 'forbidden';
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip()]);
    expect(r.code, r.all).toBe(3);
    expect(r.stderr).toContain('Argo CD denied GET on application "shovel-staging" (403 permission denied)');
    expect(r.stderr).toContain('`applications, get`');
    fx.argo.faults.auth = undefined;
    const missing = await fx.cli(['argocd', 'wait', '--app', 'no-such-app', '--revision', fx.tip()]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('an app that does not exist');
    const nf = await fx.cli(['argocd', 'wait', '--app', 'no-such-app', '--project', 'default', '--revision', fx.tip()]);
    expect(nf.code, nf.all).toBe(2);
    expect(nf.stderr).toContain('applications.argoproj.io "no-such-app" not found');
  });

  it('logs in with ARGOCD_USERNAME/ARGOCD_PASSWORD; a bad password is exit 3 and neither password nor token is printed', async () => {
    const password = 'S3cret/pass+word=';
    fx = await setup({ users: { 'ci-bot': password } });
    const ok = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip(), '--verbose'], { ARGOCD_AUTH_TOKEN: '', ARGOCD_USERNAME: 'ci-bot', ARGOCD_PASSWORD: password });
    expect(ok.code, ok.all).toBe(0);
    expect(fx.argo.requests.some((q) => q.method === 'POST' && q.path === '/api/v1/session')).toBe(true);
    expectNoSecret(ok.all, password);
    const bad = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip(), '--verbose'], { ARGOCD_AUTH_TOKEN: '', ARGOCD_USERNAME: 'ci-bot', ARGOCD_PASSWORD: `${password}x` });
    expect(bad.code, bad.all).toBe(3);
    expect(bad.stderr).toContain('Invalid username or password');
    expectNoSecret(bad.all, `${password}x`);
  });

  it('a login that meets 503s is retried', async () => {
    fx = await setup({ users: { 'ci-bot': 'pw-7654321' } });
    fx.argo.faults.unavailable = 2;
    const r = await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging'], { ARGOCD_AUTH_TOKEN: '', ARGOCD_USERNAME: 'ci-bot', ARGOCD_PASSWORD: 'pw-7654321' });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('Argo CD login: Argo CD answered 503');
  });

  it('a real token given as a flag, a failing call with --verbose: the token is in no output (raw, URL-encoded, base64)', async () => {
    fx = await setup();
    fx.argo.faults.unavailable = 1000;
    const token = fx.argo.token;
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip(), '--auth-token', token, '--retry-for', '1s', '--verbose'], { ARGOCD_AUTH_TOKEN: '' });
    expect(r.code, r.all).toBe(75);
    expect(r.stderr).toContain('Argo CD answered 503');
    expectNoSecret(r.all, token);
  });
});

describe('argocd transport', () => {
  it('a dropped watch stream is resumed from the last resourceVersion', async () => {
    fx = await setup();
    fx.argo.faults.dropStream = { afterEvents: 2, times: 3 };
    const sha = fx.bump('11.0.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '30s', '--verbose']);
    expect(r.code, r.all).toBe(0);
    const watches = fx.argo.requests.filter((q) => q.path === '/api/v1/stream/applications');
    expect(watches.length).toBeGreaterThanOrEqual(3);
    expect(watches.slice(1).every((q) => /resourceVersion=\d+/.test(q.query))).toBe(true);
    expect(r.stderr).toMatch(/watch ended \(server, \d events\); reconnecting from resourceVersion \d+/);
  });

  it('a stalled watch stream (accepted, silent) is reopened after --stream-idle-timeout', async () => {
    fx = await setup();
    fx.argo.faults.stallStream = 2;
    const sha = fx.bump('11.5.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--stream-idle-timeout', '500ms', '--timeout', '30s', '--verbose']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('watch ended (idle, 0 events)');
    expect(fx.argo.faults.stallStream).toBe(0);
  });

  it('503s are retried and the wait still succeeds', async () => {
    fx = await setup();
    const sha = fx.bump('12.0.0');
    fx.argo.faults.unavailable = 3;
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '30s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('Argo CD unavailable (Argo CD answered 503');
    expect(fx.argo.faults.unavailable).toBe(0);
  });

  it('503 that lasts longer than --retry-for: exit 75 (transient)', async () => {
    fx = await setup();
    fx.argo.faults.unavailable = 10_000;
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip(), '--retry-for', '1s']);
    expect(r.code, r.all).toBe(75);
    expect(r.stderr).toContain('EARGOCD_UNAVAILABLE');
  });

  it('an unreachable server: exit 75', async () => {
    fx = await setup();
    const url = fx.argo.url;
    await fx.stop();
    const r = await fx.cli(['argocd', 'refresh', '--app', 'shovel-staging'], { ARGOCD_SERVER: url });
    expect(r.code, r.all).toBe(75);
    expect(r.stderr).toContain('cannot reach Argo CD: ECONNREFUSED');
    fx = undefined;
  });

  it('falls back to polling when the watch stream route is missing', async () => {
    fx = await setup();
    fx.argo.faults.streamUnavailable = true;
    const sha = fx.bump('13.0.0');
    const r = await fx.cli(['argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--poll-interval', '200ms', '--timeout', '30s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('the watch stream is not available');
    expect(r.stderr).toContain('polling every 200ms');
  });

  it('reports every configuration problem at once (exit 2)', async () => {
    const r = await (await import('../helpers/cli.js')).runCli(['argocd', 'wait', '--app', 'Bad_Name', '--revision', 'abc123', '--timeout', 'soon'], { env: {} });
    expect(r.code, r.all).toBe(2);
    expect(r.stderr).toContain('configuration problems');
    expect(r.stderr).toContain('--app "Bad_Name" is not an application name');
    expect(r.stderr).toContain('--revision "abc123" is not a full commit SHA');
    expect(r.stderr).toContain('--timeout: "soon" is not a duration');
    expect(r.stderr).toContain('no Argo CD server');
    expect(r.stderr).toContain('no credentials');
  });
});

describe('argocd TLS', () => {
  it('verifies the server certificate: unknown CA is exit 2 with the hint; --ca-file and --insecure work; host:port means https', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'gci-argocd-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
    fx = await setup({ tls: { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') } });
    const hostPort = fx.argo.url.replace('https://', '');
    const args = ['argocd', 'wait', '--app', 'shovel-staging', '--revision', fx.tip()];
    const bad = await fx.cli(args, { ARGOCD_SERVER: hostPort });
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('EARGOCD_TLS');
    expect(bad.stderr).toContain('--ca-file');
    const ok = await fx.cli([...args, '--ca-file', join(dir, 'c.pem')], { ARGOCD_SERVER: hostPort });
    expect(ok.code, ok.all).toBe(0);
    const viaEnv = await fx.cli(args, { ARGOCD_SERVER: hostPort, ARGOCD_CA_FILE: join(dir, 'c.pem') });
    expect(viaEnv.code, viaEnv.all).toBe(0);
    const insecure = await fx.cli([...args, '--insecure'], { ARGOCD_SERVER: hostPort });
    expect(insecure.code, insecure.all).toBe(0);
    expect(insecure.stderr).toContain('TLS certificate verification is off');
    const plain = await fx.cli([...args, '--plaintext', '--request-timeout', '1s', '--retry-for', '1s'], { ARGOCD_SERVER: hostPort });
    expect(plain.code).not.toBe(0); // plain HTTP to a TLS port: no valid answer
  });
});
