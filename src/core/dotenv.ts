/**
 * Outputs for GitLab's `artifacts:reports:dotenv`. GitLab accepts KEY=VALUE lines, one per variable,
 * with no multi-line values. Existing keys in the file are kept unless overwritten, so several
 * commands in one job can share a file. Written atomically.
 */
import { accessSync, closeSync, constants, openSync, statSync, unlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CoreErrors } from './catalogue.js';
import { fail } from './errors.js';
import { writeFileAtomic } from './fsutil.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function formatDotenv(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n') + '\n';
}

export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  return out;
}

/**
 * --dotenv checked before the command acts (src/cli.ts): a file, or nothing yet, in a directory that exists and
 * can be written (the file is replaced through a temp file beside it). Found only when the outputs were written,
 * a bad path failed the job after the command had pushed, tagged or edited.
 */
export function checkDotenvTarget(file: string): void {
  const bad = (why: string, hint: string) => fail.usage(CoreErrors.DOTENV_PATH, `--dotenv ${JSON.stringify(file)}: ${why}; nothing was done`, { where: file, hint });
  const st = statSync(file, { throwIfNoEntry: false });
  if (st && !st.isFile()) throw bad(st.isDirectory() ? 'it is a directory' : 'it is not a regular file', 'name a file, e.g. --dotenv gitops.env, and list it under artifacts:reports:dotenv');
  const dir = dirname(file);
  const d = statSync(dir, { throwIfNoEntry: false });
  if (!d?.isDirectory()) throw bad(`its directory ${dir} does not exist`, 'create the directory first, or write the file in the job\'s working directory');
  // a temp file made and removed, as writeFileAtomic will make one there (access() says yes to root on any
  // writable mount, and for /proc)
  const probe = join(dir, `.${basename(file)}.${process.pid}.probe`);
  try {
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
    if (st) accessSync(file, constants.R_OK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw bad(`${st ? 'the file or its directory' : `its directory ${dir}`} cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'write the file in a writable directory, e.g. the job\'s working directory');
  }
}

export async function writeDotenv(file: string, vars: Record<string, string | number | boolean | undefined>): Promise<void> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) continue;
    if (!KEY.test(k)) throw fail.usage(CoreErrors.DOTENV_KEY, `invalid dotenv variable name ${JSON.stringify(k)}`, { where: file });
    const s = String(v);
    if (/[\r\n]/.test(s)) throw fail.failed(CoreErrors.DOTENV_VALUE, `dotenv value for ${k} has a line break, which GitLab's dotenv report rejects`, { where: file });
    clean[k] = s;
  }
  let existing: Record<string, string> = {};
  try {
    existing = parseDotenv(await readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fail.failed(CoreErrors.DOTENV_READ, `cannot read dotenv file: ${(e as Error).message}`, { where: file });
  }
  try {
    await writeFileAtomic(file, formatDotenv({ ...existing, ...clean }));
  } catch (e) {
    throw fail.failed(CoreErrors.DOTENV_WRITE, `cannot write dotenv file: ${(e as Error).message}`, { where: file, hint: 'check that the directory exists and is writable' });
  }
}
