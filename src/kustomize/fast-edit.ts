/**
 * The common `set image` edit without the `yaml` package: every image set is already in the file exactly once and
 * keeps its fields (a new tag where a tag was, a new digest where a digest was), so only values change, in place.
 * Read with the line reader of src/edit/simple-yaml.ts; anything else returns undefined and the full path of
 * src/kustomize/edit.ts runs (editKustomizationText tries this first). Same result, byte for byte
 * (test/set-image/fast-path.test.ts, test/edit/simple-yaml.test.ts).
 *
 * This module imports no `yaml`: set-image tries it first and loads src/kustomize/edit.ts (and the parser) only
 * for a file it cannot answer, so a run over overlays in the common case never compiles the parser.
 */
import { readSimpleYaml, sget, type SScalar } from '../edit/simple-yaml.js';
import { formatScalarFast, yaml11TypeFast, type Style } from '../edit/plain-scalar.js';
import type { ImageExpr } from './image-expr.js';

export interface ImageEntry {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
  /** kept when read; `set image` drops it from an entry it replaces, as kustomize does */
  tagSuffix?: string;
}

export interface ImageChange {
  name: string;
  /** the entry in the file before, if there was one */
  before?: ImageEntry;
  after: ImageEntry;
  changed: boolean;
}

export const FIELDS = ['digest', 'name', 'newName', 'newTag', 'tagSuffix'] as const;
export type Field = (typeof FIELDS)[number];
export const VALUE_FIELDS = ['digest', 'newName', 'newTag', 'tagSuffix'] as const;
export const RANK: Record<string, number> = Object.fromEntries(FIELDS.map((f, i) => [f, i]));

export function cleanEntry(e: ImageEntry): ImageEntry {
  const out: ImageEntry = { name: e.name };
  for (const f of VALUE_FIELDS) if (e[f] !== undefined && e[f] !== '') out[f] = e[f];
  return out;
}

export function sameEntry(a: ImageEntry, b: ImageEntry): boolean {
  return FIELDS.every((f) => (a[f] ?? '') === (b[f] ?? ''));
}

/** The entry kustomize writes for `expr`, given the entry already in the file. */
export function applyExpr(expr: ImageExpr, existing?: ImageEntry): ImageEntry {
  const pick = (keep: boolean, v: string | undefined, old: string | undefined) => (keep ? old : v);
  return cleanEntry({
    name: expr.name,
    newName: pick(expr.keepNewName || expr.newName === '*', expr.newName, existing?.newName),
    newTag: pick(expr.keepNewTag || expr.newTag === '*', expr.newTag, existing?.newTag),
    digest: pick(expr.keepDigest || expr.digest === '*', expr.digest, existing?.digest),
  });
}

/** kustomize keeps one expression per name, the last one (in the order of their last occurrence) */
export function exprsByName(exprs: ImageExpr[]): Map<string, ImageExpr> {
  const byName = new Map<string, ImageExpr>();
  for (const e of exprs) {
    byName.delete(e.name);
    byName.set(e.name, e);
  }
  return byName;
}

/**
 * How the fast path types and writes plain scalars. Without a parse (the default) it answers where that is certain
 * and gives up (undefined) elsewhere; src/kustomize/edit.ts passes the parser's answers, so that its fast path
 * takes every file the subset holds.
 */
export interface ScalarRules {
  /** what YAML 1.1 reads a plain scalar as; undefined: cannot tell */
  yaml11Type(src: string): string | undefined;
  /** the scalar as written in `style`; undefined: cannot tell */
  format(s: string, style: Style): string | undefined;
}
const withoutParse: ScalarRules = { yaml11Type: yaml11TypeFast, format: formatScalarFast };

/**
 * The edit of editKustomizationText (src/kustomize/edit.ts) in the common case, or undefined: outside the subset
 * of src/edit/simple-yaml.ts, an entry kustomize would refuse, an image set twice or not yet there, a field added
 * or dropped, or a plain value `rules` cannot type.
 */
export function fastEdit(text: string, byName: Map<string, ImageExpr>, rules: ScalarRules = withoutParse): { text: string; changes: ImageChange[] } | undefined {
  if (!text.includes('images:')) return undefined;
  const root = readSimpleYaml(text);
  const seq = root && sget(root, 'images');
  if (!seq || seq.kind !== 'seq') return undefined;
  const entries: Array<{ entry: ImageEntry; fields: Map<string, SScalar> }> = [];
  for (const item of seq.items) {
    if (item.kind !== 'map') return undefined;
    const fields = new Map<string, SScalar>();
    const entry: Record<string, string> = {};
    for (const p of item.pairs) {
      if (!(p.key in RANK) || p.value.kind !== 'scalar') return undefined;
      const v = p.value;
      if (v.style === 'PLAIN' && rules.yaml11Type(v.value) !== 'string') return undefined;
      fields.set(p.key, v);
      if (v.value !== '') entry[p.key] = v.value;
    }
    entries.push({ entry: { name: entry.name ?? '', ...entry } as ImageEntry, fields });
  }
  const edits: Array<[number, number, string]> = [];
  const changes: ImageChange[] = [];
  for (const expr of byName.values()) {
    const hits = entries.filter((e) => e.entry.name === expr.name);
    if (hits.length !== 1) return undefined;
    const { entry, fields } = hits[0];
    const after = applyExpr(expr, entry);
    const keys = [...fields.keys()].filter((k) => k !== 'name');
    if (keys.length !== VALUE_FIELDS.filter((f) => after[f] !== undefined).length || keys.some((k) => after[k as Field] === undefined)) return undefined;
    const changed = !sameEntry(entry, after);
    changes.push({ name: expr.name, before: { ...entry }, after, changed });
    if (!changed) continue;
    for (const k of keys) {
      const v = fields.get(k)!;
      const want = after[k as Field]!;
      const formatted = rules.format(want, v.style);
      if (formatted === undefined) return undefined;
      if (v.value !== want || (v.style === 'PLAIN' && formatted !== text.slice(v.start, v.end))) edits.push([v.start, v.end, formatted]);
    }
  }
  if (!edits.length) return { text, changes };
  edits.sort((a, b) => a[0] - b[0]);
  let out = '';
  let pos = 0;
  for (const [a, b, t] of edits) {
    out += text.slice(pos, a) + t;
    pos = b;
  }
  return { text: out + text.slice(pos), changes };
}
