/**
 * Which directories of the config repo a bump needs checked out: the overlays, and every directory their
 * kustomizations reference outside themselves (resources, components, bases, patches, generator files...),
 * followed transitively. The sparse checkout holds exactly these, so `--render` can build the overlays and
 * nothing else is fetched.
 */
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { parse } from 'yaml';

export const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

function isRemote(p: string): boolean {
  return /:\/\//.test(p) || /^git@/.test(p) || /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(p) || /[?&]ref=/.test(p);
}

function strings(x: unknown): string[] {
  if (typeof x === 'string') return [x];
  if (Array.isArray(x)) return x.filter((s): s is string => typeof s === 'string');
  return [];
}

/** paths (as written, relative to the kustomization's dir) that a kustomization reads */
export function referencedPaths(doc: unknown): string[] {
  if (!doc || typeof doc !== 'object') return [];
  const k = doc as Record<string, unknown>;
  const out: string[] = [];
  for (const key of ['resources', 'components', 'bases', 'crds', 'generators', 'transformers', 'validators', 'configurations']) out.push(...strings(k[key]));
  // patchesStrategicMerge entries may be inline patches: keep only one-line ones
  out.push(...strings(k.patchesStrategicMerge).filter((s) => !s.includes('\n')));
  for (const key of ['patches', 'patchesJson6902', 'replacements']) {
    if (Array.isArray(k[key])) for (const p of k[key] as unknown[]) if (p && typeof p === 'object' && typeof (p as { path?: unknown }).path === 'string') out.push((p as { path: string }).path);
  }
  for (const key of ['configMapGenerator', 'secretGenerator']) {
    if (!Array.isArray(k[key])) continue;
    for (const g of k[key] as Array<Record<string, unknown>>) {
      if (!g || typeof g !== 'object') continue;
      for (const f of strings(g.files)) out.push(f.includes('=') ? f.slice(f.indexOf('=') + 1) : f);
      out.push(...strings(g.envs), ...strings(g.env));
    }
  }
  const openapi = k.openapi as { path?: unknown } | undefined;
  if (openapi && typeof openapi.path === 'string') out.push(openapi.path);
  const hg = k.helmGlobals as { chartHome?: unknown } | undefined;
  if (hg && typeof hg.chartHome === 'string') out.push(hg.chartHome);
  return out.filter((p) => p && !isRemote(p));
}

function within(dir: string, p: string): boolean {
  return dir === '' || dir === '.' || p === dir || p.startsWith(`${dir}/`);
}

export interface ClosureIO {
  /** repo root on disk (the clone) */
  root: string;
  /** the type of a repo-relative path in HEAD */
  typeOf(path: string): Promise<'tree' | 'blob' | undefined>;
  /** check out more directories (sparse-checkout add) */
  add(dirs: string[]): Promise<void>;
}

/**
 * Adds to the sparse checkout every directory that the overlays reference, transitively. Returns all
 * directories checked out (overlays included), repo-relative. Bounded: 64 directories at most.
 * `known`: directories already checked out by an earlier call (the same clone, moved to a new tip): they are
 * read again (their kustomizations may reference something new now) but not added again, so when nothing
 * changed this reads a few files and runs no git at all.
 */
export async function checkoutReferences(overlays: string[], io: ClosureIO, known: string[] = []): Promise<string[]> {
  const included = [...new Set([...overlays, ...known])];
  const visited = new Set<string>();
  let queue = [...included];
  for (let round = 0; round < 16 && queue.length; round++) {
    const found: string[] = [];
    for (const dir of queue) {
      if (visited.has(dir)) continue;
      visited.add(dir);
      let text: string | undefined;
      for (const f of KUSTOMIZATION_FILES) {
        text = await readFile(posix.join(io.root, dir, f), 'utf8').catch(() => undefined);
        if (text !== undefined) break;
      }
      if (text === undefined) continue;
      let doc: unknown;
      try {
        doc = parse(text);
      } catch {
        continue; // the edit step reports a broken overlay; a broken base is kustomize's to report
      }
      for (const ref of referencedPaths(doc)) {
        const p = posix.normalize(posix.join(dir, ref)).replace(/\/+$/, '');
        if (p.startsWith('..') || posix.isAbsolute(p)) continue; // outside the repo: not ours to fetch
        if (included.some((d) => within(d, p)) || found.some((d) => within(d, p))) {
          // already checked out (so the disk answers); a directory may still hold a kustomization to follow
          if (!visited.has(p) && (await stat(posix.join(io.root, p)).catch(() => undefined))?.isDirectory()) found.push(p);
          continue;
        }
        const t = await io.typeOf(p);
        if (t === 'tree') found.push(p);
        else if (t === 'blob') {
          const parent = posix.dirname(p);
          if (parent !== '.' && !included.some((d) => within(d, parent))) found.push(parent);
        }
      }
    }
    const fresh = [...new Set(found)].filter((d) => !included.some((i) => within(i, d)) || !visited.has(d));
    const toAdd = fresh.filter((d) => !included.some((i) => within(i, d)));
    if (included.length + toAdd.length > 64) break;
    if (toAdd.length) await io.add(toAdd);
    included.push(...toAdd);
    queue = fresh.filter((d) => !visited.has(d));
  }
  return included;
}
