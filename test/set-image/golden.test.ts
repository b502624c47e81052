/**
 * Golden before/after files: test/fixtures/set-image/<case>/{before.yaml,args.json,after.yaml} (and files/, copied
 * into the overlay). The edit must give after.yaml byte for byte, be idempotent, keep every line it does not need
 * to change, and give a kustomization that `kubectl kustomize` renders with the new images.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { editKustomizationText, readImages } from '../../src/kustomize/edit.js';
import { parseImageExprs } from '../../src/kustomize/image-expr.js';
import { imagesInYaml, renderedMatches } from '../../src/kustomize/overlay.js';

const FIX = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/set-image');
const cases = readdirSync(FIX).filter((c) => !c.startsWith('_') && existsSync(join(FIX, c, 'before.yaml')));

/** lines of `before` that are absent from `after`, and lines of `after` absent from `before` (multiset) */
function lineDelta(before: string, after: string): { removed: string[]; added: string[] } {
  const count = (s: string) => {
    const m = new Map<string, number>();
    for (const l of s.split('\n')) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = count(before);
  const b = count(after);
  const removed: string[] = [];
  const added: string[] = [];
  for (const [l, n] of a) for (let i = 0; i < n - (b.get(l) ?? 0); i++) removed.push(l);
  for (const [l, n] of b) for (let i = 0; i < n - (a.get(l) ?? 0); i++) added.push(l);
  return { removed, added };
}

describe('set-image golden files', () => {
  it('has the fixtures the brief asks for', () => {
    for (const c of ['comments', 'blank-lines-doc-start', 'indented-seq', 'non-indented-seq', 'flow-list', 'crlf', 'no-images', 'deprecated-fields', 'same-image',
      'tag-to-digest-comment', 'tag-to-tag-comment', 'newname-inserted', 'digest-to-tag']) {
      expect(cases).toContain(c);
    }
  });

  for (const c of cases) {
    describe(c, () => {
      const before = readFileSync(join(FIX, c, 'before.yaml'), 'utf8');
      const expected = readFileSync(join(FIX, c, 'after.yaml'), 'utf8');
      const args = JSON.parse(readFileSync(join(FIX, c, 'args.json'), 'utf8')) as string[];
      const exprs = parseImageExprs(args);

      it('gives after.yaml byte for byte, and nothing more on a second run', () => {
        const { text, changes } = editKustomizationText(before, exprs, `${c}/kustomization.yaml`);
        expect(text).toBe(expected);
        expect(changes.some((ch) => ch.changed)).toBe(c !== 'same-image');
        const again = editKustomizationText(text, exprs, `${c}/kustomization.yaml`);
        expect(again.text).toBe(text);
        expect(again.changes.every((ch) => !ch.changed)).toBe(true);
      });

      it('changes only images: lines, and the entries are what kustomize writes', () => {
        // everything but images: parses the same
        const strip = (s: string) => {
          const d = parseDocument(s);
          d.delete('images');
          return d.toJS();
        };
        expect(strip(expected)).toEqual(strip(before));
        // no line outside the images entries is removed
        const { removed } = lineDelta(before, expected);
        for (const l of removed) expect(l, `removed line ${JSON.stringify(l)}`).toMatch(/^\s*(-\s+)?(name|newName|newTag|digest|tagSuffix):|^images:/);
        // a replaced entry keeps its key order: its `name:` line (the `- name:` line) stays as it was
        for (const l of removed) expect(l, `removed line ${JSON.stringify(l)}`).not.toMatch(/^\s*(-\s+)?name:/);
        // the entries carry the expressions
        const after = readImages(expected, c);
        for (const e of exprs) {
          const got = after.find((x) => x.name === e.name)!;
          expect(got, e.raw).toBeDefined();
          if (e.newTag && e.newTag !== '*') expect(got.newTag).toBe(e.newTag);
          if (e.digest && e.digest !== '*') expect(got.digest).toBe(e.digest);
          if (e.newName && e.newName !== '*') expect(got.newName).toBe(e.newName);
        }
        if (before.includes('\r\n')) expect(expected.replace(/\r\n/g, '')).not.toContain('\n');
      });

      it('renders with kubectl kustomize, with the new images', () => {
        const tmp = mkdtempSync(join(tmpdir(), 'gci-golden-'));
        try {
          const overlay = join(tmp, 'overlay');
          cpSync(join(FIX, '_shared', 'base'), join(tmp, 'base'), { recursive: true });
          cpSync(join(FIX, '_shared', 'deployment.yaml'), join(overlay, 'deployment.yaml'), { recursive: true });
          if (existsSync(join(FIX, c, 'files'))) cpSync(join(FIX, c, 'files'), overlay, { recursive: true });
          writeFileSync(join(overlay, 'kustomization.yaml'), expected);
          const out = execFileSync('kubectl', ['kustomize', overlay], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
          const refs = imagesInYaml(out);
          for (const e of readImages(expected, c)) {
            if (e.tagSuffix) continue;
            expect(refs.some((r) => renderedMatches(r, e)), `${JSON.stringify(e)} in ${refs.join(' ')}`).toBe(true);
          }
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      });
    });
  }
});
