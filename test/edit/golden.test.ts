/**
 * Golden before/after files per edit target: test/fixtures/edit/<kind>/<case>/{before.yaml, case.json, after.yaml}.
 * case.json is either a pin ({target, value, imageRef?}), or pins for the target's edit ({pins: [...]}), and
 * may expect a refusal ({error: {code, line}}): then there is no after.yaml and the refusal must name
 * file:line. Where a case is taken from a public repository, test/fixtures/edit/SOURCES.md says which.
 *
 * Checked for each case: after.yaml byte for byte; a second run changes nothing; every line that is not a line
 * the pin had to change is identical (same count of lines, and only the reported lines differ); warnings as
 * expected.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isGitopsError } from '../../src/core/errors.js';
import { targetOf } from '../../src/edit/registry.js';
import type { EditResult, Pin } from '../../src/edit/target.js';

const FIX = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/edit');

interface Case {
  target?: string;
  value?: string;
  imageRef?: boolean;
  pins?: Pin[];
  file?: string;
  error?: { code: string; line: number; message?: string };
  warnings?: string[];
}

function runCase(kind: string, before: string, c: Case): EditResult {
  const t = targetOf(kind)!;
  const file = c.file ?? 'before.yaml';
  if (c.pins) return t.edit(before, c.pins, file);
  return t.pin!(before, file, { target: c.target!, value: c.value!, imageRef: c.imageRef });
}

const kinds = readdirSync(FIX, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

describe('edit golden files', () => {
  it('has cases for every target but the kustomization (test/fixtures/set-image has those)', () => {
    expect(kinds.sort()).toEqual(['application', 'argocd-source', 'helm', 'manifest']);
  });

  for (const kind of kinds) {
    const cases = readdirSync(join(FIX, kind)).filter((c) => existsSync(join(FIX, kind, c, 'case.json')));
    describe(kind, () => {
      for (const name of cases) {
        const dir = join(FIX, kind, name);
        const before = readFileSync(join(dir, 'before.yaml'), 'utf8');
        const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case;
        if (c.error) {
          it(`${name}: refused with ${c.error.code} at line ${c.error.line}`, () => {
            let err: unknown;
            try {
              runCase(kind, before, c);
            } catch (e) {
              err = e;
            }
            expect(isGitopsError(err), String(err)).toBe(true);
            const e = err as { code: string; where: string; exitCode: number; message: string; hint?: string };
            expect(e.code).toBe(c.error!.code);
            expect(e.exitCode).toBe(2);
            expect(e.where).toMatch(new RegExp(`^${(c.file ?? 'before.yaml').replace(/\./g, '\\.')}:${c.error!.line}:\\d+$`));
            expect(e.hint, 'says what to do').toBeTruthy();
            if (c.error!.message) expect(e.message).toContain(c.error!.message);
          });
          continue;
        }
        it(`${name}: gives after.yaml byte for byte, changes only its lines, and nothing on a second run`, () => {
          const expected = readFileSync(join(dir, 'after.yaml'), 'utf8');
          const r = runCase(kind, before, c);
          expect(r.text).toBe(expected);
          expect(r.changes.length).toBeGreaterThan(0);
          expect(r.changes.every((ch) => ch.changed)).toBe(true);
          expect(r.warnings).toEqual(c.warnings ?? []);
          // a pin never adds or removes a line; every line that differs carries a new value, and a pin
          // (one value, one place) changes the line it reports and no other
          const a = before.split('\n');
          const b = r.text.split('\n');
          expect(b.length).toBe(a.length);
          const values = c.pins ? c.pins.flatMap((p) => [p.tag, p.digest].filter((v): v is string => !!v)) : [c.value!];
          const differ = a.map((l, i) => (l !== b[i] ? i + 1 : 0)).filter((n) => n > 0);
          for (const n of differ) expect(values.some((v) => b[n - 1].includes(v)), `line ${n}: ${b[n - 1]}`).toBe(true);
          if (!c.pins) expect(differ).toEqual([...new Set(r.changes.map((ch) => ch.after.line))].sort((x, y) => x - y));
          if (before.includes('\r\n')) expect(r.text.replace(/\r\n/g, '')).not.toContain('\n');
          const again = runCase(kind, r.text, c);
          expect(again.text).toBe(r.text);
          expect(again.changes.every((ch) => !ch.changed)).toBe(true);
        });
      }
    });
  }
});
