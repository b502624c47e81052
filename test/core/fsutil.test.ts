/**
 * writeFileAtomic and writeFileAtomicSync (src/core/fsutil.ts): the new bytes replace the file in one rename, its
 * mode is kept, no temp file is left, and a write that fails leaves the file as it was.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/core/fsutil.js';
import { makeUnwritable, UNWRITABLE_ERROR } from '../helpers/unwritable.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gci-fsutil-'));
});
afterEach(() => {
  chmodSync(dir, 0o755);
  rmSync(dir, { recursive: true, force: true });
});

const variants: Array<[string, (f: string, d: string) => Promise<void> | void]> = [
  ['writeFileAtomic', writeFileAtomic],
  ['writeFileAtomicSync', writeFileAtomicSync],
];

describe.each(variants)('%s', (_name, write) => {
  it('replaces the content, keeps the mode, leaves no temp file', async () => {
    const f = join(dir, 'kustomization.yaml');
    writeFileSync(f, 'a: 1\n');
    chmodSync(f, 0o640);
    const before = statSync(f).ino;
    await write(f, 'a: 2\n');
    expect(readFileSync(f, 'utf8')).toBe('a: 2\n');
    expect(statSync(f).mode & 0o777).toBe(0o640);
    expect(statSync(f).ino).not.toBe(before); // a new file renamed over, not the old one rewritten
    expect(readdirSync(dir)).toEqual(['kustomization.yaml']);
  });

  it('keeps every mode over many writes, whether the umask narrows it or not (the sync writer learns that once per mode)', async () => {
    // 0o666 and 0o777: narrowed by the usual umask 022 (so set again after open); 0o640, 0o600: kept by it
    for (const mode of [0o666, 0o640, 0o600, 0o777, 0o666, 0o640]) {
      for (let i = 0; i < 3; i++) {
        const f = join(dir, `m${mode.toString(8)}-${i}.yaml`);
        writeFileSync(f, 'a: 1\n');
        chmodSync(f, mode);
        await write(f, `a: ${i}\n`);
        expect(statSync(f).mode & 0o7777, `${mode.toString(8)} #${i}`).toBe(mode);
      }
    }
  });

  it('writes a new file', async () => {
    const f = join(dir, 'new.yaml');
    await write(f, 'x\n');
    expect(readFileSync(f, 'utf8')).toBe('x\n');
    expect(readdirSync(dir)).toEqual(['new.yaml']);
  });

  it('fails in a directory it cannot write to, and leaves the file as it was', async (ctx) => {
    const f = join(dir, 'k.yaml');
    writeFileSync(f, 'old\n');
    const undo = makeUnwritable(dir);
    if (!undo) return ctx.skip('root without the right to mount: no directory here that root cannot write to');
    try {
      await expect(Promise.resolve().then(() => write(f, 'new\n'))).rejects.toThrow(UNWRITABLE_ERROR);
      expect(readFileSync(f, 'utf8')).toBe('old\n');
      expect(readdirSync(dir)).toEqual(['k.yaml']);
    } finally {
      undo();
    }
  });

  it('fails when the target is a directory, and removes its temp file', async () => {
    const f = join(dir, 'sub');
    writeFileSync(join(dir, 'keep'), 'k');
    mkdirSync(f);
    await expect(Promise.resolve().then(() => write(f, 'x'))).rejects.toThrow();
    expect(readdirSync(dir).sort()).toEqual(['keep', 'sub']);
  });
});
