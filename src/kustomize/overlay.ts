/**
 * Overlays on disk: find the kustomization file, edit several overlays all-or-nothing, render with kustomize.
 *
 * setImagesInOverlays verifies before it mutates: every overlay is found, read and parsed and every edit is
 * computed before the first write. Writes are atomic (temp file + rename, mode kept). When a write or the
 * render check fails, every file already written gets its old bytes back, so a failure leaves all files as
 * they were.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { fail, isGitopsError } from '../core/errors.js';
import { resolveInside, workTreeOf, writeFileAtomicSync } from '../core/fsutil.js';
import type { Logger } from '../core/log.js';
import { childEnvWithoutSecrets } from '../core/secrets.js';
import { editKustomizationText, type ImageChange, type ImageEntry } from './edit.js';
import { KustomizeErrors } from './errors.js';
import { splitImage, type ImageExpr } from './image-expr.js';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { readSimpleYaml, sget, type SNode } from '../edit/simple-yaml.js';
export { unifiedDiff } from './diff.js';

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
  const file = join(dir, found[0].name);
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
    const wt = existsSync(join(d, '.git')) ? d : up === d ? undefined : this.workTree(up);
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
  const r = relative(resolve(cwd), abs);
  if (r === '' || !(r === '..' || r.startsWith('../') || isAbsolute(r))) return { root: resolve(cwd), what: 'the current directory' };
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
  /** overlays in flight while they are read and checked (default 32); writes go one after the other */
  concurrency?: number;
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
  const planned = await pool(dirs, conc, async (dir, i): Promise<OverlayResult | undefined> => {
    const abs = resolve(opts.cwd, dir);
    const shown = display(opts.cwd, dir);
    try {
      // nothing outside the work tree (or the directory we were given) is read or written: a symlinked
      // overlay directory or kustomization file that leads out of it is refused before it is read
      const boundary = await boundaryOf(abs, opts.cwd, memo);
      const outside = (real: string) =>
        fail.usage(KustomizeErrors.OUTSIDE, `${shown} leads outside ${boundary.what} (to ${real}) through a symlink; it is not read or written`, {
          where: shown,
          hint: `keep the overlay and its kustomization file inside ${boundary.what} (${boundary.root}), or run set-image from where it lives`,
        });
      const dirReal = memo.insideSync(boundary.root, abs) ?? (await resolveInside(boundary.root, abs));
      if (!dirReal.inside) throw outside(dirReal.real);
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
      const fileReal = k.plain ? { real: join(dirReal.real, k.name), inside: true } : (memo.insideSync(boundary.root, found) ?? (await resolveInside(boundary.root, found)));
      if (!fileReal.inside) throw outside(fileReal.real);
      const file = fileReal.real;
      const where = join(shown, k.name);
      let before: string;
      try {
        before = readFileSync(file, 'utf8');
      } catch (e) {
        throw fail.failed(KustomizeErrors.READ, `cannot read ${where}: ${(e as Error).message}`, { where: file });
      }
      texts.set(found, before);
      const { text, changes, warnings } = editKustomizationText(before, exprs, where);
      if (!opts.render) {
        try {
          lists.set(found, kustomizationLists(before));
        } catch {
          /* phase 2 reads it again and says what it can */
        }
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
  for (const r of planned as OverlayResult[]) {
    // the same overlay given twice is edited once
    if (seen.has(r.file)) continue;
    seen.set(r.file, r.dir);
    results.push(r);
  }

  // 2. the images' users, as far as the overlay's files and local bases tell (a warning; --render checks for real)
  if (!opts.render) {
    const cache = new Map<string, Promise<{ refs: string[]; complete: boolean }>>();
    const known = { listings, texts, lists };
    await pool(results, conc, async (r) => {
      const { refs, complete } = await imagesReachable(resolve(opts.cwd, r.dir), cache, 0, known);
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
  // one after the other, synchronously: small files, where a thread-pool hop per call costs more than the write
  let writeError: { r: OverlayResult; e: Error } | undefined;
  for (const r of changed) {
    try {
      writeFileAtomicSync(r.file, r.after);
      written.push(r);
    } catch (e) {
      writeError = { r, e: e as Error };
      break;
    }
  }
  if (writeError) {
    const bad = await restore();
    throw fail.failed(KustomizeErrors.WRITE, `cannot write ${writeError.r.where}: ${writeError.e.message}`, {
      where: writeError.r.file,
      cause: writeError.e,
      details: bad.length ? ['could not restore:', ...bad] : [`${written.length} file(s) already written were restored; all files are as before`],
      hint: 'check that the file and its directory are writable (a temp file is created beside it)',
    });
  }

  // 4. render check
  if (opts.render) {
    for (const r of changed) {
      try {
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

/** the pattern of each images[].name, compiled once (set-image checks the same name in a thousand overlays) */
const namePatterns = new Map<string, RegExp>();
/** a YAML 1.2 plain scalar that is certainly a string: starts with a letter, not true/false/null in any case yaml reads */
const NOT_STRING_1_2 = /^(?:true|True|TRUE|false|False|FALSE|null|Null|NULL)$/;
/**
 * imagesInYaml for a file in the subset of src/edit/simple-yaml.ts (most single-document resource files), without
 * the full parser; undefined when the file or one of its `image` values is outside it (then the parser decides).
 */
function imagesInSimpleYaml(text: string): string[] | undefined {
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

/** whether a rendered image reference is what the entry makes of a matched image */
export function renderedMatches(ref: string, e: ImageEntry): boolean {
  const { name, tag, digest } = splitImage(ref);
  if (name !== (e.newName ?? e.name)) return false;
  if (e.digest && digest !== e.digest) return false;
  if (e.newTag && !e.digest && tag !== e.newTag) return false;
  if (e.newTag && e.digest && tag !== e.newTag) return false;
  return true;
}

function describeExpected(e: ImageEntry): string {
  return `${e.newName ?? e.name}${e.newTag ? `:${e.newTag}` : ''}${e.digest ? `@${e.digest}` : ''}`;
}

/** the resources/bases/components lists of a kustomization (its first document), for the walk below */
function kustomizationLists(text: string): Record<string, unknown> {
  // most kustomizations are plain block YAML: read the three lists without a full parse (src/edit/simple-yaml.ts)
  const simple = readSimpleYaml(text);
  if (simple) {
    const out: Record<string, unknown> = {};
    for (const k of ['resources', 'bases', 'components']) {
      const v = sget(simple, k);
      if (v?.kind === 'seq') out[k] = v.items.map((i) => (i.kind === 'scalar' ? i.value : undefined));
    }
    return out;
  }
  const d = parseAllDocuments(text) as unknown as Array<{ toJS(): unknown }>;
  return ((Array.isArray(d) ? d[0]?.toJS() : undefined) ?? {}) as Record<string, unknown>;
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
        refs.push(...imagesInYaml(readFileSync(join(key, n), 'utf8')));
      } catch {
        /* a directory or unreadable: skip */
      }
    }
    if (!kname || depth > 20) return { refs, complete: complete && !!kname };
    let k: Record<string, unknown> = {};
    try {
      const kfile = join(key, kname);
      k = known?.lists?.get(kfile) ?? kustomizationLists(known?.texts.get(kfile) ?? readFileSync(kfile, 'utf8'));
    } catch {
      return { refs, complete: false };
    }
    const entries = ['resources', 'bases', 'components'].flatMap((f) => (Array.isArray(k[f]) ? (k[f] as unknown[]) : [])).filter((x): x is string => typeof x === 'string');
    for (const e of entries) {
      if (/^[a-z][a-z0-9+.-]*:\/\/|^git@|^github\.com\/|\?ref=/i.test(e)) {
        complete = false;
        continue;
      }
      const target = resolve(key, e);
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
          refs.push(...imagesInYaml(readFileSync(target, 'utf8')));
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
