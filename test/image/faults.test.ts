/**
 * Faults between the CLI and the registry, injected by a proxy in front of a real registry: 503s and dropped
 * connections are retried (bounded) and the operation succeeds; a permanent 503 is exit 75; an interrupted
 * copy can be run again and completes; 404/401 are not retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import { startRegistry, tmp, type Registry } from '../helpers/services.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, docker as getDocker, expectNoSecret, faultProxy, makeBase, pushImage, registryEnv, writeTree, type FaultProxy } from './helpers.js';

let reg: Registry;
let d: Docker;
let proxy: FaultProxy;
let digest: string;
let dockerHost: string;

beforeAll(async () => {
  const x = await getDocker();
  d = x.docker;
  dockerHost = x.host;
  reg = await startRegistry();
  const base = await makeBase(d);
  await d.getImage(base).tag({ repo: `${reg.host}/src/app`, tag: '1' });
  digest = await pushImage(d, `${reg.host}/src/app:1`, reg);
  await d.getImage(`${reg.host}/src/app:1`).remove().catch(() => undefined);
  proxy = await faultProxy(reg.host);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
});

const env = () => ({ ...registryEnv(reg, { CI_REGISTRY: proxy.host }), GITOPS_RETRY_ATTEMPTS: '4' });

describe('registry faults', () => {
  it('retries 503s and dropped connections, then succeeds', async () => {
    proxy.log.length = 0;
    const plan: Array<'pass' | 'drop' | number> = [503, 'drop', 502];
    proxy.decide = (req) => (req.url?.includes('/manifests/') && plan.length ? plan.shift()! : 'pass');
    const r = await runCli(['image', 'resolve', '-v', `${proxy.host}/src/app:1`], { env: env() });
    expect(r.code, r.all).toBe(0);
    expect(r.stdout.trim()).toBe(digest);
    expect(r.stderr).toMatch(/retrying/);
    expect(proxy.log.filter((l) => l.url.includes('/manifests/')).map((l) => l.fault)).toEqual([503, 'drop', 502, 'pass']);
  });

  it('retries broken blob uploads during a copy to another repository', async () => {
    const other = await startRegistry({ user: reg.user, password: reg.password });
    const out = await faultProxy(other.host);
    try {
      let puts = 0;
      out.decide = (req) => {
        if (req.method === 'PUT' && req.url?.includes('/blobs/uploads/')) {
          puts++;
          if (puts === 1) return 'drop';
          if (puts === 2) return 503;
        }
        return 'pass';
      };
      const r = await runCli(['image', 'copy', `${reg.host}/src/app:1`, `${out.host}/dst/app:1`], { env: { ...registryEnv(reg), DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [out.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } }) } });
      expect(r.code, r.all).toBe(0);
      // each retry opened a new upload (POST) before its PUT
      const posts = out.log.filter((l) => l.method === 'POST' && l.url.includes('/blobs/uploads/')).length;
      const okPuts = out.log.filter((l) => l.method === 'PUT' && l.url.includes('/blobs/uploads/') && l.status === 201).length;
      expect(posts).toBe(okPuts + 2);
      const res = await runCli(['image', 'resolve', `${other.host}/dst/app:1`], { env: registryEnv(other) });
      expect(res.stdout.trim()).toBe(digest);
    } finally {
      await out.stop();
      await other.stop();
    }
  });

  it('a permanent 503 is exit 75 after a bounded number of attempts', async () => {
    proxy.log.length = 0;
    proxy.decide = () => 503;
    const r = await runCli(['image', 'resolve', `${proxy.host}/src/app:1`], { env: env() });
    expect(r.code, r.all).toBe(75);
    expect(r.stderr).toContain('EREGISTRY_UNAVAILABLE');
    expect(proxy.log.length).toBe(4);
    expectNoSecret(r.all, reg.password, reg.user);
    proxy.decide = () => 'pass';
  });

  it('an interrupted copy fails with 75, and running it again completes with the same digest', async () => {
    proxy.log.length = 0;
    // every manifest PUT fails: blobs are copied, the tag is not
    proxy.decide = (req) => (req.method === 'PUT' && req.url?.includes('/manifests/') ? 'drop' : 'pass');
    const first = await runCli(['image', 'copy', `${proxy.host}/src/app:1`, `${proxy.host}/resume/app:1`], { env: env() });
    expect(first.code, first.all).toBe(75);
    expect(first.stderr).toContain('EREGISTRY_NETWORK');
    proxy.decide = () => 'pass';
    const missing = await runCli(['image', 'resolve', `${reg.host}/resume/app:1`], { env: registryEnv(reg) });
    expect(missing.code).toBe(1);
    const again = await runCli(['image', 'copy', `${proxy.host}/src/app:1`, `${proxy.host}/resume/app:1`], { env: env() });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toMatch(/0 blob\(s\) uploaded \(0\.0 MB\), 0 mounted/);
    const res = await runCli(['image', 'resolve', `${reg.host}/resume/app:1`], { env: registryEnv(reg) });
    expect(res.stdout.trim()).toBe(digest);
  });

  it('a push through 503s and dropped connections completes (the engine retries), and the digest is read back', async () => {
    const dir = writeTree(tmp('gci-pushfault-'), { Dockerfile: `FROM ${BASE}\nRUN echo ${Date.now()} > /stamp\n` });
    let faults = 0;
    proxy.log.length = 0;
    proxy.decide = (req) => ((req.method === 'PATCH' || req.method === 'PUT') && req.url?.includes('/blobs/uploads/') && faults < 2 ? (faults++ === 0 ? 503 : 'drop') : 'pass');
    const dotenv = join(tmp('gci-pf-'), 'out.env');
    const r = await runCli(['image', 'build', '--push', '--tag', `${proxy.host}/pushfault/app:1`, '--dotenv', dotenv], { env: { ...env(), DOCKER_HOST: dockerHost }, cwd: dir, timeoutMs: 110_000 });
    proxy.decide = () => 'pass';
    expect(r.code, r.all).toBe(0);
    expect(faults).toBe(2);
    const d = /IMAGE_DIGEST=(sha256:[0-9a-f]{64})/.exec(readFileSync(dotenv, 'utf8'))?.[1];
    const res = await runCli(['image', 'resolve', `${reg.host}/pushfault/app:1`], { env: registryEnv(reg) });
    expect(res.stdout.trim()).toBe(d);
  }, 120_000);

  it('two pipelines pushing the same tag at once: a manifest refused with "blob unknown" (the other push still uploading the layer) is pushed again, not a failure', async () => {
    // seen with two gitlab-ci-local pipelines of one branch: the engine found the layer "already exists" (the
    // other pipeline's upload, not finished) and the registry refused the manifest: MANIFEST_BLOB_UNKNOWN
    const dir = writeTree(tmp('gci-pushrace-'), { Dockerfile: `FROM ${BASE}\nRUN echo ${Date.now()} > /stamp\n` });
    let faults = 0;
    proxy.log.length = 0;
    proxy.decide = (req) => (req.method === 'PUT' && req.url?.includes('/manifests/') && faults++ === 0 ? { status: 400, code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry' } : 'pass');
    const dotenv = join(tmp('gci-pr-'), 'out.env');
    const r = await runCli(['image', 'build', '--push', '--tag', `${proxy.host}/pushrace/app:1`, '--dotenv', dotenv], { env: { ...env(), DOCKER_HOST: dockerHost }, cwd: dir, timeoutMs: 110_000 });
    proxy.decide = () => 'pass';
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toMatch(/blob unknown.*pushing again/);
    const d = /IMAGE_DIGEST=(sha256:[0-9a-f]{64})/.exec(readFileSync(dotenv, 'utf8'))?.[1];
    const res = await runCli(['image', 'resolve', `${reg.host}/pushrace/app:1`], { env: registryEnv(reg) });
    expect(res.stdout.trim()).toBe(d);
  }, 120_000);

  it('does not retry 404 or 401', async () => {
    proxy.log.length = 0;
    const r = await runCli(['image', 'resolve', `${proxy.host}/src/app:missing`], { env: env() });
    expect(r.code).toBe(1);
    expect(proxy.log.filter((l) => l.url.includes('/manifests/')).length).toBe(1);
    proxy.log.length = 0;
    const bad = await runCli(['image', 'resolve', `${proxy.host}/src/app:1`], { env: { ...env(), CI_REGISTRY_PASSWORD: 'wrong-password-x' } });
    expect(bad.code).toBe(3);
    expect(proxy.log.filter((l) => l.url.includes('/manifests/')).length).toBeLessThanOrEqual(2); // one fresh-auth retry at most
  });
});
