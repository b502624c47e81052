/**
 * The fault-and-abuse harness: run the CLI bundle as a job would, with a secret, against real services, and
 * check that the secret is absent — raw, URL-encoded, base64 (alone, as `user:secret`, at every alignment) —
 * from stdout, stderr, every file left in the job's dirs (cwd, TMPDIR, extra dirs), every payload a server or
 * double received, and every child's command line (each child the CLI starts through PATH — git, ssh,
 * kubectl, docker — goes through a shim that records its argv).
 *
 * A new attack class joins by adding a row to a table in test/security/*.test.ts:
 *   { name, args, env, secret, users?, code, expect? }  →  abuseCase(row)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tmp } from '../helpers/services.js';

/** every form in which a secret could leak */
export function leakForms(secret: string, users: string[] = []): string[] {
  // JSON.stringify's escapes (a quote or backslash in the secret): what an error quoting a value with JSON.stringify shows
  const forms = new Set<string>([secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), JSON.stringify(secret).slice(1, -1)]);
  for (const u of users) {
    forms.add(Buffer.from(`${u}:${secret}`).toString('base64'));
    forms.add(encodeURIComponent(`${u}:${secret}`));
  }
  // the base64 characters that come only from the secret, at each of the three alignments
  const len = Buffer.byteLength(secret);
  for (let pad = 0; pad < 3; pad++) {
    const enc = Buffer.from('\0'.repeat(pad) + secret).toString('base64');
    const inner = enc.slice(Math.ceil((pad * 8) / 6), Math.floor(((pad + len) * 8) / 6));
    if (inner.length >= 8) forms.add(inner);
  }
  // each line of a multi-line secret on its own (a newline-split token leaks its tail)
  for (const line of secret.split(/[\r\n]+/)) if (line.length >= 6 && line !== secret) forms.add(line);
  return [...forms].filter((f) => f.length >= 4);
}

export function expectNoLeak(where: string, text: string, secret: string, users: string[] = []): void {
  for (const f of leakForms(secret, users)) expect(text.includes(f), `${where}: the secret leaked as ${JSON.stringify(f)}`).toBe(false);
}

const SHIMMED = ['git', 'ssh', 'kubectl', 'kustomize', 'docker'];

/** a PATH directory whose git/ssh/kubectl/... record their argv in `log` (and their environment, after a
 * `== name` line, in `envLog`), then run the real one */
export function argvShim(): { dir: string; log: string; envLog: string } {
  const dir = tmp('gci-shim-');
  const log = join(dir, 'argv.log');
  const envLog = join(dir, 'env.log');
  writeFileSync(log, '');
  writeFileSync(envLog, '');
  for (const name of SHIMMED) {
    let real: string;
    try {
      real = execFileSync('sh', ['-c', `command -v ${name}`]).toString().trim();
    } catch {
      continue;
    }
    if (!real) continue;
    const f = join(dir, name);
    writeFileSync(f, `#!/bin/sh\nprintf '%s\\0' "$0" "$@" >> '${log}'\nprintf '\\n' >> '${log}'\n{ printf '== %s\\n' '${name}'; env; } >> '${envLog}'\nexec '${real}' "$@"\n`);
    chmodSync(f, 0o755);
  }
  return { dir, log, envLog };
}

function* filesUnder(dir: string, depth = 0): Generator<string> {
  if (depth > 12 || !existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(p, depth + 1);
    else if (e.isFile() && statSync(p).size < 4 << 20) yield p;
  }
}

export interface AbuseRun extends CliResult {
  /** the TMPDIR the CLI ran with (fresh, empty before) */
  tmpdir: string;
  /** every argv the shimmed children were started with */
  childArgv: string;
  /** the environment of each shimmed child, after a `== name` line (not checked: git is given its token there) */
  childEnv: string;
}

/**
 * Run the bundle with `env` (PATH through the argv shim, TMPDIR fresh), then check `secret` is nowhere:
 * output, files under cwd/TMPDIR/`dirs`, child argv, and `payloads` (what servers received; read after).
 */
export async function runAbused(args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; secret: string; users?: string[]; dirs?: string[]; payloads?: () => string[] }): Promise<AbuseRun> {
  const shim = argvShim();
  const tmpdir = tmp('gci-tmpdir-');
  const cwd = o.cwd ?? tmp('gci-cwd-');
  const res = await runCli(args, { cwd, input: o.input, env: { ...o.env, PATH: `${shim.dir}:${process.env.PATH}`, TMPDIR: tmpdir } });
  const childArgv = readFileSync(shim.log, 'utf8');
  const childEnv = readFileSync(shim.envLog, 'utf8');
  const users = o.users ?? [];
  expectNoLeak('stdout', res.stdout, o.secret, users);
  expectNoLeak('stderr', res.stderr, o.secret, users);
  expectNoLeak('child argv', childArgv, o.secret, users);
  for (const d of [cwd, tmpdir, ...(o.dirs ?? [])]) {
    for (const f of filesUnder(d)) {
      if (f.includes(`${join('.git', 'objects')}`)) continue; // zlib-compressed: scanned through the commit below
      expectNoLeak(`file ${f}`, readFileSync(f, 'latin1'), o.secret, users);
    }
  }
  for (const p of o.payloads?.() ?? []) expectNoLeak('payload received by a server', p, o.secret, users);
  return { ...res, tmpdir, childArgv, childEnv };
}

export function ensureDir(d: string): string {
  mkdirSync(d, { recursive: true });
  return d;
}
