/**
 * `image index`: one multi-platform image from single-platform images already in the repository, against the
 * real registry (htpasswd). The single-platform images are pushed through the registry API here (a config
 * blob that declares the platform, one layer, a manifest), as a runner of each architecture would push its
 * build: no engine needed. The index is read back and resolves as the tag's digest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { startRegistry, tmp, type Registry } from '../helpers/services.js';
import { pushImage as pushRegistryImage, registryAuth, sha256 } from '../helpers/registry-api.js';
import { expectNoSecret, registryEnv } from './helpers.js';

let reg: Registry;
const REPO = 'group/runner';
const sha = sha256;

const auth = registryAuth;

/** a single-platform image: returns its manifest digest */
async function pushImage(platform: Record<string, string>, mediaType?: string, config?: Buffer): Promise<string> {
  const cfg = config ?? Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: [sha(Buffer.from('x'))] }, config: {} }));
  return (await pushRegistryImage(reg, REPO, { mediaType, config: cfg, layer: gzipSync(Buffer.from(`layer of ${JSON.stringify(platform)}`)) })).digest;
}

async function getManifest(ref: string): Promise<{ type: string; body: Record<string, unknown>; digest: string }> {
  const r = await fetch(`${reg.url}/v2/${REPO}/manifests/${ref}`, {
    headers: { ...auth(reg), Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const bytes = Buffer.from(await r.arrayBuffer());
  return { type: r.headers.get('content-type') ?? '', body: JSON.parse(bytes.toString()) as Record<string, unknown>, digest: sha(bytes) };
}

beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.stop();
});

describe('image index', () => {
  it('lists each image with the platform its config declares, under the tag; read back; dotenv', async () => {
    const amd = await pushImage({ os: 'linux', architecture: 'amd64' });
    const arm = await pushImage({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    const dotenv = join(tmp('gci-index-'), 'index.env');
    const r = await runCli(['image', 'index', `${reg.host}/${REPO}:1.0.0`, `${reg.host}/${REPO}@${amd}`, `${reg.host}/${REPO}@${arm}`, '--dotenv', dotenv], { env: registryEnv(reg) });
    expect(r.code, r.all).toBe(0);
    const back = await getManifest('1.0.0');
    expect(back.type).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(back.body.manifests).toEqual([
      { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: amd, size: expect.any(Number), platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: arm, size: expect.any(Number), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    expect(r.stderr).toContain(`${reg.host}/${REPO}:1.0.0 is ${back.digest}: linux/amd64, linux/arm64/v8`);
    expect(readFileSync(dotenv, 'utf8')).toContain(`IMAGE_DIGEST=${back.digest}`);
    // what a pull resolves for the tag is the index
    const resolved = await runCli(['image', 'resolve', `${reg.host}/${REPO}:1.0.0`], { env: registryEnv(reg) });
    expect(resolved.stdout.trim()).toBe(back.digest);
    expectNoSecret(r.all, reg.password, reg.user);
  });

  it('makes an OCI index when a child is an OCI manifest', async () => {
    const amd = await pushImage({ os: 'linux', architecture: 'amd64' }, 'application/vnd.oci.image.manifest.v1+json');
    const r = await runCli(['image', 'index', `${reg.host}/${REPO}:oci`, `${reg.host}/${REPO}@${amd}`], { env: registryEnv(reg) });
    expect(r.code, r.all).toBe(0);
    expect((await getManifest('oci')).type).toBe('application/vnd.oci.image.index.v1+json');
  });

  it('refuses, before pushing anything: a tag instead of a digest, another repository, two images of one platform, an index as a child, a config without a platform', async () => {
    const amd = await pushImage({ os: 'linux', architecture: 'amd64' });
    const amd2 = await pushImage({ os: 'linux', architecture: 'amd64', created: '2026-12-06T00:00:00Z' });
    const noPlatform = await pushImage({}, undefined, Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [] } })));
    const env = registryEnv(reg);
    const cases: Array<[string[], number, RegExp]> = [
      [[`${reg.host}/${REPO}:bad`, `${reg.host}/${REPO}:1.0.0`], 2, /needs a digest/],
      [[`${reg.host}/${REPO}:bad`, `${reg.host}/other/repo@${amd}`], 2, /not in DST's repository/],
      [[`${reg.host}/${REPO}@${amd}`, `${reg.host}/${REPO}@${amd}`], 2, /needs a tag and no digest/],
      [[`${reg.host}/${REPO}:bad`, `${reg.host}/${REPO}@${amd}`, `${reg.host}/${REPO}@${amd2}`], 2, /two images for linux\/amd64/],
      [[`${reg.host}/${REPO}:bad`, `${reg.host}/${REPO}@${noPlatform}`], 1, /declares no os and architecture/],
      [[`${reg.host}/${REPO}:bad`], 2, /at least one SRC/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await runCli(['image', 'index', ...args], { env });
      expect(r.code, `${args.join(' ')}\n${r.all}`).toBe(code);
      expect(r.stderr).toMatch(msg);
    }
    const idx = (await getManifest('1.0.0')).digest;
    const nested = await runCli(['image', 'index', `${reg.host}/${REPO}:bad`, `${reg.host}/${REPO}@${idx}`], { env });
    expect(nested.code, nested.all).toBe(2);
    expect(nested.stderr).toMatch(/already an index/);
    // nothing was pushed under the tag
    expect((await fetch(`${reg.url}/v2/${REPO}/manifests/bad`, { method: 'HEAD', headers: auth(reg) })).status).toBe(404);
  });

  it('a wrong password is exit 3 and never printed', async () => {
    const amd = await pushImage({ os: 'linux', architecture: 'amd64' });
    const secret = 'n0t-the-Password-x9';
    const r = await runCli(['image', 'index', `${reg.host}/${REPO}:auth`, `${reg.host}/${REPO}@${amd}`], { env: { ...registryEnv(reg), CI_REGISTRY_PASSWORD: secret } });
    expect(r.code, r.all).toBe(3);
    expectNoSecret(r.all, secret, reg.user);
  });
});
