/**
 * The GitLab double's git object access for the repository API (test/doubles/gitlab/server.ts "repository"): what
 * Gitaly answers from its long-lived git processes, answered here the same way instead of one `git` process per
 * question. Same answers as the plumbing it replaces (checked by test/bump/api.test.ts and test/gitlab tests):
 *
 *   ObjectReader   one `git cat-file --batch` per repository for the life of the double: commits, trees and blobs
 *                  by object name (`<sha>`, `<rev>:<path>`, `refs/heads/<b>^{commit}`); git re-reads loose refs and
 *                  looks for new packs on a miss, so pushes by the git server are seen
 *   writeObject    a loose object written as git writes one (zlib of `<type> <size>\0<content>`, named by its hash,
 *                  created through a temp file and a rename): the blobs and trees of an API commit, without
 *                  `read-tree` + `write-tree` of the whole tree into a temp index
 *   gitAsync       the few questions still asked of a git process (last commit of a path, merge-base, commit-tree,
 *                  update-ref), without blocking the double's event loop
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

export interface GitObject {
  oid: string;
  type: string;
  data: Buffer;
}

export interface TreeEntry {
  /** as `git ls-tree` prints it: 040000, 100644, 100755, 120000, 160000 */
  mode: string;
  type: 'tree' | 'blob' | 'commit';
  oid: string;
  name: string;
}

/** one `git cat-file --batch` for a repository; questions are answered in order */
export class ObjectReader {
  private proc?: ChildProcessWithoutNullStreams;
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: Array<{ resolve: (o: GitObject | undefined) => void; reject: (e: Error) => void }> = [];

  constructor(private readonly gitDir: string) {}

  private start(): ChildProcessWithoutNullStreams {
    const p = spawn('git', ['--git-dir', this.gitDir, 'cat-file', '--batch'], { stdio: ['pipe', 'pipe', 'pipe'] });
    p.stdout.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.drain();
    });
    const die = (e: Error) => {
      if (this.proc === p) this.proc = undefined;
      for (const w of this.waiting.splice(0)) w.reject(e);
      this.buf = Buffer.alloc(0);
    };
    p.on('error', die);
    p.on('exit', (code) => die(new Error(`git cat-file --batch exited (${code})`)));
    p.stdin.on('error', () => undefined);
    p.unref();
    (p.stdout as unknown as { unref?: () => void }).unref?.();
    (p.stderr as unknown as { unref?: () => void }).unref?.();
    (p.stdin as unknown as { unref?: () => void }).unref?.();
    this.proc = p;
    return p;
  }

  private drain(): void {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl < 0 || !this.waiting.length) return;
      const header = this.buf.subarray(0, nl).toString('utf8');
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        this.buf = this.buf.subarray(nl + 1);
        this.waiting.shift()!.resolve(undefined);
        continue;
      }
      const [oid, type, size] = header.split(' ');
      const n = Number(size);
      if (this.buf.length < nl + 1 + n + 1) return;
      const data = Buffer.from(this.buf.subarray(nl + 1, nl + 1 + n));
      this.buf = this.buf.subarray(nl + 1 + n + 1);
      this.waiting.shift()!.resolve({ oid: oid!, type: type!, data });
    }
  }

  /** answers to names that cannot change: an object id, or a path or peel of one (`<sha>:<path>`, `<sha>^{tree}`) */
  private readonly fixed = new Map<string, Promise<GitObject | undefined>>();

  /** the object `name` names (any revision cat-file takes), or undefined when there is none */
  read(name: string): Promise<GitObject | undefined> {
    // one question a line: a name with a line break (or empty) names nothing
    if (!name || /[\n\r\0]/.test(name)) return Promise.resolve(undefined);
    // what an object id names is fixed; only names of refs (branches move) go to git every time. An object not
    // there yet (pushed later) is asked for again
    const fixed = /^([0-9a-f]{40}|[0-9a-f]{64})([:^].*)?$/.test(name);
    const known = fixed ? this.fixed.get(name) : undefined;
    if (known) return known;
    const p = this.proc ?? this.start();
    const answer = new Promise<GitObject | undefined>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      p.stdin.write(`${name}\n`);
    });
    if (fixed) {
      this.fixed.set(name, answer);
      answer.then((o) => (o ? undefined : this.fixed.delete(name)), () => this.fixed.delete(name));
    }
    return answer;
  }

  close(): void {
    this.proc?.stdin.end();
    this.proc?.kill();
    this.proc = undefined;
  }
}

/** the entries of a tree object, in the tree's order */
export function parseTree(data: Buffer, hashLen = 20): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(32, i);
    const nul = data.indexOf(0, sp);
    const rawMode = data.subarray(i, sp).toString('ascii');
    const name = data.subarray(sp + 1, nul).toString('utf8');
    const oid = data.subarray(nul + 1, nul + 1 + hashLen).toString('hex');
    i = nul + 1 + hashLen;
    const mode = rawMode.padStart(6, '0');
    out.push({ mode, type: mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob', oid, name });
  }
  return out;
}

/** a tree object's content from its entries (sorted as git sorts them: a tree's name compares as `name/`) */
export function formatTree(entries: TreeEntry[]): Buffer {
  const key = (e: TreeEntry) => Buffer.from(e.type === 'tree' ? `${e.name}/` : e.name, 'utf8');
  const sorted = [...entries].sort((a, b) => Buffer.compare(key(a), key(b)));
  return Buffer.concat(sorted.flatMap((e) => [Buffer.from(`${e.mode === '040000' ? '40000' : e.mode} ${e.name}\0`, 'utf8'), Buffer.from(e.oid, 'hex')]));
}

export interface CommitObject {
  tree: string;
  parents: string[];
  author: { name: string; email: string; date: string };
  committer: { name: string; email: string; date: string };
  /** the message as `%B` prints it */
  message: string;
}

/** `<epoch> <+hhmm>` as git's strict ISO 8601 (`%aI`: 2026-12-06T22:59:33+01:00) */
function isoOf(epoch: string, tz: string): string {
  const m = /^([+-])(\d\d)(\d\d)$/.exec(tz) ?? ['', '+', '00', '00'];
  const offset = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  const local = new Date((Number(epoch) + offset * 60) * 1000).toISOString().slice(0, 19);
  return `${local}${m[1]}${m[2]}:${m[3]}`;
}

function person(v: string): { name: string; email: string; date: string } {
  const m = /^(.*?) ?<([^>]*)> (\d+) ([+-]\d{4})$/.exec(v);
  if (!m) return { name: v, email: '', date: '' };
  return { name: m[1]!, email: m[2]!, date: isoOf(m[3]!, m[4]!) };
}

export function parseCommit(data: Buffer): CommitObject {
  const text = data.toString('utf8');
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end);
  const message = end < 0 ? '' : text.slice(end + 2);
  const c: CommitObject = { tree: '', parents: [], author: person(''), committer: person(''), message };
  for (const line of head.split('\n')) {
    if (line.startsWith(' ')) continue; // a continuation (gpgsig, mergetag)
    const sp = line.indexOf(' ');
    const k = line.slice(0, sp);
    const v = line.slice(sp + 1);
    if (k === 'tree') c.tree = v;
    else if (k === 'parent') c.parents.push(v);
    else if (k === 'author') c.author = person(v);
    else if (k === 'committer') c.committer = person(v);
  }
  return c;
}

const formats = new Map<string, 'sha1' | 'sha256'>();
/** the repository's object format (extensions.objectformat; sha1 unless it says sha256) */
export function objectFormat(gitDir: string): 'sha1' | 'sha256' {
  let f = formats.get(gitDir);
  if (!f) {
    const cfg = existsSync(join(gitDir, 'config')) ? readFileSync(join(gitDir, 'config'), 'utf8') : '';
    f = /^\s*objectformat\s*=\s*sha256\s*$/im.test(cfg) ? 'sha256' : 'sha1';
    formats.set(gitDir, f);
  }
  return f;
}

/** write a loose object as git does (https://git-scm.com/book/en/v2/Git-Internals-Git-Objects); returns its id */
export function writeObject(gitDir: string, type: 'blob' | 'tree' | 'commit', content: Buffer): string {
  const store = Buffer.concat([Buffer.from(`${type} ${content.length}\0`, 'utf8'), content]);
  const oid = createHash(objectFormat(gitDir)).update(store).digest('hex');
  const dir = join(gitDir, 'objects', oid.slice(0, 2));
  const file = join(dir, oid.slice(2));
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `tmp_obj_${process.pid}_${Math.random().toString(36).slice(2)}`);
    writeFileSync(tmp, deflateSync(store), { mode: 0o444 });
    renameSync(tmp, file);
  }
  return oid;
}

/** a git command that does not block the double (its stdout; a failure rejects with the exit code) */
export function gitAsync(gitDir: string, args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ out: string; code: number }> {
  return new Promise((resolve) => {
    const p = execFile('git', ['--git-dir', gitDir, ...args], { env: { ...process.env, ...o.env }, maxBuffer: 256 << 20 }, (err, stdout) => {
      resolve({ out: String(stdout ?? ''), code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0 });
    });
    if (o.input !== undefined) p.stdin?.end(o.input);
  });
}
