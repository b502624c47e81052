/**
 * What every YAML target shares besides the splicer: parsing a file (all its documents) for node ranges,
 * naming a place as file:line:col, refusing with that place, dotted paths with `[n]` indexes, and walking a
 * path so that an alias, a shared anchor or a merge key on the way is refused instead of followed.
 */
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments, visit, type Document, type Node, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { fail, type GitopsError } from '../core/errors.js';
import { EditErrors, type EditErrorCode } from './errors.js';
import { lineCol, textOf, type Text } from './splice.js';

export interface YamlFile {
  t: Text;
  file: string;
  docs: Document.Parsed[];
  /** anchors that some alias uses (an anchored node that no alias uses is not shared) */
  usedAnchors: Set<string>;
}

export function parseYamlFile(text: string, file: string): YamlFile {
  const t = textOf(text);
  const docs = parseAllDocuments(text, { prettyErrors: true }) as unknown;
  const list = (Array.isArray(docs) ? docs : []) as Document.Parsed[];
  for (const d of list) {
    const e = d.errors[0] as unknown as { message: string; linePos?: [{ line: number; col: number }] } | undefined;
    if (e) {
      const [first, ...rest] = e.message.split('\n');
      const pos = e.linePos?.[0];
      throw fail.usage(EditErrors.YAML, `invalid YAML in ${file}: ${first.replace(/ at line \d+, column \d+:?$/, '')}`, {
        where: pos ? `${file}:${pos.line}:${pos.col}` : file,
        details: rest.filter((l) => l.trim() !== ''),
        hint: 'fix the YAML syntax; nothing was written',
      });
    }
  }
  const usedAnchors = new Set<string>();
  for (const d of list) visit(d, { Alias: (_k, n) => void usedAnchors.add(n.source) });
  return { t, file, docs: list, usedAnchors };
}

export function whereOf(f: YamlFile, pos: number): string {
  const { line, col } = lineCol(f.t, pos);
  return `${f.file}:${line}:${col}`;
}

export function lineOf(f: YamlFile, pos: number): number {
  return lineCol(f.t, pos).line;
}

export function posOf(n: unknown): number {
  return (n as Node | null)?.range?.[0] ?? 0;
}

/** A refusal: usage error (exit 2) naming file:line:col, why, and what to do. */
export function refuse(f: YamlFile, code: EditErrorCode, pos: number, message: string, hint: string, details?: string[]): GitopsError {
  return fail.usage(code, message, { where: whereOf(f, pos), hint, ...(details?.length ? { details } : {}) });
}

// ---------------------------------------------------------------------------------------------------------
// paths

export type Seg = string | number;

/**
 * `a.b[0].c`, `spec.values.image.tag`; a key holding dots or brackets in double quotes: `podAnnotations."x.io/y"`.
 * Throws EEDIT_BAD_TARGET.
 */
export function parsePath(s: string, what = '--target'): Seg[] {
  const segs: Seg[] = [];
  let i = 0;
  const bad = (why: string) =>
    fail.usage(EditErrors.BAD_TARGET, `invalid path ${JSON.stringify(s)} in ${what}: ${why}`, {
      where: 'command line',
      hint: 'a dotted path with [n] list indexes, e.g. image.tag, components[0].image.tag, spec.values.image.tag; quote a key that holds dots: annotations."app.io/tag"',
    });
  if (s === '') throw bad('it is empty');
  let expectKey = true;
  while (i < s.length) {
    if (s[i] === '[') {
      const close = s.indexOf(']', i);
      const num = close > 0 ? s.slice(i + 1, close) : '';
      if (!/^\d+$/.test(num)) throw bad(`"[${num}" is not a list index`);
      segs.push(Number(num));
      i = close + 1;
      expectKey = false;
      continue;
    }
    if (s[i] === '.') {
      if (expectKey) throw bad('an empty key');
      i++;
      expectKey = true;
      continue;
    }
    if (!expectKey) throw bad(`expected "." or "[" at column ${i + 1}`);
    if (s[i] === '"') {
      const close = s.indexOf('"', i + 1);
      if (close < 0) throw bad('an unclosed quote');
      segs.push(s.slice(i + 1, close));
      i = close + 1;
    } else {
      let j = i;
      while (j < s.length && s[j] !== '.' && s[j] !== '[') j++;
      segs.push(s.slice(i, j));
      i = j;
    }
    expectKey = false;
  }
  if (expectKey) throw bad('it ends with "."');
  return segs;
}

export function pathString(segs: Seg[]): string {
  return segs.map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i ? '.' : ''}${/[.[\]"]/.test(s) ? JSON.stringify(s) : s}`)).join('');
}

export function keyOf(p: Pair): string | undefined {
  return isScalar(p.key) ? String((p.key as Scalar).value) : undefined;
}

/** the pair of `key` in a map (exact key) */
export function pairOf(m: YAMLMap, key: string): Pair<Scalar, unknown> | undefined {
  return m.items.find((p) => keyOf(p) === key) as Pair<Scalar, unknown> | undefined;
}

/** a refusal when `n` is an alias or carries an anchor some alias uses (editing it would change other places) */
export function checkShared(f: YamlFile, n: unknown, path: string): void {
  if (isAlias(n)) {
    throw refuse(f, EditErrors.ANCHOR, posOf(n), `${path} is reached through the alias *${n.source}; editing it would change every place that shares &${n.source}`, `edit the anchored value (&${n.source}) itself, or write the value out where it is used`);
  }
  const a = (n as Node | null)?.anchor;
  if (a && f.usedAnchors.has(a)) {
    throw refuse(f, EditErrors.ANCHOR, posOf(n), `${path} is shared through the anchor &${a}: editing it would change every place that uses *${a}`, `write the value out where you want to change it (without &${a}/*${a}), then pin it there`);
  }
}

export interface Reached {
  node: unknown;
  /** the pair whose value is node (map parents) */
  pair?: Pair;
  parent?: YAMLMap | YAMLSeq;
}

/**
 * Follow `segs` from `root`. Refuses (EEDIT_ANCHOR) an alias, a used anchor or a merge key on the way, and
 * (EEDIT_TARGET_NOT_FOUND) a key or index that is not there: it never invents keys.
 */
export function reach(f: YamlFile, root: unknown, segs: Seg[], prefix: Seg[] = []): Reached {
  let cur: Reached = { node: root };
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    const here = pathString([...prefix, ...segs.slice(0, i)]) || '(the document)';
    const full = pathString([...prefix, ...segs]);
    checkShared(f, cur.node, here);
    const n = cur.node;
    if (typeof seg === 'number') {
      if (!isSeq(n)) throw refuse(f, EditErrors.NOT_FOUND, posOf(n), `${full} does not exist in ${f.file}: ${here} is not a list`, 'check the path (list indexes start at 0); pin never adds keys');
      if (seg >= n.items.length) throw refuse(f, EditErrors.NOT_FOUND, posOf(n), `${full} does not exist in ${f.file}: ${here} has ${n.items.length} item(s)`, 'check the index (it starts at 0); pin never adds items');
      cur = { node: n.items[seg], parent: n };
      continue;
    }
    if (!isMap(n)) throw refuse(f, EditErrors.NOT_FOUND, posOf(n), `${full} does not exist in ${f.file}: ${here} is not a mapping`, 'check the path; pin never adds keys');
    const p = pairOf(n, seg);
    if (!p) {
      const merge = pairOf(n, '<<');
      if (merge) {
        throw refuse(f, EditErrors.ANCHOR, posOf(merge.key), `${full} is not written in ${here} but merged into it by "<<" from an anchor; editing it would change every place that merges it`, `write ${seg} out in ${here} (it overrides the merged value), then pin it there`);
      }
      const keys = n.items.map(keyOf).filter((k): k is string => k !== undefined);
      throw refuse(f, EditErrors.NOT_FOUND, posOf(n), `${full} does not exist in ${f.file}: ${here} has no key ${JSON.stringify(seg)}`, 'check the path; pin never adds keys', keys.length ? [`keys there: ${keys.join(', ')}`] : undefined);
    }
    cur = { node: p.value, pair: p, parent: n };
  }
  checkShared(f, cur.node, pathString([...prefix, ...segs]));
  return cur;
}

/** the top-level objects of a document: its contents, or the items of a `kind: List` */
export function objectsOf(d: Document.Parsed): YAMLMap[] {
  const c = d.contents;
  if (!isMap(c)) return [];
  const kind = pairOf(c, 'kind')?.value;
  const items = pairOf(c, 'items')?.value;
  if (isScalar(kind) && typeof kind.value === 'string' && kind.value.endsWith('List') && isSeq(items)) {
    return items.items.filter((x): x is YAMLMap => isMap(x));
  }
  return [c];
}

export function strAt(m: YAMLMap, ...path: string[]): string | undefined {
  let n: unknown = m;
  for (const k of path) {
    if (!isMap(n)) return undefined;
    n = pairOf(n, k)?.value;
  }
  return isScalar(n) && typeof n.value === 'string' ? n.value : undefined;
}
