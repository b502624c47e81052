/**
 * One multi-platform image from single-platform ones: an image index (OCI) or manifest list (Docker) whose
 * entries are the given manifests, each with the platform its config blob declares. Nothing is rebuilt or
 * copied: the children must already be in the destination repository (the release builds each architecture
 * on a runner of its own and pushes it there by digest).
 */
import { fail } from '../core/errors.js';
import { INDEX_TYPES, sha256, type Manifest, type RegistryClient } from './client.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** a config blob is a few kilobytes; more is not an image config */
const CONFIG_LIMIT = 1 << 20;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface IndexEntry {
  digest: string;
  mediaType: string;
  size: number;
  platform: Platform;
}

export const platformName = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

async function readSmall(client: RegistryClient, repo: string, digest: string): Promise<Buffer> {
  const s = await client.blobStream(repo, digest);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > CONFIG_LIMIT) {
      s.destroy();
      throw fail.failed('EREGISTRY_PROTOCOL', `the config blob ${digest} of ${repo} is larger than ${CONFIG_LIMIT} bytes: not an image config`, { where: `${client.host}/${repo}` });
    }
    parts.push(c as Buffer);
  }
  const bytes = Buffer.concat(parts);
  if (sha256(bytes) !== digest) throw fail.failed('EREGISTRY_DIGEST', `the config blob ${digest} of ${repo} hashes to ${sha256(bytes)}`, { where: `${client.host}/${repo}` });
  return bytes;
}

/** the entry of one child: its manifest (by digest) and the platform of its config */
export async function indexEntry(client: RegistryClient, repo: string, digest: string): Promise<IndexEntry> {
  const m = await client.getManifest(repo, digest);
  const where = `${client.host}/${repo}@${digest}`;
  if (INDEX_TYPES.has(m.mediaType)) {
    throw fail.usage('EREGISTRY_BAD_REF', `${digest} is already an index (${m.mediaType}): give the single-platform images it would list`, { where });
  }
  if (m.mediaType !== OCI_MANIFEST && m.mediaType !== DOCKER_MANIFEST) {
    throw fail.failed('EREGISTRY_PROTOCOL', `${digest} is a ${m.mediaType || 'manifest of no media type'}, not an image manifest`, { where });
  }
  const j = JSON.parse(m.bytes.toString()) as { config?: { digest?: unknown } };
  const cfgDigest = j.config?.digest;
  if (typeof cfgDigest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(cfgDigest)) throw fail.failed('EREGISTRY_PROTOCOL', `the manifest ${digest} names no config blob`, { where });
  let cfg: { os?: unknown; architecture?: unknown; variant?: unknown };
  try {
    cfg = JSON.parse((await readSmall(client, repo, cfgDigest)).toString()) as typeof cfg;
  } catch (e) {
    if (e instanceof SyntaxError) throw fail.failed('EREGISTRY_PROTOCOL', `the config blob of ${digest} is not JSON`, { where });
    throw e;
  }
  if (typeof cfg.os !== 'string' || typeof cfg.architecture !== 'string' || !cfg.os || !cfg.architecture) {
    throw fail.failed('EREGISTRY_PROTOCOL', `the config of ${digest} declares no os and architecture`, { where });
  }
  const platform: Platform = { os: cfg.os, architecture: cfg.architecture, ...(typeof cfg.variant === 'string' && cfg.variant ? { variant: cfg.variant } : {}) };
  return { digest, mediaType: m.mediaType, size: m.bytes.length, platform };
}

/**
 * The index bytes for these entries (in the order given). A Docker manifest list when every child is a Docker
 * manifest (what an engine's push makes), else an OCI index. Two entries of one platform are refused: a client
 * would pull whichever comes first.
 */
export function buildIndex(entries: IndexEntry[]): Manifest {
  if (!entries.length) throw fail.usage('EREGISTRY_BAD_REF', 'an index needs at least one image');
  const seen = new Map<string, string>();
  for (const e of entries) {
    const p = platformName(e.platform);
    if (seen.has(p)) throw fail.usage('EREGISTRY_BAD_REF', `two images for ${p}: ${seen.get(p)} and ${e.digest}`, { hint: 'give one image per platform' });
    seen.set(p, e.digest);
  }
  const mediaType = entries.every((e) => e.mediaType === DOCKER_MANIFEST) ? DOCKER_LIST : OCI_INDEX;
  const body = { schemaVersion: 2, mediaType, manifests: entries.map((e) => ({ mediaType: e.mediaType, digest: e.digest, size: e.size, platform: e.platform })) };
  const bytes = Buffer.from(JSON.stringify(body));
  return { bytes, mediaType, digest: sha256(bytes) };
}
