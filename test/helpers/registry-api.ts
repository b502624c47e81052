/**
 * Writing to the test registry through the Distribution API (https://distribution.github.io/distribution/spec/api/):
 * what the image tests put there before they run the CLI against it. One place for the requests (basic auth, the
 * monolithic blob upload, a manifest PUT), so a test says only which image it needs.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Registry } from './services.js';

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export function registryAuth(reg: Registry): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}` };
}

/** one request to the registry, authenticated; `url` is a path (`/v2/...`) or a whole URL (an upload location) */
export function registryApi(reg: Registry, method: string, url: string, body?: Buffer, type?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url.startsWith('http') ? url : `${reg.url}${url}`, { method, body: body ? new Uint8Array(body) : undefined, headers: { ...registryAuth(reg), ...(type ? { 'Content-Type': type } : {}), ...headers } });
}

/** a monolithic blob upload (POST, then PUT with the digest); returns the digest; throws unless the registry took it */
export async function pushBlob(reg: Registry, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await registryApi(reg, 'POST', `/v2/${repo}/blobs/uploads/`);
  if (start.status !== 202) throw new Error(`blob upload start to ${repo}: ${start.status}`);
  const loc = new URL(start.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', digest);
  const put = await registryApi(reg, 'PUT', loc.toString(), bytes, 'application/octet-stream');
  if (put.status !== 201) throw new Error(`blob upload to ${repo}: ${put.status}`);
  return digest;
}

/** PUT a manifest under `ref` (a tag, or its digest); returns its digest; throws unless the registry took it */
export async function pushManifest(reg: Registry, repo: string, ref: string, manifest: Buffer, mediaType: string): Promise<string> {
  const put = await registryApi(reg, 'PUT', `/v2/${repo}/manifests/${ref}`, manifest, mediaType);
  if (put.status !== 201) throw new Error(`manifest put ${repo}:${ref}: ${put.status} ${await put.text()}`);
  return sha256(manifest);
}

/**
 * A single-platform image: its config and (unless `layers: 0`) one layer of `layer` bytes, then the manifest
 * (Docker v2 or OCI by `mediaType`) under `ref` (default: its own digest). Returns the manifest, its bytes and digest.
 */
export async function pushImage(
  reg: Registry,
  repo: string,
  o: { ref?: string; mediaType?: string; config?: Buffer; layer?: Buffer; layers?: 0 | 1 } = {},
): Promise<{ digest: string; manifest: Buffer }> {
  const mediaType = o.mediaType ?? DOCKER_MANIFEST;
  const oci = mediaType.includes('oci');
  const config = o.config ?? Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = o.layer ?? gzipSync(Buffer.from(`layer of ${repo}`));
  const layers =
    o.layers === 0 ? [] : [{ mediaType: oci ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: await pushBlob(reg, repo, layer) }];
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: oci ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json', size: config.length, digest: await pushBlob(reg, repo, config) },
      layers,
    }),
  );
  const digest = await pushManifest(reg, repo, o.ref ?? sha256(manifest), manifest, mediaType);
  return { digest, manifest };
}
