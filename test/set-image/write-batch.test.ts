/**
 * set-image's batch write (src/core/fsutil.ts writeFilesAtomic): every temp file first, then the renames in the
 * thread pool. What it leaves: on success every file new and no temp file; a temp file that cannot be written
 * renames nothing; and a process that exits while renames are in flight (a SIGTERM ends in process.exit,
 * src/core/cleanup.ts) finishes the batch first: every file new, no temp file left.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFilesAtomic } from '../../src/core/fsutil.js';
import { makeUnwritable, UNWRITABLE_ERROR } from '../helpers/unwritable.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
function fresh(n: number): { dir: string; items: Array<{ file: string; data: string }> } {
  const dir = mkdtempSync(join(tmpdir(), 'gci-batch-'));
  roots.push(dir);
  const items = Array.from({ length: n }, (_, i) => ({ file: join(dir, `f${i}.yaml`), data: `new ${i}\n` }));
  for (const it of items) writeFileSync(it.file, 'old\n', { mode: 0o640 });
  return { dir, items };
}

describe('writeFilesAtomic', () => {
  it('replaces every file, keeps each mode, leaves no temp file', async () => {
    const { dir, items } = fresh(100);
    const w = await writeFilesAtomic(items, 4);
    expect(w.failed).toBeUndefined();
    expect([...w.written].sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    for (const it of items) {
      expect(readFileSync(it.file, 'utf8')).toBe(it.data);
      expect(statSync(it.file).mode & 0o777).toBe(0o640);
    }
    expect(readdirSync(dir).length).toBe(100);
  });

  it('a temp file that cannot be written: no file replaced, no temp file left', async (ctx) => {
    const { dir, items } = fresh(5);
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    writeFileSync(join(ro, 'x.yaml'), 'old\n');
    const undo = makeUnwritable(ro);
    if (!undo) return ctx.skip('root without the right to mount: no directory here that root cannot write to');
    try {
      const w = await writeFilesAtomic([...items, { file: join(ro, 'x.yaml'), data: 'new\n' }]);
      expect(w.failed?.index).toBe(5);
      expect(String(w.failed?.error)).toMatch(UNWRITABLE_ERROR);
      expect(w.written).toEqual([]);
      for (const it of items) expect(readFileSync(it.file, 'utf8')).toBe('old\n');
      expect(readFileSync(join(ro, 'x.yaml'), 'utf8')).toBe('old\n');
      expect(readdirSync(dir).sort()).toEqual([...items.map((_, i) => `f${i}.yaml`), 'ro'].sort());
      expect(readdirSync(ro)).toEqual(['x.yaml']);
    } finally {
      undo();
    }
  });

  it('the process exiting while renames are in flight finishes the batch: every file new, no temp file', () => {
    const { dir, items } = fresh(200);
    const script = join(dir, 'exit-mid-batch.ts');
    writeFileSync(
      script,
      `import { writeFilesAtomic } from ${JSON.stringify(join(ROOT, 'src/core/fsutil.ts'))};
const items = ${JSON.stringify(items)};
void writeFilesAtomic(items, 4);
process.exit(0);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    for (const it of items) expect(readFileSync(it.file, 'utf8')).toBe(it.data);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
