/** Every error code the source can raise is documented for users (docs/errors.md or a command's page). */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
// any quoted E<AREA>_<PROBLEM> string in src/: a new area needs no change here
const AREAS = /'(E(?!AI_|RR_)[A-Z]{2,}_[A-Z0-9_]+)'/g; // not node's own EAI_*/ERR_* codes

function files(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith(ext))
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

describe('error catalogue', () => {
  const codes = new Set<string>();
  for (const f of files(join(root, 'src'), '.ts')) for (const m of readFileSync(f, 'utf8').matchAll(AREAS)) codes.add(m[1]!);
  const docs = [join(root, 'docs/errors.md'), ...files(join(root, 'docs/commands'), '.md')].map((f) => readFileSync(f, 'utf8')).join('\n');

  it('finds the codes (the scan is live)', () => {
    expect(codes.size).toBeGreaterThan(40);
    expect(codes).toContain('EKUSTOMIZE_NOT_FOUND');
  });

  it('documents every code', () => {
    const missing = [...codes].filter((c) => !docs.includes(c)).sort();
    expect(missing).toEqual([]);
  });

  it("docs/errors.md's table of every code is what the catalogues say (node scripts/errors-doc.mjs)", async () => {
    const gen = await import('../../scripts/errors-doc.mjs');
    expect(readFileSync(join(root, 'docs/errors.md'), 'utf8')).toBe(gen.render(root));
    // every code raised in src/ is in a catalogue (fail.* takes only catalogued codes: src/core/error-codes.ts)
    const catalogued = new Set(gen.allCodes(root).map((c) => c.code));
    expect([...codes].filter((c) => !catalogued.has(c)).sort()).toEqual([]);
    for (const c of gen.allCodes(root)) expect(c.meaning, c.code).not.toBe('');
  });

  it('every catalogued code is raised somewhere, so no documented row is dead', () => {
    const sources = files(join(root, 'src'), '.ts').map((f) => ({ f, text: readFileSync(f, 'utf8') }));
    const dead: string[] = [];
    for (const { f, text } of sources) {
      const obj = /^export const (\w+Errors) = \{/m.exec(text)?.[1];
      if (!obj) continue;
      for (const m of text.matchAll(/^\s+([A-Z0-9_]+): '(E[A-Z]+_[A-Z0-9_]+)'/gm)) {
        const used = sources.some((o) => o.f !== f && (new RegExp(`\\b${obj}\\.${m[1]}\\b`).test(o.text) || o.text.includes(`'${m[2]}'`)));
        if (!used) dead.push(`${m[2]} (${obj}.${m[1]})`);
      }
    }
    expect(dead).toEqual([]);
  });
});
