/**
 * The contract files the tests check against live in the repository, under test/contracts/ (origins and
 * licenses in test/contracts/SOURCES.md). Nothing beside the checkout is read.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONTRACTS_DIR = fileURLToPath(new URL('../contracts', import.meta.url));

export function contractFile(name: string): string {
  const f = join(CONTRACTS_DIR, name);
  if (!existsSync(f)) throw new Error(`contract file ${f} not found (the project keeps its contract files in test/contracts/)`);
  return f;
}
