/**
 * Image references `[host[:port]/]path[:tag][@digest]` as values of manifests' `image:` fields, Helm
 * `image: "repo:tag"` strings and Argo CD `kustomize.images`, and the TAG|DIGEST values `pin` takes.
 * The split is kustomize's (src/kustomize/image-expr.ts splitImage): ':' before the first '/' is a registry port.
 */
import { splitImage } from '../kustomize/image-expr.js';

export interface ParsedRef {
  name: string;
  tag?: string;
  digest?: string;
}

export function parseRef(s: string): ParsedRef {
  const { name, tag, digest } = splitImage(s);
  const r: ParsedRef = { name };
  if (tag) r.tag = tag;
  if (digest) r.digest = digest;
  return r;
}

export function formatRef(r: ParsedRef): string {
  return `${r.name}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** OCI digest grammar (algorithm:encoded) */
export const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** OCI/Docker tag grammar */
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** whether a value is a digest (else it must be a tag) */
export function isDigest(v: string): boolean {
  return DIGEST_RE.test(v) && v.includes(':');
}

/** a template expression Helm, Argo CD, envsubst or Flux would replace: not a literal value */
export function isTemplate(s: string): boolean {
  return s.includes('{{') || s.includes('${');
}

/** whether two image names are the same image (docker.io/ and docker.io/library/ spelled or not) */
export function sameImage(a: string, b: string): boolean {
  const norm = (x: string) => x.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '').replace(/^library\//, '');
  return a === b || norm(a) === norm(b);
}
