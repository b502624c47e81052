/**
 * set-image over overlays on disk: find each kustomization file, edit several overlays all or nothing, warn about
 * an image no resource uses, render with kustomize on request.
 *
 * setImagesInOverlays verifies before it mutates: every overlay is found, read and parsed and every edit is
 * computed before the first write. Writes are atomic (temp file + rename, mode kept). When a write or the
 * render check fails, every file already written gets its old bytes back, so a failure leaves all files as
 * they were.
 *
 * This module imports no `yaml`: the common case (a kustomization in the subset of src/edit/simple-yaml.ts whose
 * images only change values, resources in that subset too) is answered by src/kustomize/fast-edit.ts and the line
 * reader, and the parser (src/kustomize/edit.ts, imagesInYaml and rendering in src/kustomize/overlay.ts) is
 * imported on the first file that needs it. On 1,000 overlays the parser's load was a tenth of set-image's time
 * (bench/set-image.ts).
 */
import type { Dirent } from 'node:fs';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fail, isGitopsError } from '../core/errors.js';
import { resolveInside, utf8Text, workTreeOf, writeFileAtomicSync, writeFilesAtomic } from '../core/fsutil.js';
import type { Logger } from '../core/log.js';
import { readSimpleYaml, sget, type SNode } from '../edit/simple-yaml.js';
import { exprsByName, fastEdit, type ImageChange, type ImageEntry } from './fast-edit.js';
import { KustomizeErrors } from './errors.js';
import type { ImageExpr } from './image-expr.js';

/** kustomize's recognised names, in its order (konfig.RecognizedKustomizationFileNames) */
export const KUSTOMIZATION_FILE_NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export interface OverlayResult {
  /** the directory as given */
  dir: string;
  /** absolute path of the kustomization file (a symlink resolved: the file that is written) */
  file: string;
  /** the kustomization file as messages name it: the directory as given + the file name */
  where: string;
  before: string;
  after: string;
  changes: ImageChange[];
  changed: boolean;
  /** images (names) that no resource of the overlay uses, as far as set-image could tell */
  unused?: string[];
  /** what the edit says the user should know (a Flux marker dropped) */
  warnings?: string[];
}

/** The kustomization file of `dir`; usage EKUSTOMIZE_NOT_FOUND / EKUSTOMIZE_MULTIPLE_FILES otherwise. */
export async function findKustomization(dir: string): Promise<string> {
  return findKustomizationSync(dir);
}

/**
 * findKustomization without the thread-pool hop: set-image looks into a thousand overlays in one call, and a
 * synchronous readdir of a small directory costs less than scheduling an asynchronous one (bench/set-image.ts).
 */
export function findKustomizationSync(dir: string): string {
  return findKustomizationEntry(dir).file;
}

/** the kustomization file of `dir`, the directory's entries (names), and whether the file is a plain file (no symlink) */
function findKustomizationEntry(dir: string): { file: string; name: string; plain: boolean; names: string[] } {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw fail.usage(KustomizeErrors.NOT_FOUND, `${dir} is not a directory`, { where: dir, hint: '--dir takes the overlay directory, not the kustomization file' });
    if (code === 'ENOENT') throw fail.usage(KustomizeErrors.NOT_FOUND, `overlay directory ${dir} does not exist`, { where: dir, hint: 'check --dir (relative paths are from the current directory)' });
    throw fail.failed(KustomizeErrors.READ, `cannot list ${dir}: ${(e as Error).message}`, { where: dir });
  }
  const found = KUSTOMIZATION_FILE_NAMES.map((n) => entries.find((d) => d.name === n)).filter((d): d is Dirent => !!d);
  if (found.length === 0) {
    throw fail.usage(KustomizeErrors.NOT_FOUND, `no kustomization file in ${dir}`, {
      where: dir,
      hint: `expected one of ${KUSTOMIZATION_FILE_NAMES.join(', ')}; is --dir the overlay directory?`,
    });
  }
  if (found.length > 1) {
    throw fail.usage(KustomizeErrors.MULTIPLE, `found multiple kustomization files in ${dir}: ${found.map((d) => d.name).join(', ')}`, { where: dir, hint: 'keep one of them (kustomize refuses this too)' });
  }
  const file = childOf(dir, found[0].name);
  const isDir = found[0].isDirectory() || (found[0].isSymbolicLink() && isDirSync(file));
  if (isDir) throw fail.usage(KustomizeErrors.NOT_FOUND, `${file} should be a file`, { where: file });
  return { file, name: found[0].name, plain: found[0].isFile(), names: entries.map((d) => d.name) };
}

function isDirSync(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The look-ups a thousand overlays of one tree share, answered once per call: which git work tree holds a
 * directory (by name, as workTreeOf), and where a path really is (realpath). resolveInside's answer for a path
 * that exists, synchronously; a path that does not exist goes to resolveInside itself.
 */
class TreeMemo {
  private git = new Map<string, string | undefined>();
  private real = new Map<string, string>();
  workTree(dir: string): string | undefined {
    const d = resolved(dir);
    if (this.git.has(d)) return this.git.get(d);
    const up = dirname(d);
    const wt = existsSync(childOf(d, '.git')) ? d : up === d ? undefined : this.workTree(up);
    this.git.set(d, wt);
    return wt;
  }
  /** per directory: its entries that are plain directories or files (no symlink), or undefined if it cannot be listed */
  private plain = new Map<string, Set<string> | undefined>();
  private plainIn(dir: string): Set<string> | undefined {
    if (this.plain.has(dir)) return this.plain.get(dir);
    let names: Set<string> | undefined;
    try {
      names = new Set(readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() || d.isFile()).map((d) => d.name));
    } catch {
      names = undefined;
    }
    this.plain.set(dir, names);
    return names;
  }
  /**
   * realpath of `p`, an absolute normalised path. Where `p`'s last name is a plain directory or file in its
   * parent, that is the parent's realpath + the name: a thousand overlays side by side cost one listing of
   * their parent and one realpath of it, instead of a realpath (a walk of every component) each.
   */
  realpath(p: string): string | undefined {
    const hit = this.real.get(p);
    if (hit !== undefined) return hit;
    const parent = dirname(p);
    if (parent !== p) {
      const name = basename(p);
      if (this.plainIn(parent)?.has(name)) {
        const rp = this.realpathNative(parent);
        if (rp !== undefined) {
          const r = rp.endsWith(sep) ? rp + name : rp + sep + name;
          this.real.set(p, r);
          return r;
        }
      }
    }
    return this.realpathNative(p);
  }
  private realpathNative(p: string): string | undefined {
    const hit = this.real.get(p);
    if (hit !== undefined) return hit;
    try {
      const r = realpathSync.native(p);
      this.real.set(p, r);
      return r;
    } catch {
      return undefined;
    }
  }
  async inside(root: string, path: string): Promise<{ real: string; inside: boolean }> {
    return this.insideSync(root, path) ?? resolveInside(root, path);
  }
  /** inside() for a path that exists; undefined otherwise (resolveInside resolves a missing tail) */
  insideSync(root: string, path: string): { real: string; inside: boolean } | undefined {
    const realRoot = this.realpathNative(root);
    const real = realRoot === undefined ? undefined : this.realpath(path);
    if (realRoot === undefined || real === undefined) return undefined;
    return { real, inside: isUnder(realRoot, real) };
  }
}

/** `p` is an absolute path path.resolve leaves as it is (no empty, `.` or `..` segment, no trailing slash) */
const NORMAL_ABS = /^(?:\/(?!\.\.?(?:\/|$))[^/]+)+$|^\/$/;
/** path.resolve(p), without its allocations for a path that is already absolute and normalised */
function resolved(p: string): string {
  return NORMAL_ABS.test(p) ? p : resolve(p);
}

/** a name path.join leaves as it is: not empty, no slash, not `.` or `..` */
const PLAIN_NAME = /^(?!\.\.?$)[^/]+$/;
/**
 * path.join(dir, name) for a normalised absolute `dir` and a plain name by concatenation: path.join normalises
 * the whole string again, and on a thousand overlays its allocations were a tenth of set-image's (heap profile)
 */
export function childOf(dir: string, name: string): string {
  return PLAIN_NAME.test(name) && NORMAL_ABS.test(dir) ? (dir === '/' ? `/${name}` : `${dir}/${name}`) : join(dir, name);
}
/** path.resolve(base, rel) for a normalised absolute `base` and a relative `rel` of `../` steps and clean names, by slicing */
export function resolveFrom(base: string, rel: string): string {
  if (!NORMAL_ABS.test(base)) return resolve(base, rel);
  let d = base;
  let r = rel;
  while (r.startsWith('../')) {
    d = dirname(d);
    r = r.slice(3);
  }
  if (r === '..') return dirname(d);
  if (CLEAN_RELATIVE.test(r)) return d === '/' ? `/${r}` : `${d}/${r}`;
  return resolve(base, rel);
}

function isUnder(root: string, p: string): boolean {
  // the common case without path.relative: root + '/' + rest
  if (p === root) return true;
  if (p.startsWith(root) && p[root.length] === sep && !p.includes(`${sep}..${sep}`) && !p.endsWith(`${sep}..`)) return true;
  const rel = relative(root, p);
  return rel === '' || !(rel === '..' || rel.startsWith('../') || isAbsolute(rel));
}

/** run `fn` over `xs` with at most `n` in flight, results in order */
async function pool<T, R>(xs: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  const worker = async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await fn(xs[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, xs.length) }, worker));
  return out;
}

/** the tree set-image stays in: the git work tree holding the overlay, else the current directory (or the overlay, when it lies elsewhere) */
async function boundaryOf(abs: string, cwd: string, memo?: TreeMemo): Promise<{ root: string; what: string }> {
  const wt = memo ? memo.workTree(abs) : await workTreeOf(abs);
  if (wt) return { root: wt, what: 'the git work tree' };
  const c = resolved(cwd);
  if (isUnder(c, abs)) return { root: c, what: 'the current directory' };
  return { root: abs, what: 'the overlay directory' };
}

/** a relative path with no empty, `.` or `..` segment and no trailing slash: already what display() makes of it */
const CLEAN_RELATIVE = /^(?!\.\.?(?:\/|$))[^/]+(?:\/(?!\.\.?(?:\/|$))[^/]+)*$/;

function display(cwd: string, dir: string): string {
  if (CLEAN_RELATIVE.test(dir)) return dir;
  const r = relative(cwd, resolve(cwd, dir));
  return r === '' ? '.' : r.startsWith('..') ? resolve(cwd, dir) : r;
}

export interface SetImagesOptions {
  cwd: string;
  dryRun?: boolean;
  render?: boolean;
  log?: Logger;
  /** overlays in flight while they are read and checked (default 32) */
  concurrency?: number;
  /** renames in flight once every temp file is written (default 8; src/core/fsutil.ts writeFilesAtomic) */
  writeConcurrency?: number;
}

/**
 * Applies the expressions to every overlay. All overlays are found, read and parsed first; nothing is written
 * when one of them fails. With dryRun nothing is written at all. With render, each changed overlay is built
 * after the writes, and every file is restored when a build fails or no rendered resource uses an image.
 */
export async function setImagesInOverlays(dirs: string[], exprs: ImageExpr[], opts: SetImagesOptions): Promise<OverlayResult[]> {
  const log = opts.log;
  const conc = opts.concurrency ?? 32;
  if (exprs.length === 0) throw fail.usage(KustomizeErrors.NO_IMAGE, 'no image specified', { where: 'command line' });
  if (dirs.length === 0) dirs = ['.'];

  // 1. verify: find, read, parse, edit in memory. Collect every problem, report them all at once.
  const problems: Array<{ i: number; e: Error }> = [];
  const seen = new Map<string, string>();
  const memo = new TreeMemo();
  // what phase 1 listed and read, for phase 2's walk (no second readdir or read of an overlay's kustomization)
  const listings = new Map<string, string[]>();
  const texts = new Map<string, string>();
  // and its resources/bases/components, read while the edit's tree of the same text is at hand (one scan per file)
  const lists = new Map<string, Record<string, unknown>>();
  const byName = exprsByName(exprs);
  // each overlay's absolute directory, by --dir index, for phase 2
  const absOf = new Map<number, string>();
  const planned = await pool(dirs, conc, async (dir, i): Promise<OverlayResult | undefined> => {
    const abs = resolveFrom(opts.cwd, dir);
    absOf.set(i, abs);
    const shown = display(opts.cwd, dir);
    try {
      // nothing outside the work tree (or the directory we were given) is read or written: a symlinked
      // overlay directory or kustomization file that leads out of it is refused before it is read
      let boundary: { root: string; what: string } | undefined;
      const exactBoundary = async () => (boundary ??= await boundaryOf(abs, opts.cwd, memo));
      const outside = async (real: string) => {
        const b = await exactBoundary();
        return fail.usage(KustomizeErrors.OUTSIDE, `${shown} leads outside ${b.what} (to ${real}) through a symlink; it is not read or written`, {
          where: shown,
          hint: `keep the overlay and its kustomization file inside ${b.what} (${b.root}), or run set-image from where it lives`,
        });
      };
      // The boundary of the overlay is its own directory when that holds .git, else its parent's. Inside the
      // parent's boundary is inside its own either way, so that is checked first: a thousand overlays side by
      // side then cost no look-up of their own .git (one per overlay was a tenth of phase 1); any other answer
      // comes from the overlay's own boundary, as before.
      const up = dirname(abs);
      const parentBoundary = up === abs ? undefined : await boundaryOf(up, opts.cwd, memo);
      let dirReal = parentBoundary && memo.insideSync(parentBoundary.root, abs);
      if (!dirReal?.inside) {
        const b = await exactBoundary();
        dirReal = memo.insideSync(b.root, abs) ?? (await resolveInside(b.root, abs));
      }
      if (!dirReal.inside) throw await outside(dirReal.real);
      let k: ReturnType<typeof findKustomizationEntry>;
      try {
        k = findKustomizationEntry(abs);
      } catch (e) {
        // name the directory as the user gave it
        if (isGitopsError(e)) throw fail[e.kind](e.code, e.message.replace(abs, shown), { where: shown, hint: e.hint });
        throw e;
      }
      const found = k.file;
      listings.set(abs, k.names);
      // write through a symlinked kustomization to its target (a rename over the link would replace the link);
      // a plain file in a directory that is inside is inside, where the directory really is
      const fileReal = k.plain
        ? { real: childOf(dirReal.real, k.name), inside: true }
        : await (async () => {
            const b = await exactBoundary();
            return memo.insideSync(b.root, found) ?? (await resolveInside(b.root, found));
          })();
      if (!fileReal.inside) throw await outside(fileReal.real);
      const file = fileReal.real;
      const where = shown === '.' ? k.name : CLEAN_RELATIVE.test(shown) ? `${shown}/${k.name}` : join(shown, k.name);
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        throw fail.failed(KustomizeErrors.READ, `cannot read ${where}: ${(e as Error).message}`, { where: file });
      }
      const before = utf8Text(bytes, where, KustomizeErrors.YAML);
      texts.set(found, before);
      // the common case without the parser; any other file through the full edit (which loads it)
      const { text, changes, warnings }: { text: string; changes: ImageChange[]; warnings?: string[] } =
        fastEdit(before, byName) ?? (await fullEdit()).editKustomizationText(before, exprs, where);
      if (!opts.render) {
        // its lists, while the line reader's tree of the same text is at hand; else phase 2 parses it
        const l = kustomizationListsSimple(before);
        if (l) lists.set(found, l);
      }
      return { dir: shown, file, where, before, after: text, changes, changed: text !== before, ...(warnings?.length ? { warnings } : {}) };
    } catch (e) {
      problems.push({ i, e: e as Error });
      return undefined;
    }
  });
  if (problems.length) {
    // in --dir order, whatever order the reads finished in
    const sorted = problems.sort((a, b) => a.i - b.i).map((p) => p.e);
    const first = sorted[0];
    if (sorted.length === 1 || !isGitopsError(first)) throw first;
    const MAX = 20;
    const others = sorted.slice(1, MAX + 1).map((p) => (isGitopsError(p) ? `${p.where ? `${p.where}: ` : ''}${p.message} [${p.code}]` : p.message));
    if (sorted.length > MAX + 1) others.push(`… and ${sorted.length - MAX - 1} more`);
    throw fail[first.kind](first.code, `${first.message} (and ${sorted.length - 1} more problem${sorted.length > 2 ? 's' : ''}; nothing was written)`, {
      where: first.where,
      hint: first.hint,
      details: [...(first.details ?? []), 'other problems:', ...others],
    });
  }
  const results: OverlayResult[] = [];
  const dirOf = new Map<OverlayResult, string>();
  (planned as OverlayResult[]).forEach((r, i) => {
    // the same overlay given twice is edited once
    if (seen.has(r.file)) return;
    seen.set(r.file, r.dir);
    results.push(r);
    dirOf.set(r, absOf.get(i)!);
  });

  // 2. the images' users, as far as the overlay's files and local bases tell (a warning; --render checks for real)
  if (!opts.render) {
    const cache = new Map<string, Promise<{ refs: string[]; complete: boolean }>>();
    const known = { listings, texts, lists };
    await pool(results, conc, async (r) => {
      const { refs, complete } = await imagesReachable(dirOf.get(r)!, cache, 0, known);
      const unused = r.changes.filter((c) => !refs.some((ref) => imageMatches(ref, c.name))).map((c) => c.name);
      if (unused.length && complete) r.unused = unused;
    });
  }
  if (opts.dryRun) return results;

  // 3. act: write changed files atomically; on any failure put back what was written
  const changed = results.filter((r) => r.changed);
  const written: OverlayResult[] = [];
  const restore = async () => {
    const failedRestores: string[] = [];
    for (const r of written) {
      try {
        writeFileAtomicSync(r.file, r.before);
      } catch (e) {
        failedRestores.push(`${r.file}: ${(e as Error).message}`);
      }
    }
    return failedRestores;
  };
  // every temp file first, then the renames a few at a time in the thread pool (src/core/fsutil.ts writeFilesAtomic)
  const w = await writeFilesAtomic(
    changed.map((r) => ({ file: r.file, data: r.after })),
    opts.writeConcurrency,
  );
  for (const i of w.written) written.push(changed[i]);
  const writeError = w.failed && { r: changed[w.failed.index], e: w.failed.error };
  if (writeError) {
    const bad = await restore();
    throw fail.failed(KustomizeErrors.WRITE, `cannot write ${writeError.r.where}: ${writeError.e.message}`, {
      where: writeError.r.file,
      cause: writeError.e,
      details: bad.length
        ? ['could not restore:', ...bad]
        : [written.length ? `${written.length} file(s) already written were restored; all files are as before` : 'no file was replaced; all files are as before'],
      hint: 'check that the file and its directory are writable (a temp file is created beside it)',
    });
  }

  // 4. render check
  if (opts.render) {
    for (const r of changed) {
      try {
        const { renderOverlay, imagesInYaml, renderedMatches } = await withParser();
        const out = log ? await log.section(`kustomize build ${r.dir}`, () => renderOverlay(resolve(opts.cwd, r.dir))) : await renderOverlay(resolve(opts.cwd, r.dir));
        const refs = imagesInYaml(out);
        const unused = r.changes.filter((c) => !refs.some((ref) => renderedMatches(ref, c.after)));
        if (unused.length) {
          throw fail.usage(KustomizeErrors.IMAGE_UNUSED, `no resource rendered from ${r.dir} uses ${unused.map((c) => describeExpected(c.after)).join(', ')}`, {
            where: r.dir,
            details: refs.length ? ['images in the rendered output:', ...[...new Set(refs)].map((x) => `  ${x}`)] : ['the rendered output has no image fields'],
            hint: 'images[].name must equal the repository in the resources (without tag); check the name, or drop --render',
          });
        }
      } catch (e) {
        const bad = await restore();
        if (isGitopsError(e)) {
          throw fail[e.kind](e.code, e.message, {
            where: e.where,
            hint: e.hint,
            cause: e.cause,
            details: [...(e.details ?? []), bad.length ? `could not restore: ${bad.join('; ')}` : 'all files were restored; nothing changed'],
          });
        }
        throw e;
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------
// images in resources

/** the pattern of each images[].name, compiled once (set-image checks the same name in a thousand overlays) */
const namePatterns = new Map<string, RegExp>();
/** a YAML 1.2 plain scalar that is certainly a string: starts with a letter, not true/false/null in any case yaml reads */
const NOT_STRING_1_2 = /^(?:true|True|TRUE|false|False|FALSE|null|Null|NULL)$/;
/**
 * imagesInYaml for a file in the subset of src/edit/simple-yaml.ts (most single-document resource files), without
 * the full parser; undefined when the file or one of its `image` values is outside it (then the parser decides).
 */
export function imagesInSimpleYaml(text: string): string[] | undefined {
  const root = readSimpleYaml(text);
  if (!root) return undefined;
  const out: string[] = [];
  const walk = (n: SNode): boolean => {
    if (n.kind === 'seq') return n.items.every(walk);
    if (n.kind !== 'map') return true;
    for (const p of n.pairs) {
      // keys a JS object would not keep in file order (integer-like) or at all (__proto__): the parser's walk decides
      if (/^[0-9]+$/.test(p.key) || p.key === '__proto__') return false;
      if (p.key === 'image' && p.value.kind === 'scalar') {
        const v = p.value;
        if (v.style === 'PLAIN' && (!/^[A-Za-z]/.test(v.value) || NOT_STRING_1_2.test(v.value))) return false;
        out.push(v.value);
      } else if (!walk(p.value)) return false;
    }
    return true;
  };
  return walk(root) ? out : undefined;
}

/** kustomize's IsImageMatched: images[].name is interpolated into ^name(:tag)?(@digest)?$ */
export function imageMatches(ref: string, name: string): boolean {
  let re = namePatterns.get(name);
  if (re === undefined) {
    const tail = '(:[a-zA-Z0-9_.{}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{}-]*)?$';
    try {
      re = new RegExp(`^${name}${tail}`);
    } catch {
      re = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${tail}`);
    }
    namePatterns.set(name, re);
  }
  return re.test(ref);
}

function describeExpected(e: ImageEntry): string {
  return `${e.newName ?? e.name}${e.newTag ? `:${e.newTag}` : ''}${e.digest ? `@${e.digest}` : ''}`;
}

/**
 * the resources/bases/components lists of a kustomization in plain block YAML, read without a parse
 * (src/edit/simple-yaml.ts); undefined for any other file (kustomizationLists in src/kustomize/overlay.ts parses it)
 */
export function kustomizationListsSimple(text: string): Record<string, unknown> | undefined {
  const simple = readSimpleYaml(text);
  if (!simple) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of ['resources', 'bases', 'components']) {
    const v = sget(simple, k);
    if (v?.kind === 'seq') out[k] = v.items.map((i) => (i.kind === 'scalar' ? i.value : undefined));
  }
  return out;
}

/** the modules with the YAML parser, imported on first need (a dynamic import: the bundle loads them then) */
let fullEditModule: Promise<typeof import('./edit.js')> | undefined;
const fullEdit = () => (fullEditModule ??= import('./edit.js'));
let parserModule: Promise<typeof import('./overlay.js')> | undefined;
const withParser = () => (parserModule ??= import('./overlay.js'));

/** imagesInYaml of src/kustomize/overlay.ts, without loading the parser for a file the line reader reads */
async function imagesIn(text: string): Promise<string[]> {
  if (!text.includes('image') && !text.includes('\\')) return [];
  return imagesInSimpleYaml(text) ?? (await withParser()).imagesInYaml(text);
}

/**
 * Image references in the overlay's YAML files (other than the kustomization) and, recursively, in the local
 * directories and files its `resources`, `bases` and `components` name (one read per directory, cached).
 * `complete` is false when a remote resource (URL, git) was skipped, so absence proves nothing.
 */
export async function imagesReachable(
  dir: string,
  cache = new Map<string, Promise<{ refs: string[]; complete: boolean }>>(),
  depth = 0,
  known?: { listings: Map<string, string[]>; texts: Map<string, string>; lists?: Map<string, Record<string, unknown>> },
): Promise<{ refs: string[]; complete: boolean }> {
  const key = resolved(dir);
  const hit = cache.get(key);
  if (hit) return hit;
  const p = (async () => {
    const refs: string[] = [];
    let complete = true;
    let names: string[];
    try {
      names = known?.listings.get(key) ?? readdirSync(key);
    } catch {
      return { refs, complete: false };
    }
    const kname = KUSTOMIZATION_FILE_NAMES.find((n) => names.includes(n));
    for (const n of names) {
      if (n === kname || !/\.ya?ml$/i.test(n)) continue;
      try {
        refs.push(...(await imagesIn(readFileSync(childOf(key, n), 'utf8'))));
      } catch {
        /* a directory or unreadable: skip */
      }
    }
    if (!kname || depth > 20) return { refs, complete: complete && !!kname };
    let k: Record<string, unknown> = {};
    try {
      const kfile = childOf(key, kname);
      const text = known?.lists?.get(kfile) ? undefined : (known?.texts.get(kfile) ?? readFileSync(kfile, 'utf8'));
      k = known?.lists?.get(kfile) ?? kustomizationListsSimple(text!) ?? (await withParser()).kustomizationLists(text!);
    } catch {
      return { refs, complete: false };
    }
    const entries = ['resources', 'bases', 'components'].flatMap((f) => (Array.isArray(k[f]) ? (k[f] as unknown[]) : [])).filter((x): x is string => typeof x === 'string');
    for (const e of entries) {
      if (/^[a-z][a-z0-9+.-]*:\/\/|^git@|^github\.com\/|\?ref=/i.test(e)) {
        complete = false;
        continue;
      }
      const target = resolveFrom(key, e);
      let isDir = cache.has(target); // a directory already visited (a shared base): no stat
      if (!isDir) {
        try {
          isDir = statSync(target).isDirectory();
        } catch {
          complete = false;
          continue;
        }
      }
      if (isDir) {
        const sub = await imagesReachable(target, cache, depth + 1, known);
        refs.push(...sub.refs);
        complete &&= sub.complete;
      } else if (dirname(target) !== key) {
        try {
          refs.push(...(await imagesIn(readFileSync(target, 'utf8'))));
        } catch {
          complete = false;
        }
      }
    }
    return { refs, complete };
  })();
  cache.set(key, p);
  return p;
}

