/**
 * Overlays with the YAML parser at hand: the images of resource files (imagesInYaml), rendering with kustomize, and
 * the check of a rendered image. The edit of several overlays is src/kustomize/set-images.ts (no `yaml` import,
 * re-exported here for existing callers); it imports this module when a file needs the parser.
 */
import { stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { fail } from '../core/errors.js';
import type { ImageEntry } from './fast-edit.js';
import { KustomizeErrors } from './errors.js';
import { splitImage } from './image-expr.js';
import { imagesInSimpleYaml } from './set-images.js';
export { unifiedDiff } from './diff.js';
export {
  KUSTOMIZATION_FILE_NAMES,
  findKustomization,
  findKustomizationSync,
  imageMatches,
  imagesReachable,
  setImagesInOverlays,
  type OverlayResult,
  type SetImagesOptions,
} from './set-images.js';

// ---------------------------------------------------------------------------------------------------------
// images in resources

/** every string value of an `image` key in the YAML documents of `text` (parse errors: none) */
export function imagesInYaml(text: string): string[] {
  // no `image` key in a text without the word (a key spelt with escapes needs a backslash): no parse
  if (!text.includes('image') && !text.includes('\\')) return [];
  const simple = imagesInSimpleYaml(text);
  if (simple) return simple;
  const out: string[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) {
        if (k === 'image' && typeof v === 'string') out.push(v);
        else walk(v);
      }
    }
  };
  try {
    for (const d of parseAllDocuments(text) as unknown as Array<{ errors: unknown[]; toJS(): unknown }>) if (!d.errors?.length) walk(d.toJS());
  } catch {
    /* not YAML: no images */
  }
  return out;
}

/** the resources/bases/components lists of a kustomization (its first document), parsed: any YAML */
export function kustomizationLists(text: string): Record<string, unknown> {
  const d = parseAllDocuments(text) as unknown as Array<{ toJS(): unknown }>;
  return ((Array.isArray(d) ? d[0]?.toJS() : undefined) ?? {}) as Record<string, unknown>;
}

/** whether a rendered image reference is what the entry makes of a matched image */
export function renderedMatches(ref: string, e: ImageEntry): boolean {
  const { name, tag, digest } = splitImage(ref);
  if (name !== (e.newName ?? e.name)) return false;
  if (e.digest && digest !== e.digest) return false;
  if (e.newTag && !e.digest && tag !== e.newTag) return false;
  if (e.newTag && e.digest && tag !== e.newTag) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// rendering

async function onPath(cmd: string): Promise<string | undefined> {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    const f = join(d, cmd);
    try {
      const s = await stat(f);
      if (s.isFile() && s.mode & 0o111) return f;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface RenderOptions {
  /**
   * the checkout the overlay belongs to, when its content is not trusted (a merge request): every
   * kustomization reachable from the overlay is checked first (no remote reference, no path out of `root`;
   * src/render/sandbox.ts checkTree)
   */
  root?: string;
  /** epoch ms: kustomize is stopped then (ERENDER_TIMEOUT, exit 4) */
  deadline?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * `kustomize build DIR` when kustomize is on PATH, else `kubectl kustomize DIR`; the rendered YAML. Always
 * under the sandbox of src/render/sandbox.ts (root-only load restrictor, no network, memory, output and time
 * limits, a tracked process group); with opts.root the kustomization tree is checked before it runs.
 */
export async function renderOverlay(dir: string, opts: RenderOptions = {}): Promise<string> {
  const { checkTree, runSandboxed } = await import('../render/sandbox.js');
  const kustomize = await onPath('kustomize');
  const kubectl = kustomize ? undefined : await onPath('kubectl');
  if (!kustomize && !kubectl) {
    throw fail.failed(KustomizeErrors.NO_RENDERER, 'cannot render: neither kustomize nor kubectl is on PATH', { hint: 'install kustomize or kubectl, or drop --render' });
  }
  if (opts.root) await checkTree(opts.root, dir);
  const restrict = '--load-restrictor=LoadRestrictionsRootOnly';
  const [cmd, args] = kustomize ? [kustomize, ['build', restrict, dir]] : [kubectl!, ['kustomize', restrict, dir]];
  return runSandboxed(cmd, args, { what: `${kustomize ? 'kustomize build' : 'kubectl kustomize'} ${dir}`, where: dir, deadline: opts.deadline, env: opts.env, cwd: opts.root });
}
