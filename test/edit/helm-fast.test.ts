/**
 * The Helm target's fast path (src/edit/helm-fast.ts: pin without the yaml parse) against the full path
 * (src/edit/helm.ts pinWith over the parsed file): every Helm golden (test/fixtures/edit/helm), each with its own
 * TARGET and value and with every path to a scalar of the file and several values (tags that must be quoted,
 * digests, numeric-looking, letter-first, versions); generated values files in several quote styles. The same
 * text, changes and warnings, or the same refusal (code, where, message), byte for byte; and the fast path
 * answers a good share of them itself.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helm } from '../../src/edit/helm.js';
import { helmFastPath, pinHelmFast } from '../../src/edit/helm-fast.js';
import { readSimpleYaml, type SNode } from '../../src/edit/simple-yaml.js';
import type { PinRequest } from '../../src/edit/target.js';

const FIX = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/edit/helm');
const D = `sha256:${'c'.repeat(64)}`;

function through(fast: boolean, text: string, req: PinRequest) {
  helmFastPath.enabled = fast;
  try {
    return helm.pin!(text, 'values.yaml', req);
  } catch (e) {
    const g = e as { code?: string; where?: string; message: string };
    return { error: `${g.code} ${g.where} ${g.message}` };
  } finally {
    helmFastPath.enabled = true;
  }
}

let hits = 0;
let total = 0;
function bothWays(text: string, reqs: PinRequest[]): void {
  for (const req of reqs) {
    total++;
    const fast = through(true, text, req);
    const full = through(false, text, req);
    expect(fast, `${JSON.stringify(text)} ${JSON.stringify(req)}`).toEqual(full);
    if (pinHelmFast(text, req)) hits++;
  }
}

/** the dotted paths of every scalar of a file in the simple subset */
function scalarPaths(text: string): string[] {
  const root = readSimpleYaml(text);
  const out: string[] = [];
  const walk = (n: SNode, path: string): void => {
    if (n.kind === 'scalar' || n.kind === 'null') out.push(path);
    else if (n.kind === 'map') for (const p of n.pairs) walk(p.value, path ? `${path}.${p.key}` : p.key);
    else n.items.forEach((it, i) => walk(it, `${path}[${i}]`));
  };
  if (root) walk(root, '');
  return out;
}

const VALUES = ['1.0.1', '6.9.2', 'v2', 'latest', '1.10', '1.11', 'on', 'true', '16', '1e3', '0.0.1-rc.1', D, 'not a tag'];

const goldens = readdirSync(FIX).filter((c) => existsSync(join(FIX, c, 'case.json')));
const generated = [
  'image:\n  repository: registry.example.com/team/app\n  tag: "1.0.0" # bumped by CI\n  pullPolicy: IfNotPresent\n',
  "image:\n  repository: app\n  tag: '1.0.0'\n",
  'image:\n  repository: app\n  tag: 1.0.0\n',
  'image:\n  repository: app\n  tag: v1\n  digest: ""\n',
  'image:\n  repository: app\n  tag: ""\n',
  'image:\n  repository: app\n  tag:\n',
  'image:\n  repository: app\n  tag: ${TAG}\n',
  'image:\n  repository: app\n  tag: "{{ .Values.x }}"\n',
  'image:\n  repository: app\n  Tag: v1\n  digest: sha256:abc\n',
  'components:\n- name: a\n  image:\n    tag: v1\n- name: b\n  image:\n    tag: "2.0.0"\n',
  'a:\n  b:\n    c: d\n',
  '# only a comment\n',
  'true:\n  tag: v1\nnull:\n  tag: v1\n"q":\n  tag: v1\n',
  'image:\n  tag: 1.0.0   # trailing\n\n\nother: x\n',
];

describe('Helm pin: fast path = full path, byte for byte', () => {
  it('on every Helm golden, with its own request and every scalar path × values', () => {
    for (const c of goldens) {
      const text = readFileSync(join(FIX, c, 'before.yaml'), 'utf8');
      const cs = JSON.parse(readFileSync(join(FIX, c, 'case.json'), 'utf8')) as { target?: string; value?: string; imageRef?: boolean };
      const reqs: PinRequest[] = [];
      if (cs.target) reqs.push({ target: cs.target, value: cs.value!, ...(cs.imageRef ? { imageRef: true } : {}) });
      for (const target of [...scalarPaths(text), 'image.tag', 'spec.values.image.tag', 'image.nothere', 'image[0]', 'image."tag"']) for (const value of VALUES) reqs.push({ target, value });
      bothWays(text, reqs);
    }
  });
  it('on generated values files', () => {
    for (const text of generated) {
      const reqs: PinRequest[] = [];
      for (const target of [...scalarPaths(text), 'image.tag', 'components[1].image.tag', 'components[01].image.tag', 'true.tag', 'q.tag']) {
        for (const value of VALUES) reqs.push({ target, value }, { target, value, imageRef: true });
      }
      bothWays(text, reqs);
    }
  });
  it('answers the common file itself, and a good share of the rest', () => {
    const text = generated[0];
    const r = pinHelmFast(text, { target: 'image.tag', value: '1.0.1' });
    expect(r?.text).toBe(text.replace('"1.0.0"', '"1.0.1"'));
    expect(pinHelmFast(generated[2], { target: 'image.tag', value: '6.9.2' })?.text).toBe(generated[2].replace('1.0.0', '6.9.2'));
    expect(hits, `${hits} of ${total}`).toBeGreaterThan(total / 10);
  });
});
