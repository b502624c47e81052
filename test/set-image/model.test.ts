/**
 * Seeded random kustomizations, in many layouts, against a model of kustomize's RunSetImage
 * (setimage.go: a map by name, '*' resolved against the file's entry, entries replaced wholesale, sorted by
 * name). The splice must give the model's entries, keep every other key and every comment, and be idempotent.
 */
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { editKustomizationText, readImages, type ImageEntry } from '../../src/kustomize/edit.js';
import { parseImageExprs, type ImageExpr } from '../../src/kustomize/image-expr.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** kustomize v5.5 RunSetImage on entries (names unique) */
function model(file: ImageEntry[], exprs: ImageExpr[]): ImageEntry[] {
  const map = new Map<string, ImageEntry & { keep?: Record<string, boolean> }>();
  for (const e of exprs) {
    map.set(e.name, {
      name: e.name,
      ...(e.newName !== undefined ? { newName: e.newName } : {}),
      ...(e.newTag !== undefined ? { newTag: e.newTag } : {}),
      ...(e.digest !== undefined ? { digest: e.digest } : {}),
    });
  }
  for (const im of file) {
    const a = map.get(im.name);
    if (a) {
      if (a.newName === '*') a.newName = im.newName;
      if (a.newTag === '*') a.newTag = im.newTag;
      if (a.digest === '*') a.digest = im.digest;
    } else map.set(im.name, im);
  }
  const out = [...map.values()].map((v) => {
    const e: ImageEntry = { name: v.name };
    for (const f of ['newName', 'newTag', 'digest', 'tagSuffix'] as const) if (v[f] && v[f] !== '*') e[f] = v[f];
    return e;
  });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const NAMES = ['app', 'db', 'registry.example.com/team/app', 'localhost:5000/x/web', 'sidecar', 'zz'];
const TAGS = ['v1', '1.0', '2', '1.10', 'dev-01', 'latest', 'yes', '3.2e2'];
const DIGESTS = ['sha256:' + 'a'.repeat(64), 'sha256:' + 'b'.repeat(64)];
const NEWNAMES = ['reg.io/app', 'localhost:5000/team/app', 'mirror/app'];

function layout(r: () => number, entries: ImageEntry[]): string {
  const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const eol = r() < 0.2 ? '\r\n' : '\n';
  const quote = (s: string) => pick([(x: string) => JSON.stringify(x), (x: string) => `'${x}'`, (x: string) => (/^[a-z][a-z0-9./:-]*$/.test(x) && !/^(yes|no|on|off|y|n)$/.test(x) ? x : JSON.stringify(x))])(s);
  const lines: string[] = ['# generated', 'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization'];
  if (r() < 0.5) lines.push('', 'resources:', '- ../base   # base');
  if (entries.length || r() < 0.3) {
    const style = pick(['block', 'indented', 'flow', 'flowItems']);
    if (style === 'flow') {
      lines.push(`images: [${entries.map((e) => `{${Object.entries(e).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}}`).join(', ')}]  # flow`);
    } else {
      lines.push('images:' + (r() < 0.3 ? '   # pinned images' : ''));
      const ind = style === 'indented' ? '  ' : '';
      const blank = r() < 0.3;
      entries.forEach((e, i) => {
        if (r() < 0.3) lines.push(`${ind}# entry ${i}`);
        if (style === 'flowItems') lines.push(`${ind}- {${Object.entries(e).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}}`);
        else {
          const keys = Object.keys(e).sort(() => r() - 0.5) as Array<keyof ImageEntry>;
          keys.forEach((k, j) => lines.push(`${ind}${j === 0 ? '- ' : '  '}${k}: ${quote(e[k]!)}${r() < 0.2 ? '  # c' : ''}`));
        }
        if (blank && i < entries.length - 1) lines.push('');
      });
    }
  }
  if (r() < 0.5) lines.push('namePrefix: demo-');
  if (r() < 0.3) lines.push('# trailing');
  const text = lines.join(eol) + (r() < 0.9 ? eol : '');
  return text;
}

function randomEntries(r: () => number): ImageEntry[] {
  const names = NAMES.filter(() => r() < 0.5);
  if (r() < 0.5) names.sort();
  const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  return names.map((name) => {
    const e: ImageEntry = { name };
    if (r() < 0.4) e.newName = pick(NEWNAMES);
    if (r() < 0.7) e.newTag = pick(TAGS);
    if (r() < 0.3) e.digest = pick(DIGESTS);
    if (r() < 0.05) e.tagSuffix = '-debug';
    return e;
  });
}

function randomExprs(r: () => number): string[] {
  const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const n = 1 + Math.floor(r() * 3);
  return Array.from({ length: n }, () => {
    const name = pick(NAMES);
    const form = Math.floor(r() * 7);
    const tag = r() < 0.15 ? '*' : pick(TAGS);
    const dig = r() < 0.15 ? '*' : pick(DIGESTS);
    const nn = r() < 0.2 ? '*' : pick(NEWNAMES);
    return [`${name}:${tag}`, `${name}@${dig}`, `${name}:${tag}@${dig}`, `${name}=${nn}`, `${name}=${nn}:${tag}`, `${name}=${nn}@${dig}`, `${name}=${nn}:${tag}@${dig}`][form].replace(/^([^=]*):\*(@|$)/, '$1:v9$2');
  });
}

describe('set-image against a model of kustomize RunSetImage', () => {
  const N = Number(process.env.SETIMAGE_MODEL_N ?? 400);
  const SEED = Number(process.env.SETIMAGE_MODEL_SEED ?? 20261126);
  it(`${N} random kustomizations and expressions (seed ${SEED})`, () => {
    const r = rng(SEED);
    let changed = 0;
    for (let k = 0; k < N; k++) {
      const entries = randomEntries(r);
      const text = layout(r, entries);
      const args = randomExprs(r);
      const exprs = parseImageExprs(args);
      const ctx = `case ${k}: ${JSON.stringify(args)}\n${text}`;
      const { text: out } = editKustomizationText(text, exprs, 'k.yaml');
      if (out !== text) changed++;
      const got = readImages(out, 'k.yaml');
      const byName = (xs: ImageEntry[]) => [...xs].sort((a, b) => (a.name < b.name ? -1 : 1));
      expect(byName(got), ctx + '\n---\n' + out).toEqual(model(readImages(text, 'k.yaml'), exprs));
      // kustomize's order where the user's list was sorted
      const names = entries.map((e) => e.name);
      if (names.join() === [...names].sort().join()) expect(got.map((e) => e.name), ctx).toEqual(byName(got).map((e) => e.name));
      // nothing else changed
      const rest = (s: string) => {
        const d = parseDocument(s);
        d.delete('images');
        return d.toJS();
      };
      expect(rest(out), ctx).toEqual(rest(text));
      for (const c of ['# generated', '# base', '# trailing', '# pinned images', '# flow']) if (text.includes(c)) expect(out, ctx).toContain(c);
      // no comment is lost, not even the trailing comment of a key that goes away (names are unique here)
      const comments = (s: string) => (s.match(/(^|\s)#.*$/gm) ?? []).map((c) => c.trim()).sort();
      expect(comments(out), ctx + '\n---\n' + out).toEqual(comments(text));
      if (text.includes('\r\n')) expect(out.replace(/\r\n/g, ''), ctx).not.toContain('\n');
      // idempotent
      expect(editKustomizationText(out, exprs, 'k.yaml').text, ctx).toBe(out);
    }
    expect(changed).toBeGreaterThan(N / 2);
  });
});
