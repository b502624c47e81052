/**
 * `image resolve` and `image copy` through the registry API, against real registries (htpasswd; TLS with a
 * self-signed CA), a counting proxy, and a Bearer-token front: digests preserved, blobs mounted across
 * repositories, nothing uploaded twice, indexes copied with their children, dotenv, clear errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import { startRegistry, tmp, type Registry } from '../helpers/services.js';
import { registryApi, sha256 } from '../helpers/registry-api.js';
import { docker as getDocker, expectNoSecret, faultProxy, makeBase, pushImage, registryEnv, type FaultProxy } from './helpers.js';

let reg: Registry;
let tls: Registry;
let d: Docker;
let proxy: FaultProxy;
let srcDigest: string;

const api = registryApi;

beforeAll(async () => {
  const x = await getDocker();
  d = x.docker;
  [reg, tls] = await Promise.all([startRegistry(), startRegistry({ tls: true, user: 'tlsuser' })]);
  const base = await makeBase(d);
  const ref = `${reg.host}/src/app:1`;
  await d.getImage(base).tag({ repo: `${reg.host}/src/app`, tag: '1' });
  srcDigest = await pushImage(d, ref, reg);
  await d.getImage(ref).remove().catch(() => undefined);
  proxy = await faultProxy(reg.host);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await tls?.stop();
});

describe('image resolve', () => {
  it('prints the digest; a missing tag or repository is exit 1 with a clear message', async () => {
    const ok = await runCli(['image', 'resolve', `${reg.host}/src/app:1`], { env: registryEnv(reg) });
    expect(ok.code, ok.all).toBe(0);
    expect(ok.stdout).toBe(`${srcDigest}\n`);
    const missing = await runCli(['image', 'resolve', `${reg.host}/src/app:nope`], { env: registryEnv(reg) });
    expect(missing.code, missing.all).toBe(1);
    expect(missing.stderr).toContain(`${reg.host}/src/app:nope not found`);
    expect(missing.stderr).toContain('EREGISTRY_NOT_FOUND');
    const norepo = await runCli(['image', 'resolve', `${reg.host}/no/such:1`], { env: registryEnv(reg) });
    expect(norepo.code, norepo.all).toBe(1);
    const bad = await runCli(['image', 'resolve', 'Not A Ref'], { env: {} });
    expect(bad.code).toBe(2);
  });
});

describe('image copy', () => {
  it('copies across repositories on one registry by mounting blobs: same digest, nothing uploaded, twice', async () => {
    proxy.log.length = 0;
    const dotenv = join(tmp('gci-copy-'), 'copy.env');
    const r = await runCli(['image', 'copy', `${proxy.host}/src/app:1`, `${proxy.host}/dst/app:release`, '--dotenv', dotenv], { env: registryEnv(reg, { CI_REGISTRY: proxy.host }) });
    expect(r.code, r.all).toBe(0);
    const uploads = proxy.log.filter((l) => l.method === 'PUT' && l.url.includes('/blobs/uploads/'));
    const mounts = proxy.log.filter((l) => l.method === 'POST' && l.url.includes('mount='));
    expect(uploads).toEqual([]);
    expect(mounts.length).toBeGreaterThan(0);
    expect(mounts.every((m) => m.status === 201)).toBe(true);
    expect(readFileSync(dotenv, 'utf8')).toBe(`IMAGE=${proxy.host}/dst/app@${srcDigest}\nIMAGE_TAG=${proxy.host}/dst/app:release\nIMAGE_DIGEST=${srcDigest}\n`);
    const res = await runCli(['image', 'resolve', `${reg.host}/dst/app:release`], { env: registryEnv(reg) });
    expect(res.stdout.trim()).toBe(srcDigest);

    // again, to another tag: every blob is already there: no mount, no upload
    proxy.log.length = 0;
    const again = await runCli(['image', 'copy', `${proxy.host}/src/app:1`, `${proxy.host}/dst/app:release-2`], { env: registryEnv(reg, { CI_REGISTRY: proxy.host }) });
    expect(again.code, again.all).toBe(0);
    expect(proxy.log.filter((l) => l.method === 'POST' || (l.method === 'PUT' && l.url.includes('/blobs/')))).toEqual([]);
    expect(again.stderr).toMatch(/0 blob\(s\) uploaded .*0 mounted, \d+ already there/);
  });

  it('copies to another registry over TLS with --ca-file and explicit credentials; a second copy uploads nothing', async () => {
    const env = { ...registryEnv(reg), GITOPS_REGISTRY_PASSWORD: tls.password };
    const noCa = await runCli(['image', 'copy', `${reg.host}/src/app:1`, `${tls.host}/promoted/app:1`, '--registry-user', tls.user], { env });
    // loopback alone does not skip verification: the self-signed certificate is refused
    expect(noCa.code, noCa.all).toBe(1);
    expect(noCa.stderr).toContain('EREGISTRY_TLS');
    expect(noCa.stderr).toContain('--ca-file');
    const r = await runCli(['image', 'copy', `${reg.host}/src/app:1`, `${tls.host}/promoted/app:1`, '--registry-user', tls.user, '--ca-file', tls.caFile!], { env });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toMatch(/[1-9]\d* blob\(s\) uploaded/);
    expectNoSecret(r.all, tls.password, tls.user);
    expectNoSecret(r.all, reg.password, reg.user);
    const res = await runCli(['image', 'resolve', `${tls.host}/promoted/app:1`, '--registry-user', tls.user, '--ca-file', tls.caFile!], { env });
    expect(res.stdout.trim()).toBe(srcDigest);
    const again = await runCli(['image', 'copy', `${reg.host}/src/app:1`, `${tls.host}/promoted/app:2`, '--registry-user', tls.user, '--ca-file', tls.caFile!], { env });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toMatch(/0 blob\(s\) uploaded/);
  });

  it('copies an index with its child manifests, byte for byte', async () => {
    const m = await api(reg, 'GET', `/v2/src/app/manifests/${srcDigest}`);
    const child = Buffer.from(await m.arrayBuffer());
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: m.headers.get('content-type'), digest: srcDigest, size: child.length, platform: { architecture: 'amd64', os: 'linux' } }],
      }),
    );
    // the index's child lives in src/app; put it in src/multi too (the index's repository must hold it)
    const r0 = await runCli(['image', 'copy', `${reg.host}/src/app@${srcDigest}`, `${reg.host}/src/multi:child`], { env: registryEnv(reg) });
    expect(r0.code, r0.all).toBe(0);
    const put = await api(reg, 'PUT', '/v2/src/multi/manifests/v1', index, 'application/vnd.oci.image.index.v1+json');
    expect(put.status, await put.text()).toBe(201);
    const indexDigest = sha256(index);
    const r = await runCli(['image', 'copy', `${reg.host}/src/multi:v1`, `${tls.host}/multi/app:v1`, '--registry-user', tls.user, '--ca-file', tls.caFile!], { env: { ...registryEnv(reg), GITOPS_REGISTRY_PASSWORD: tls.password } });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('copied 2 manifest(s)');
    const res = await runCli(['image', 'resolve', `${tls.host}/multi/app:v1`, '--registry-user', tls.user, '--ca-file', tls.caFile!], { env: { GITOPS_REGISTRY_PASSWORD: tls.password } });
    expect(res.stdout.trim()).toBe(indexDigest);
    const childThere = await runCli(['image', 'resolve', `${tls.host}/multi/app@${srcDigest}`, '--registry-user', tls.user, '--ca-file', tls.caFile!], { env: { GITOPS_REGISTRY_PASSWORD: tls.password } });
    expect(childThere.code, childThere.all).toBe(0);
  });

  it('speaks Bearer token auth (realm/service/scope) and maps a refused token to exit 3 without leaking the password', async () => {
    const front = await faultProxy(reg.host, { bearer: { user: reg.user, password: reg.password } });
    try {
      const env = { ...registryEnv(reg), CI_REGISTRY: front.host };
      const r = await runCli(['image', 'copy', `${front.host}/src/app:1`, `${front.host}/bearer/app:1`], { env });
      expect(r.code, r.all).toBe(0);
      const tokenReqs = front.log.filter((l) => l.url.startsWith('/token'));
      expect(tokenReqs.length).toBeGreaterThan(0);
      expect(tokenReqs.some((l) => decodeURIComponent(l.url).includes('scope=repository:bearer/app:pull,push'))).toBe(true);
      const res = await runCli(['image', 'resolve', `${front.host}/bearer/app:1`], { env });
      expect(res.stdout.trim()).toBe(srcDigest);
      const wrong = 'not-the-password-' + Date.now();
      const bad = await runCli(['image', 'resolve', `${front.host}/bearer/app:1`], { env: { ...env, CI_REGISTRY_PASSWORD: wrong } });
      expect(bad.code, bad.all).toBe(3);
      expect(bad.stderr).toContain('EREGISTRY_AUTH');
      expectNoSecret(bad.all, wrong, reg.user);
    } finally {
      await front.stop();
    }
  });

  it('masks the bearer token the token endpoint issued: a registry error quoting it shows no token', async () => {
    const front = await faultProxy(reg.host, { bearer: { user: reg.user, password: reg.password } });
    try {
      const env = { ...registryEnv(reg), CI_REGISTRY: front.host };
      let quoted = '';
      // a registry that echoes the request's credential in its error (a proxy's or a registry's verbose error)
      front.decide = (req) => {
        const b = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
        if (!b || !req.url?.includes('/manifests/')) return 'pass';
        quoted = b[1]!;
        return { status: 400, code: 'DENIED', message: `token ${quoted} refused for this manifest` };
      };
      const r = await runCli(['image', 'resolve', `${front.host}/src/app:1`, '--verbose'], { env });
      expect(r.code, r.all).not.toBe(0);
      expect(quoted.length).toBeGreaterThan(8);
      expect(r.all).toContain('refused for this manifest');
      expectNoSecret(r.all, quoted);
    } finally {
      await front.stop();
    }
  });
});
