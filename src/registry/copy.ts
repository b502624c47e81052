/**
 * Copy an image between tags, repositories and registries through the registry API: manifests (and an
 * index's child manifests) are pushed byte for byte, so digests are preserved; blobs the target already
 * has are skipped (HEAD first); on the same registry blobs are mounted across repositories instead of
 * uploaded.
 */
import { fail, isGitopsError } from '../core/errors.js';
import { INDEX_TYPES, type Manifest, type Registries, type RegistryClient } from './client.js';
import { refReference, type ImageRef } from './ref.js';

export interface CopyStats {
  manifests: number;
  blobsSkipped: number;
  blobsMounted: number;
  blobsUploaded: number;
  bytesUploaded: number;
}

interface Descriptor {
  digest: string;
  size: number;
  mediaType?: string;
}

export async function copyImage(regs: Registries, src: ImageRef, dst: ImageRef, log: { debug(m: string): void; info(m: string): void }): Promise<{ digest: string; mediaType: string; stats: CopyStats }> {
  const s = regs.for(src.registry);
  const d = regs.for(dst.registry);
  const stats: CopyStats = { manifests: 0, blobsSkipped: 0, blobsMounted: 0, blobsUploaded: 0, bytesUploaded: 0 };
  const sameRegistry = s.host === d.host;

  const copyBlob = async (b: Descriptor): Promise<void> => {
    if (await d.blobExists(dst.repository, b.digest)) {
      stats.blobsSkipped++;
      log.debug(`blob ${b.digest} already in ${dst.repository}`);
      return;
    }
    let location: string | undefined;
    if (sameRegistry && src.repository !== dst.repository) {
      const m = await d.mountBlob(dst.repository, b.digest, src.repository);
      if (m.mounted) {
        stats.blobsMounted++;
        log.debug(`blob ${b.digest} mounted from ${src.repository}`);
        return;
      }
      location = m.location;
    }
    await d.uploadBlob(dst.repository, b.digest, b.size, () => s.blobStream(src.repository, b.digest), location);
    stats.blobsUploaded++;
    stats.bytesUploaded += b.size;
    log.debug(`blob ${b.digest} uploaded (${b.size} bytes)`);
  };

  const copyManifest = async (m: Manifest, reference: string): Promise<void> => {
    let j: { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    try {
      j = JSON.parse(m.bytes.toString());
    } catch {
      throw fail.failed('EREGISTRY_PROTOCOL', `manifest ${m.digest} is not JSON`);
    }
    if (INDEX_TYPES.has(m.mediaType) || Array.isArray(j.manifests)) {
      for (const child of j.manifests ?? []) {
        const cm = await s.getManifest(src.repository, child.digest);
        await copyManifest(cm, child.digest);
      }
    } else {
      const blobs = [...(j.config ? [j.config] : []), ...(j.layers ?? [])];
      // a few in parallel: enough to overlap round trips without flooding the registry
      const queue = [...blobs];
      await Promise.all(
        Array.from({ length: Math.min(3, queue.length) }, async () => {
          for (let b = queue.shift(); b; b = queue.shift()) await copyBlob(b);
        }),
      );
    }
    const existing = reference.startsWith('sha256:') ? await d.headManifest(dst.repository, reference) : undefined;
    if (!existing) await d.putManifest(dst.repository, reference, m);
    stats.manifests++;
  };

  const top = await s.getManifest(src.repository, refReference(src));
  if (src.digest && top.digest !== src.digest) throw fail.failed('EREGISTRY_DIGEST', `source manifest hashes to ${top.digest}, not ${src.digest}`);
  await copyManifest(top, dst.tag ?? top.digest);
  await readBack(d, dst, top.digest);
  return { digest: top.digest, mediaType: top.mediaType, stats };
}

/**
 * No success that was not read back: the destination must serve the manifest by its digest (the bytes hash
 * to it: getManifest checks), and the tag must point at it. A registry that accepted every write but kept
 * nothing, or a page that answers 200 to anything, fails here.
 */
async function readBack(d: RegistryClient, dst: ImageRef, digest: string): Promise<void> {
  const where = `${d.host}/${dst.repository}`;
  const hint = 'the destination accepted the writes but does not serve them back: check that it is a registry (not a proxy or login page) and that it has storage; do not use the tag';
  try {
    await d.getManifest(dst.repository, digest);
  } catch (e) {
    if (isGitopsError(e) && (e.code === 'EREGISTRY_NOT_FOUND' || e.code === 'EREGISTRY_PROTOCOL')) {
      throw fail.failed('EREGISTRY_NOT_STORED', `${where} does not serve the manifest ${digest} that was just written (${e.message})`, { where, hint });
    }
    throw e;
  }
  if (dst.tag) {
    const t = await d.headManifest(dst.repository, dst.tag);
    if (t?.digest !== digest) throw fail.failed('EREGISTRY_NOT_STORED', `${where}:${dst.tag} ${t ? `points at ${t.digest}` : 'does not exist'} after the copy, not at ${digest}`, { where, hint });
  }
}

export type { RegistryClient };
