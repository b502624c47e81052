/**
 * Image references as docker reads them: `[host[:port]/]path[:tag][@sha256:…]`. The first component is a
 * registry host when it has a `.` or a `:` or is `localhost`; otherwise the image lives on Docker Hub.
 */
import { fail } from '../core/errors.js';

export interface ImageRef {
  /** registry host as written (docker.io for Docker Hub) */
  registry: string;
  /** repository path inside the registry, e.g. group/app (library/x on Docker Hub) */
  repository: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
/**
 * the encoded part of the registered algorithms, lowercase hex of their exact length: a registry and the kubelet
 * (go-digest) refuse anything else (https://github.com/opencontainers/image-spec/blob/main/descriptor.md#registered-algorithms)
 */
const REGISTERED: Record<string, number> = { sha256: 64, sha512: 128 };

/** `algorithm:encoded` of a registered algorithm whose encoded part is not lowercase hex of its length: why; else undefined */
export function digestLengthProblem(digest: string): string | undefined {
  const alg = digest.slice(0, digest.indexOf(':'));
  const n = REGISTERED[alg];
  return n !== undefined && !new RegExp(`^[a-f0-9]{${n}}$`).test(digest.slice(alg.length + 1)) ? `a ${alg} digest is ${n} lowercase hex characters` : undefined;
}

export function parseRef(input: string, opts: { defaultTag?: string } = {}): ImageRef {
  const s = input.trim();
  const bad = (why: string) => fail.usage('EREGISTRY_BAD_REF', `invalid image reference ${JSON.stringify(input)}: ${why}`, { hint: 'write it as host[:port]/path/name[:tag][@sha256:…]' });
  if (!s) throw bad('empty');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`bad digest ${JSON.stringify(digest)}`);
    const p = digestLengthProblem(digest);
    if (p) throw bad(`bad digest ${JSON.stringify(digest)} (${p})`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`bad tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) registry = parts.shift()!;
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  for (const p of parts) if (!PATH_COMPONENT.test(p)) throw bad(`bad path component ${JSON.stringify(p)} (lower-case letters, digits and . _ - only)`);
  if (!tag && !digest) tag = opts.defaultTag ?? 'latest';
  return { registry, repository: parts.join('/'), tag, digest };
}

/** host:port/path, without tag or digest */
export function repoName(r: ImageRef): string {
  return `${r.registry}/${r.repository}`;
}

/** tag if any, else the digest: what goes after /manifests/ */
export function refReference(r: ImageRef): string {
  return r.digest ?? r.tag ?? 'latest';
}

export function formatRef(r: ImageRef): string {
  return `${repoName(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** the host that serves the registry API */
export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** docker's rule: registries on loopback are insecure (plain HTTP allowed) */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** GitLab's CI_COMMIT_REF_SLUG: lower-cased, at most 63 bytes, [^0-9a-z] → '-', no '-' at either end */
export function refSlug(ref: string): string {
  return ref
    .toLowerCase()
    .replace(/[^0-9a-z]/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
}
