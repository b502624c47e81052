/**
 * The fast path of set-image (src/edit/simple-yaml.ts, fastEdit in src/kustomize/edit.ts) against the full YAML
 * parser: the tree it reads is the one `yaml` builds (same scalars at the same offsets), it refuses what is outside
 * its subset, and an edit through it gives the same text and changes as the full path, byte for byte, on every
 * set-image golden and on generated kustomizations.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { readSimpleYaml, type SNode } from '../../src/edit/simple-yaml.js';
import { editKustomizationText, fastPath } from '../../src/kustomize/edit.js';
import { parseImageExprs } from '../../src/kustomize/image-expr.js';

const FIX = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/set-image');

/** the simple tree and yaml's agree: same keys in order, same items, scalars with the same value at the same offset */
function same(s: SNode, y: unknown, path: string): void {
  if (s.kind === 'null') {
    expect(y === null || (isScalar(y) && y.value === null), path).toBe(true);
    return;
  }
  if (s.kind === 'scalar') {
    expect(isScalar(y), path).toBe(true);
    const n = y as { value: unknown; range: [number, number]; type: string };
    expect(n.range[0], `${path} offset`).toBe(s.start);
    if (s.style !== 'PLAIN') expect(n.value, path).toBe(s.value);
    else expect(typeof n.value === 'string' ? n.value : String(n.value), path).toBe(typeof n.value === 'string' ? s.value : String(n.value));
    return;
  }
  if (s.kind === 'map') {
    expect(isMap(y), path).toBe(true);
    const items = (y as { items: Array<{ key: { value: unknown }; value: unknown }> }).items;
    expect(items.map((p) => String(p.key.value)), path).toEqual(s.pairs.map((p) => p.key));
    s.pairs.forEach((p, i) => same(p.value, items[i].value, `${path}.${p.key}`));
    return;
  }
  expect(isSeq(y), path).toBe(true);
  const items = (y as { items: unknown[] }).items;
  expect(items.length, path).toBe(s.items.length);
  s.items.forEach((it, i) => same(it, items[i], `${path}[${i}]`));
}

function bothWays(text: string, args: string[]) {
  const exprs = parseImageExprs(args);
  const run = () => {
    try {
      return editKustomizationText(text, exprs, 'k.yaml');
    } catch (e) {
      return { error: (e as { code: string; where: string; message: string }).code + ' ' + (e as { where: string }).where };
    }
  };
  fastPath.enabled = true;
  const fast = run();
  fastPath.enabled = false;
  const full = run();
  fastPath.enabled = true;
  return { fast, full };
}

const INDENTS = [
  (k: string, lines: string[][]) => `${k}:\n${lines.map((e) => e.map((l, i) => (i ? '  ' : '- ') + l).join('\n')).join('\n')}\n`,
  (k: string, lines: string[][]) => `${k}:\n${lines.map((e) => e.map((l, i) => (i ? '    ' : '  - ') + l).join('\n')).join('\n')}\n`,
  (k: string, lines: string[][]) => `${k}:\n${lines.map((e) => e.map((l, i) => (i ? '     ' : '   -  ') + l).join('\n')).join('\n')}\n`,
];
const VALUES = ['v1', '"1.0"', "'2.3'", 'latest # pinned', '"0.9.1"   # bumped by CI', 'sha-3f2a9c1'];
const D = `sha256:${'a'.repeat(64)}`;

describe('simple-yaml reader', () => {
  it('reads the set-image goldens it accepts as yaml does, and refuses what is outside its subset', () => {
    let accepted = 0;
    for (const c of readdirSync(FIX)) {
      for (const f of ['before.yaml', 'after.yaml']) {
        const p = join(FIX, c, f);
        if (!existsSync(p)) continue;
        const text = readFileSync(p, 'utf8');
        const s = readSimpleYaml(text);
        if (!s) continue;
        accepted++;
        same(s, parseDocument(text).contents as Node, `${c}/${f}`);
      }
    }
    expect(accepted).toBeGreaterThan(10);
    for (const bad of ['a: [1, 2]\n', 'a: &x 1\nb: *x\n', 'a: |\n  x\n', 'a: 1\na: 2\n', 'a: 1\r\n', '---\na: 1\n', 'a:\n\t- x\n', 'a: "x\\ty"\n', 'a: b: c\n', 'a: 1\n  b: 2\n', '? a\n: 1\n', 'a: !!str 1\n', '- a\n', 'a: x\n  y\n']) {
      expect(readSimpleYaml(bad), JSON.stringify(bad)).toBeUndefined();
      // (yaml itself either errors on these or reads a shape the fast path does not handle)
    }
  });

  it('gives the same structure as yaml for compact and indented sequences, nested blocks and comments', () => {
    const text = 'a:\n- x\n- y: 1\n  z:\n  - q # c\n  w: "s # not a comment"\nb:\n  c:\n    - 1\n    - \'2\'\n  d: ~\n# end\ne:\n';
    same(readSimpleYaml(text)!, parseDocument(text).contents as Node, 'root');
  });
});

describe('set-image fast path = full path', () => {
  it('on every set-image golden (and the same files with other tags and digests)', () => {
    let n = 0;
    for (const c of readdirSync(FIX)) {
      const before = join(FIX, c, 'before.yaml');
      if (!existsSync(before)) continue;
      const text = readFileSync(before, 'utf8');
      const args = JSON.parse(readFileSync(join(FIX, c, 'args.json'), 'utf8')) as string[];
      const names = [...new Set(parseImageExprs(args).map((e) => e.name))];
      for (const a of [args, names.map((x) => `${x}:9.9.9`), names.map((x) => `${x}@${D}`), names.map((x) => `${x}=*:1.10`)]) {
        const { fast, full } = bothWays(text, a);
        expect(fast, `${c} ${a.join(' ')}`).toEqual(full);
        n++;
      }
    }
    expect(n).toBeGreaterThan(40);
  });

  it('on generated kustomizations: layouts, quote styles, comments, field orders, numeric-looking values', () => {
    let n = 0;
    for (const layout of INDENTS) {
      for (const v of VALUES) {
        for (const order of [['name: app', `newTag: ${v}`], [`newTag: ${v}`, 'name: app'], ['name: app', 'newName: registry.example.com/app', `newTag: ${v}`], ['name: app', `digest: ${D}`]]) {
          const text = `# overlay\nresources:\n  - ../../base   # shared\n\n${layout('images', [order, ['name: other', 'newTag: "1"']])}namespace: prod\n`;
          for (const args of [['app:1.2.3'], ['app:1.10'], ['app:on'], [`app@${D}`], ['app=*:2.0'], ['app=registry.example.com/app:*'], ['app:1.2.3', 'other:2'], ['app:v1'], ['app:latest'], ['new:1']]) {
            const { fast, full } = bothWays(text, args);
            expect(fast, `${text}\n${args}`).toEqual(full);
            n++;
          }
        }
      }
    }
    expect(n).toBe(3 * VALUES.length * 4 * 10);
  });

  it('falls back to the full path where the file is outside the subset, with the answer of the full path', () => {
    for (const text of ['images:\n- name: app\n  newTag: 1.10\n', 'images: [{name: app, newTag: v1}]\n', 'images:\n- name: app\n  newTag: v1\n---\n', 'images:\n- name: app\n  newTag: v1\n- name: app\n  newTag: v2\n']) {
      const { fast, full } = bothWays(text, ['app:v3']);
      expect(fast).toEqual(full);
    }
  });
});
