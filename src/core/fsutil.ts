// fs.promises, not node:fs/promises: its getter loads the module on first use, not when this file is loaded
import { closeSync, existsSync, fchmodSync, fstatSync, openSync, promises as fsp, rename as renameCb, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isUtf8 } from 'node:buffer';
import type { ErrorCode } from './error-codes.js';
import { fail } from './errors.js';

let tmpTag: string | undefined;
let tmpSeq = 0;
/**
 * A temp name beside `file`, unique in this process (pid, a random tag drawn once, a counter). Every temp file is
 * created exclusively (O_EXCL: an existing file or symlink of that name is refused, never followed), so the tag
 * need not be unpredictable: Math.random, not node:crypto, whose load cost every command 7-30 ms at start-up.
 */
function tmpNameFor(file: string): string {
  tmpTag ??= `.${process.pid}.${Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0')}`;
  const tail = `${tmpTag}${(tmpSeq++).toString(36)}.tmp`;
  // `dir/name` with a name that is not `.` or `..`: `dir/.name<tail>` by slicing (path.join normalised the whole
  // path again, a thousand times for set-image); anything else through node:path
  const slash = file.lastIndexOf('/');
  const name = slash > 0 ? file.slice(slash + 1) : '';
  if (name !== '' && name !== '.' && name !== '..') return `${file.slice(0, slash + 1)}.${name}${tail}`;
  return join(dirname(file), `.${basename(file)}${tail}`);
}

/**
 * Write a file atomically: write a temp file in the same directory, copy the original mode, rename
 * over. A crash or a failed write leaves the original file untouched.
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = tmpNameFor(file);
  let mode: number | undefined;
  try {
    mode = (await fsp.stat(file)).mode & 0o7777;
  } catch {
    mode = undefined;
  }
  try {
    await fsp.writeFile(tmp, data, mode === undefined ? { flag: 'wx' } : { mode, flag: 'wx' });
    if (mode !== undefined) await fsp.chmod(tmp, mode); // umask may have narrowed it
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * Permission bits (no setuid/setgid/sticky) → whether a file created with them keeps them, i.e. the umask takes
 * none of them. The umask is the process's (nothing here changes it): learnt with one fstat on the first file,
 * so a thousand writes with the usual 0644 under umask 022 make no fchmod.
 */
const umaskKeeps = new Map<number, boolean>();
/** give the temp file the original's mode, which umask may have narrowed at open */
function restoreMode(fd: number, mode: number): void {
  if (mode & 0o7000) return fchmodSync(fd, mode); // the kernel may drop these per directory: always set them
  let keeps = umaskKeeps.get(mode);
  if (keeps === undefined) {
    keeps = (fstatSync(fd).mode & 0o7777) === mode;
    umaskKeeps.set(mode, keeps);
  }
  if (!keeps) fchmodSync(fd, mode);
}

/**
 * writeFileAtomic without the thread-pool hops, for a command that writes many small files in a row (set-image
 * over a thousand overlays: four asynchronous calls per file cost more than the writes; bench/set-image.ts).
 * Same guarantees: temp file beside it (created exclusively), original mode, rename over; no fsync, as above.
 */
export function writeFileAtomicSync(file: string, data: string | Buffer): void {
  const tmp = writeTempSync(file, data);
  try {
    renameSync(tmp, file);
  } catch (e) {
    unlinkQuietly(tmp);
    throw e;
  }
}

/** the temp file of an atomic write of `file`, written and closed, with the mode of `file` (if it exists) */
function writeTempSync(file: string, data: string | Buffer): string {
  const tmp = tmpNameFor(file);
  let mode: number | undefined;
  try {
    mode = statSync(file).mode & 0o7777;
  } catch {
    mode = undefined;
  }
  let created = false;
  try {
    const fd = openSync(tmp, 'wx', mode ?? 0o666);
    created = true;
    try {
      writeFileSync(fd, data);
      if (mode !== undefined) restoreMode(fd, mode);
    } finally {
      closeSync(fd);
    }
    return tmp;
  } catch (e) {
    if (created) unlinkQuietly(tmp);
    throw e;
  }
}

function unlinkQuietly(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    /* already gone */
  }
}

/**
 * Several files replaced atomically, each as writeFileAtomicSync does (temp file beside it, created exclusively,
 * original mode, rename over), in two steps: every temp file is written first, synchronously (small files), then
 * the renames run in the thread pool, `concurrency` at a time. Renaming over an existing file is the slow part
 * (ext4 starts writing the new data out then: auto_da_alloc): a few at once overlap those waits, with each other
 * and with the process (set-image over 1,000 overlays: bench/set-image.ts).
 * A failure to write a temp file renames nothing. After a failed rename no further rename starts; every temp file
 * not renamed is removed. Returns the indexes of the files replaced (in the order they were) and the failure, if
 * any: putting back the files already replaced is the caller's (it has their old bytes).
 * The process exiting meanwhile (SIGTERM: src/core/cleanup.ts ends with process.exit) finishes the batch first,
 * synchronously, as a loop of synchronous writes would have before the handler ran: no half-replaced set and no
 * temp file left (after a failed rename it removes the temp files instead). `items` name distinct files.
 */
export async function writeFilesAtomic(items: ReadonlyArray<{ file: string; data: string | Buffer }>, concurrency = 8): Promise<{ written: number[]; failed?: { index: number; error: Error } }> {
  const tmps: string[] = [];
  for (let i = 0; i < items.length; i++) {
    try {
      tmps.push(writeTempSync(items[i].file, items[i].data));
    } catch (e) {
      tmps.forEach(unlinkQuietly);
      return { written: [], failed: { index: i, error: e as Error } };
    }
  }
  const written: number[] = [];
  const renamed = new Uint8Array(items.length);
  let failed: { index: number; error: Error } | undefined;
  let next = 0;
  let active = 0;
  const onExit = (): void => {
    for (let i = 0; i < items.length; i++) {
      if (renamed[i]) continue;
      if (failed) unlinkQuietly(tmps[i]);
      else {
        try {
          renameSync(tmps[i], items[i].file);
        } catch {
          // renamed by its thread meanwhile, or cannot be: no temp file left either way
          unlinkQuietly(tmps[i]);
        }
      }
    }
  };
  process.on('exit', onExit);
  await new Promise<void>((done) => {
    const more = (): void => {
      while (active < concurrency && next < items.length && !failed) {
        const i = next++;
        active++;
        renameCb(tmps[i], items[i].file, (e) => {
          active--;
          if (e) {
            failed ??= { index: i, error: e };
            unlinkQuietly(tmps[i]);
          } else {
            renamed[i] = 1;
            written.push(i);
          }
          if (active === 0 && (failed || next >= items.length)) done();
          else more();
        });
      }
    };
    if (items.length === 0) done();
    else more();
  });
  process.off('exit', onExit);
  // the renames never started
  for (let i = next; i < items.length; i++) unlinkQuietly(tmps[i]);
  return { written, ...(failed ? { failed } : {}) };
}

/**
 * Where `path` really is, every symlink on its way resolved (a missing tail is resolved as far as it exists),
 * and whether that stays inside `root` (itself resolved). The one check for "nothing read or written outside
 * the clone / work tree": call it before reading a file that will be edited, printed or written.
 */
export async function resolveInside(root: string, path: string): Promise<{ real: string; inside: boolean }> {
  // fs.promises and node:path, not import(): in the CommonJS bundle an import() starts Node's ESM loader
  const { realpath } = fsp;
  const realRoot = await realpath(root).catch(() => resolve(root));
  let head = resolve(root, path);
  const tail: string[] = [];
  let real: string | undefined;
  for (;;) {
    real = await realpath(head).catch(() => undefined);
    if (real !== undefined) break;
    const up = dirname(head);
    if (up === head) {
      real = head;
      break;
    }
    tail.unshift(basename(head));
    head = up;
  }
  real = tail.length ? resolve(real, ...tail) : real;
  const rel = relative(realRoot, real);
  const inside = rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  return { real, inside };
}

/**
 * The git work tree that holds `dir` (looked up by name, without following symlinks, so that a symlinked
 * directory is judged by where it sits, not where it points), or undefined.
 */
export async function workTreeOf(dir: string): Promise<string | undefined> {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

/** where the first byte of `buf` that does not belong to valid UTF-8 is: its value and its line and column (1-based) */
function firstBadUtf8(buf: Buffer): { byte: number; line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    const ok = n > 0 && i + n <= buf.length && isUtf8(buf.subarray(i, i + n));
    if (!ok) return { byte: b, line, col: i - lineStart + 1 };
    if (b === 0x0a) (line++, (lineStart = i + 1));
    i += n;
  }
  return { byte: 0, line, col: buf.length - lineStart + 1 };
}

/**
 * The text of a file that is edited and written back. A file that is not UTF-8 is refused (exit 2, `code` of the
 * caller's catalogue), naming the first bad byte: decoded with replacement characters, it would be written back
 * with them, changing bytes that no edit touched (a Latin-1 comment). YAML streams are Unicode
 * (https://yaml.org/spec/1.2.2/#52-character-encodings); kustomize refuses such a kustomization itself
 * ("invalid Kustomization: yaml: invalid trailing UTF-8 octet"), and Helm reads values as UTF-8.
 */
export function utf8Text(buf: Buffer, where: string, code: ErrorCode): string {
  if (isUtf8(buf)) return buf.toString('utf8');
  const bad = firstBadUtf8(buf);
  throw fail.usage(code, `${where} is not UTF-8 text (byte 0x${bad.byte.toString(16).toUpperCase().padStart(2, '0')} at line ${bad.line}, column ${bad.col}); it is not edited`, {
    where: `${where}:${bad.line}:${bad.col}`,
    hint: 'save the file as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`) and commit it; nothing was written',
  });
}
