/**
 * The build context: the files of the context directory that .dockerignore lets through, packed as a tar
 * stream, as the docker CLI sends it.
 *
 * .dockerignore follows Docker's rules (moby/patternmatcher): one pattern per line; `#` comments and blank
 * lines are skipped; patterns are trimmed and cleaned (`./a/../b` → `b`, a leading `/` dropped); `*` matches
 * within one path component, `?` one character, `[...]` a class, `**` any number of components, `\` escapes;
 * a pattern that matches a directory excludes everything below it; `!pattern` re-includes; the last matching
 * pattern wins. The Dockerfile and .dockerignore are always sent (the daemon needs them), as the CLI does.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { posix, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { stripUserinfo } from '../core/mask.js';

interface Pattern {
  re: RegExp;
  exclusion: boolean;
  text: string;
}

function cleanPattern(p: string): string {
  let c = posix.normalize(p); // ./a/../b → b, as Go's filepath.Clean
  if (c.length > 1 && c.startsWith('/')) c = c.slice(1);
  if (c.length > 1 && c.endsWith('/')) c = c.slice(0, -1);
  if (c === './' || c === '') c = '.';
  return c;
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      if (i + 1 < pattern.length) re += '\\' + pattern[++i];
      else re += '\\\\';
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        re += '[' + cls + ']';
        i = end;
      }
    } else if ('.+()|{}$^'.includes(ch)) re += '\\' + ch;
    else re += ch;
  }
  return new RegExp(re + '$');
}

export class DockerIgnore {
  readonly patterns: Pattern[];
  constructor(lines: string[]) {
    this.patterns = [];
    for (let raw of lines) {
      raw = raw.replace(/^\uFEFF/, '').trim();
      if (!raw || raw.startsWith('#')) continue;
      let exclusion = false;
      if (raw.startsWith('!')) {
        exclusion = true;
        raw = raw.slice(1).trim();
        if (!raw) continue;
      }
      const text = cleanPattern(raw);
      this.patterns.push({ re: compile(text), exclusion, text });
    }
  }

  static parse(text: string): DockerIgnore {
    return new DockerIgnore(text.split(/\r?\n/));
  }

  get hasExclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  /** true when `path` (relative, with /) is excluded from the context */
  excluded(path: string): boolean {
    const parents = path.split('/');
    let matched = false;
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue; // cannot change the outcome
      let m = p.re.test(path);
      if (!m && parents.length > 1) {
        for (let i = 1; i < parents.length && !m; i++) m = p.re.test(parents.slice(0, i).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }
}

export interface ContextFile {
  /** path inside the tar, with / */
  name: string;
  abs: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  mtime: number;
  linkname?: string;
  /** what is sent instead of the file's bytes (a git config without its credentials) */
  data?: Buffer;
}

/** a git config in the context: the checkout's own, or a submodule's */
const GIT_CONFIG = /(^|\/)\.git\/(config|modules\/.+\/config)$/;

/**
 * A git config as it may enter an image: no credentials. GitLab Runner before 18.0 clones with the job token in
 * the remote URL, which git keeps in .git/config, and a Dockerfile's `COPY . .` would put it into the image
 * (https://gitlab.com/gitlab-org/gitlab/-/issues/474043); an `extraheader` line carries an Authorization header.
 * The URLs keep everything but their userinfo, so git still works inside the image.
 */
export function gitConfigWithoutCredentials(text: string): string {
  return stripUserinfo(text.replace(/^[ \t]*extraheader[ \t]*=.*(\r?\n|$)/gim, ''));
}

export interface BuildContext {
  files: ContextFile[];
  /** the Dockerfile's path inside the context (as sent) */
  dockerfile: string;
  /** extra file added to the tar when the Dockerfile lives outside the context */
  extra?: { name: string; data: Buffer };
  ignored: number;
}

/**
 * List what the context sends. `dockerfileAbs` is the Dockerfile; when it lies outside the context it is
 * added under a random name, as the docker CLI does.
 */
export async function listContext(dir: string, dockerfileAbs: string): Promise<BuildContext> {
  const root = resolve(dir);
  let ignoreText = '';
  try {
    ignoreText = await readFile(join(root, '.dockerignore'), 'utf8');
  } catch {
    /* none */
  }
  const rel = relative(root, dockerfileAbs);
  const inside = !!rel && !rel.startsWith('..') && !isAbsolute(rel);
  const dockerfile = inside ? rel.split(sep).join('/') : `.dockerfile.${randomBytes(10).toString('hex')}`;
  // the CLI appends exceptions so the Dockerfile and .dockerignore are always sent
  const ig = DockerIgnore.parse(ignoreText + (ignoreText ? `\n!.dockerignore\n!${inside ? dockerfile.replace(/([*?[\]\\])/g, '\\$1') : '.dockerignore'}\n` : ''));
  const files: ContextFile[] = [];
  let ignored = 0;
  const walk = async (abs: string, name: string): Promise<void> => {
    const entries = (await readdir(abs)).sort();
    for (const e of entries) {
      const p = join(abs, e);
      const n = name ? `${name}/${e}` : e;
      const st = await lstat(p);
      const ex = ig.excluded(n);
      if (st.isDirectory()) {
        if (!ex) files.push({ name: n, abs: p, type: 'dir', mode: st.mode & 0o7777, size: 0, mtime: st.mtimeMs });
        else ignored++;
        // an excluded directory is entered only if an exception could re-include something below it
        if (!ex || ig.hasExclusions) await walk(p, n);
        continue;
      }
      if (ex) {
        ignored++;
        continue;
      }
      if (st.isSymbolicLink()) files.push({ name: n, abs: p, type: 'symlink', mode: st.mode & 0o7777, size: 0, mtime: st.mtimeMs, linkname: await readlink(p) });
      else if (st.isFile() && GIT_CONFIG.test(n)) {
        const data = Buffer.from(gitConfigWithoutCredentials(await readFile(p, 'latin1')), 'latin1');
        files.push({ name: n, abs: p, type: 'file', mode: st.mode & 0o7777, size: data.length, mtime: st.mtimeMs, data });
      } else if (st.isFile()) files.push({ name: n, abs: p, type: 'file', mode: st.mode & 0o7777, size: st.size, mtime: st.mtimeMs });
    }
  };
  await walk(root, '');
  const extra = inside ? undefined : { name: dockerfile, data: await readFile(dockerfileAbs) };
  return { files, dockerfile, extra, ignored };
}

// ------------------------------------------------------------------------------------------------ tar

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function header(name: string, o: { size: number; mode: number; mtime: number; type: string; linkname?: string }): Buffer {
  const blocks: Buffer[] = [];
  const long = Buffer.byteLength(name) > 100 || Buffer.byteLength(o.linkname ?? '') > 100;
  if (long) {
    const rec = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      const bl = Buffer.byteLength(body);
      let len = bl + String(bl).length;
      while (String(len).length + bl !== len) len = String(len).length + bl;
      return `${len}${body}`;
    };
    const pax = Buffer.from(rec('path', name) + (o.linkname ? rec('linkpath', o.linkname) : ''));
    blocks.push(raw('././@PaxHeader', { ...o, size: pax.length, type: 'x', linkname: '' }), pax, Buffer.alloc((512 - (pax.length % 512)) % 512));
  }
  blocks.push(raw(long ? name.slice(0, 99) : name, { ...o, linkname: long ? (o.linkname ?? '').slice(0, 99) : o.linkname }));
  return Buffer.concat(blocks);
}

function raw(name: string, o: { size: number; mode: number; mtime: number; type: string; linkname?: string }): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(o.mode, 8), 100);
  b.write(octal(0, 8), 108);
  b.write(octal(0, 8), 116);
  b.write(octal(o.size, 12), 124);
  b.write(octal(Math.floor(o.mtime / 1000), 12), 136);
  b.write('        ', 148);
  b.write(o.type, 156);
  if (o.linkname) b.write(o.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + ' ', 148);
  return b;
}

/** the context as an uncompressed tar stream (uid/gid 0, as the docker CLI sends it) */
export function tarStream(ctx: BuildContext): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for (const f of ctx.files) {
      if (f.type === 'dir') yield header(`${f.name}/`, { size: 0, mode: f.mode, mtime: f.mtime, type: '5' });
      else if (f.type === 'symlink') yield header(f.name, { size: 0, mode: f.mode, mtime: f.mtime, type: '2', linkname: f.linkname });
      else {
        yield header(f.name, { size: f.size, mode: f.mode, mtime: f.mtime, type: '0' });
        let n = 0;
        for await (const chunk of f.data ? [f.data] : createReadStream(f.abs)) {
          const c = chunk as Buffer;
          const take = Math.min(c.length, f.size - n); // a file that grew while packing is cut at its size
          if (take > 0) yield c.subarray(0, take);
          n += take;
        }
        if (n < f.size) yield Buffer.alloc(f.size - n); // one that shrank is padded
        if (f.size % 512) yield Buffer.alloc(512 - (f.size % 512));
      }
    }
    if (ctx.extra) {
      yield header(ctx.extra.name, { size: ctx.extra.data.length, mode: 0o644, mtime: Date.now(), type: '0' });
      yield ctx.extra.data;
      if (ctx.extra.data.length % 512) yield Buffer.alloc(512 - (ctx.extra.data.length % 512));
    }
    yield Buffer.alloc(1024);
  }
  return Readable.from(gen(), { objectMode: false });
}
