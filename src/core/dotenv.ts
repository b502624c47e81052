/**
 * Outputs for GitLab's `artifacts:reports:dotenv`. GitLab accepts KEY=VALUE lines, one per variable,
 * with no multi-line values. Existing keys in the file are kept unless overwritten, so several
 * commands in one job can share a file. Written atomically.
 */
import { readFile } from 'node:fs/promises';
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
