/**
 * The bump commit message, built from a structured change list: a subject naming the environment(s), a
 * body listing each change (overlay, image, old → new), and trailers recording where the change came from
 * (GitLab's predefined variables). The trailers are also what the stale-pipeline guard reads back.
 */
import { fail } from '../core/errors.js';
import { BumpErrors } from './errors.js';

export interface ImageRef {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

export interface Change {
  /** overlay dir, relative to the config repo root, posix */
  overlay: string;
  /** environment derived from the overlay dir (its last segment) */
  env: string;
  /** images[].name */
  image: string;
  /** the reference before (undefined when the entry is new) and after */
  before?: string;
  after: string;
}

export interface Origin {
  project?: string;
  commit?: string;
  ref?: string;
  pipelineId?: string;
  pipelineUrl?: string;
  jobUrl?: string;
}

/** the running job's own origin, from GitLab's predefined variables (empty values count as unset) */
export function originFromCi(env: NodeJS.ProcessEnv): Origin {
  return {
    project: env.CI_PROJECT_PATH || undefined,
    commit: env.CI_COMMIT_SHA || undefined,
    ref: env.CI_COMMIT_REF_NAME || undefined,
    pipelineId: env.CI_PIPELINE_ID || undefined,
    pipelineUrl: env.CI_PIPELINE_URL || undefined,
    jobUrl: env.CI_JOB_URL || undefined,
  };
}

export type SkipCi = 'message' | 'push-option' | 'none';

export const TRAILER = {
  overlay: 'Gitops-Overlay',
  image: 'Gitops-Image',
  project: 'Gitops-Source-Project',
  commit: 'Gitops-Source-Commit',
  ref: 'Gitops-Source-Ref',
  pipeline: 'Gitops-Pipeline',
  pipelineId: 'Gitops-Pipeline-Id',
  job: 'Gitops-Job',
} as const;

export const SKIP_CI_RE = /\[(ci[ _-]skip|skip[ _-]ci)\]/i;

/** the full reference an images[] entry resolves to: newName (or name), :tag, @digest */
export function refOf(e: ImageRef): string {
  return `${e.newName || e.name}${e.newTag ? `:${e.newTag}` : ''}${e.digest ? `@${e.digest}` : ''}`;
}

/** `.kubernetes/overlays/production` → production */
export function envOf(overlay: string): string {
  const parts = overlay.split('/').filter((p) => p && p !== '.');
  return parts[parts.length - 1] ?? overlay;
}

/** the short form of a reference for a subject line: the tag, else the digest's first 12 hex digits */
export function shortRefOf(ref: string): string {
  const at = ref.indexOf('@');
  const beforeDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = beforeDigest.lastIndexOf('/');
  const colon = beforeDigest.indexOf(':', slash + 1);
  if (colon >= 0) return beforeDigest.slice(colon + 1);
  if (at >= 0) return ref.slice(at + 1).replace(/^(sha256:[0-9a-f]{12}).*$/, '$1');
  return ref;
}

/** a reference as short as stays exact: the tag/digest when the repository is the image's own */
export function tersely(image: string, ref: string): string {
  return ref.startsWith(`${image}:`) || ref.startsWith(`${image}@`) ? ref.slice(image.length + 1) : ref;
}

export function shortImageOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

export const PLACEHOLDERS: Record<string, string> = {
  envs: 'environments changed, comma-separated (production, staging)',
  overlays: 'overlay dirs changed, comma-separated',
  images: 'changed images as <short name>:<tag>, comma-separated',
  image: 'the first changed image, short name (last path segment)',
  tag: 'the first changed image’s new tag (or short digest)',
  count: 'number of changes (overlay × image)',
  project: 'CI_PROJECT_PATH',
  sha: 'CI_COMMIT_SHA',
  short_sha: 'CI_COMMIT_SHORT_SHA, else the first 8 characters of CI_COMMIT_SHA',
  ref: 'CI_COMMIT_REF_NAME',
  pipeline_id: 'CI_PIPELINE_ID',
  pipeline_url: 'CI_PIPELINE_URL',
  job_url: 'CI_JOB_URL',
};

function values(changes: Change[], origin: Origin, shortSha?: string): Record<string, string> {
  const first = changes[0];
  return {
    envs: uniq(changes.map((c) => c.env)).join(', '),
    overlays: uniq(changes.map((c) => c.overlay)).join(', '),
    images: uniq(changes.map((c) => `${shortImageOf(c.image)}:${shortRefOf(c.after)}`)).join(', '),
    image: first ? shortImageOf(first.image) : '',
    tag: first ? shortRefOf(first.after) : '',
    count: String(changes.length),
    project: origin.project ?? '',
    sha: origin.commit ?? '',
    short_sha: shortSha ?? origin.commit?.slice(0, 8) ?? '',
    ref: origin.ref ?? '',
    pipeline_id: origin.pipelineId ?? '',
    pipeline_url: origin.pipelineUrl ?? '',
    job_url: origin.jobUrl ?? '',
  };
}

/** Check a --message template before anything is cloned: unknown placeholders are a usage error. */
export function validateTemplate(template: string): void {
  const unknown = [...template.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]!).filter((k) => !(k in PLACEHOLDERS));
  if (unknown.length) {
    throw fail.usage(BumpErrors.MESSAGE_TEMPLATE, `unknown placeholder${unknown.length > 1 ? 's' : ''} in --message: ${uniq(unknown).map((u) => `{${u}}`).join(', ')}`, {
      where: 'command line',
      hint: `known placeholders: ${Object.keys(PLACEHOLDERS).map((k) => `{${k}}`).join(' ')}`,
    });
  }
  if (!template.trim()) throw fail.usage(BumpErrors.MESSAGE_TEMPLATE, '--message is empty', { where: 'command line' });
}

export function renderTemplate(template: string, changes: Change[], origin: Origin, shortSha?: string): string {
  const v = values(changes, origin, shortSha);
  return template.replace(/\\n/g, '\n').replace(/\{([a-z_]+)\}/g, (m, k: string) => (k in v ? v[k]! : m));
}

export function defaultSubject(changes: Change[]): string {
  const envs = uniq(changes.map((c) => c.env)).join(', ');
  const images = uniq(changes.map((c) => c.image));
  if (images.length === 1) {
    const refs = uniq(changes.map((c) => shortRefOf(c.after)));
    return `bump ${shortImageOf(images[0]!)} to ${refs.join(', ')} in ${envs}`;
  }
  return `bump ${images.length} images in ${envs}`;
}

export function buildMessage(o: { changes: Change[]; origin: Origin; skipCi: SkipCi; template?: string; shortSha?: string; trailers?: Array<[string, string | undefined]> }): string {
  const { changes, origin } = o;
  let head = o.template ? renderTemplate(o.template, changes, origin, o.shortSha).trim() : defaultSubject(changes);
  if (o.skipCi === 'message' && !SKIP_CI_RE.test(head)) head = `[skip ci] ${head}`;
  const byOverlay = new Map<string, Change[]>();
  for (const c of changes) byOverlay.set(c.overlay, [...(byOverlay.get(c.overlay) ?? []), c]);
  const body: string[] = [];
  for (const [overlay, cs] of byOverlay) {
    body.push(`${cs[0]!.env} (${overlay}):`);
    for (const c of cs) body.push(`- ${c.image}: ${c.before ? tersely(c.image, c.before) : '(new)'} → ${tersely(c.image, c.after)}`);
  }
  const trailers: Array<[string, string | undefined]> = [
    ...uniq(changes.map((c) => c.overlay)).map((ov): [string, string] => [TRAILER.overlay, ov]),
    ...uniq(changes.map((c) => `${c.image}=${c.after}`)).map((v): [string, string] => [TRAILER.image, v]),
    [TRAILER.project, origin.project],
    [TRAILER.commit, origin.commit],
    [TRAILER.ref, origin.ref],
    [TRAILER.pipeline, origin.pipelineUrl],
    [TRAILER.pipelineId, origin.pipelineId],
    [TRAILER.job, origin.jobUrl],
    ...(o.trailers ?? []),
  ];
  const tr = trailers.filter(([, v]) => v !== undefined && oneLine(v) !== '').map(([k, v]) => `${k}: ${oneLine(v!)}`);
  return `${head}\n\n${body.join('\n')}\n\n${tr.join('\n')}\n`;
}

/** `Key: value` lines as git prints them with %(trailers:only,unfold) */
export function parseTrailers(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const k = m[1]!.toLowerCase();
    out.set(k, [...(out.get(k) ?? []), m[2]!]);
  }
  return out;
}

export interface Provenance {
  /** the write-back commit that records it */
  commit?: string;
  project?: string;
  sourceCommit?: string;
  pipelineId?: string;
  pipelineUrl?: string;
  /** how it was checked (src/bump/guard.ts verifyProvenance), when it was */
  verified?: string;
  /** the commit records a rollback (Gitops-Rollback-To: the config commit it returned to) */
  rollbackTo?: string;
}

/** The provenance a bump commit records for image `name` set to `ref`, or undefined when it records none. */
export function provenanceFor(trailers: Map<string, string[]>, name: string, ref: string): Omit<Provenance, 'commit'> | undefined {
  const images = trailers.get(TRAILER.image.toLowerCase()) ?? [];
  if (!images.includes(`${name}=${ref}`)) return undefined;
  const one = (k: string) => trailers.get(k.toLowerCase())?.[0];
  return { project: one(TRAILER.project), sourceCommit: one(TRAILER.commit), pipelineId: one(TRAILER.pipelineId), pipelineUrl: one(TRAILER.pipeline), rollbackTo: one('Gitops-Rollback-To') };
}
