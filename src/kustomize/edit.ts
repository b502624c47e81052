/**
 * Edits the `images:` list of a kustomization, with the semantics of `kustomize edit set image` (v5.5) but
 * without re-serialising the file: the source text is spliced at the ranges of the YAML nodes, so every line
 * that does not have to change stays byte-identical (comments, blank lines, key order, indentation, quoting,
 * flow style, CRLF).
 *
 * kustomize semantics kept:
 * - an existing entry with the same name is replaced wholesale: fields the expression does not give (and does
 *   not keep with '*') are dropped, including tagSuffix;
 * - '*' keeps the field from the file, and is omitted when the image is new;
 * - a new entry goes where kustomize's sort by name puts it, with its keys in kustomize's order
 *   (digest, name, newName, newTag);
 * - values that would not read back as strings (numeric-looking tags, `true`, `null`...) are double-quoted.
 *
 * Not kept: kustomize's key order inside an entry it replaces. A replaced block entry keeps its own key order and
 * every line whose key and value stay; new keys take the place of the first key that goes away (see
 * editBlockEntry), so pinning a digest where a tag was changes one line and keeps its trailing comment.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, parseDocument, type Document, type Node, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { fail } from '../core/errors.js';
import { KustomizeErrors } from './errors.js';
import type { ImageExpr } from './image-expr.js';
import {
  Edits,
  afterLine,
  at,
  colOf,
  contentEnd,
  dashOf,
  formatScalar,
  hasBlankLine,
  leadingCommentsStart,
  lineCol,
  lineStart,
  nextLineStart,
  pairValueEnd,
  startsLine,
  textOf,
  trailingComment,
  type Style,
  type Text,
} from '../edit/splice.js';

import { yaml11TypeFast } from '../edit/plain-scalar.js';
import { FIELDS, RANK, VALUE_FIELDS, applyExpr, exprsByName, fastEdit as fastEditWith, sameEntry, type Field, type ImageChange, type ImageEntry } from './fast-edit.js';

/** moved to src/edit/splice.ts (the splicer every edit target shares); re-exported for existing callers */
export { formatScalar, plainIsSafe } from '../edit/splice.js';
/** the types and semantics live in src/kustomize/fast-edit.ts (no `yaml` import); re-exported for existing callers */
export { applyExpr, type ImageChange, type ImageEntry } from './fast-edit.js';
export { yaml11TypeFast } from '../edit/plain-scalar.js';

function scalarString(t: Text, n: Scalar): string | undefined {
  if (n.value === null || n.value === undefined) return undefined;
  if (typeof n.value === 'string') return n.value === '' ? undefined : n.value;
  // a plain number/bool: what the user wrote (kustomize itself cannot read it into a string field)
  const [a, b] = n.range ?? [0, 0];
  return t.src.slice(a, b).trim();
}

// ---------------------------------------------------------------------------------------------------------
// parsing

interface ParsedEntry {
  node: YAMLMap;
  entry: ImageEntry;
  /** pairs by field name */
  pairs: Map<Field, Pair<Scalar, Scalar | null>>;
}

interface Parsed {
  t: Text;
  doc: Document.Parsed;
  root: YAMLMap | null;
  imagesPair?: Pair<Scalar, unknown>;
  seq?: YAMLSeq;
  entries: ParsedEntry[];
}

function yamlError(where: string, e: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] }) {
  const [first, ...rest] = e.message.split('\n');
  const pos = e.linePos?.[0];
  return fail.usage(KustomizeErrors.YAML, `invalid YAML in ${where}: ${first.replace(/ at line \d+, column \d+:?$/, '')}`, {
    where: pos ? `${where}:${pos.line}:${pos.col}` : where,
    details: rest.filter((l) => l.trim() !== ''),
    hint: 'fix the YAML syntax; nothing was written',
  });
}

function parse(src: string, where: string): Parsed {
  const t: Text = textOf(src);
  const all = parseAllDocuments(src, { prettyErrors: true });
  const docs = Array.isArray(all) ? all : [];
  for (const d of docs) if (d.errors.length) throw yamlError(where, d.errors[0] as never);
  const doc = docs[0] ?? (parseDocument(src) as Document.Parsed);
  const extra = docs.slice(1).find((d) => d.contents !== null && !(isScalar(d.contents) && d.contents.value === null));
  if (extra) {
    throw fail.usage(KustomizeErrors.NOT_A_MAPPING, `${where} holds more than one YAML document; a kustomization is one mapping`, {
      where: at(t, where, extra.range[0]),
      hint: 'remove the extra document',
    });
  }
  const c = doc.contents;
  let root: YAMLMap | null = null;
  if (c === null || (isScalar(c) && c.value === null)) root = null;
  else if (isMap(c)) root = c;
  else {
    throw fail.usage(KustomizeErrors.NOT_A_MAPPING, `${where} is not a kustomization: its top level is not a mapping`, {
      where: at(t, where, c.range?.[0] ?? 0),
    });
  }
  const p: Parsed = { t, doc, root, entries: [] };
  if (!root) return p;
  const imagesPair = root.items.find((it) => isScalar(it.key) && it.key.value === 'images') as Pair<Scalar, unknown> | undefined;
  if (!imagesPair) return p;
  p.imagesPair = imagesPair;
  const v = imagesPair.value as Node | null;
  if (v === null || v === undefined || (isScalar(v) && v.value === null)) return p;
  if (!isSeq(v)) {
    throw fail.usage(KustomizeErrors.IMAGES_NOT_LIST, `\`images\` in ${where} is not a list`, {
      where: at(t, where, (v as Node).range?.[0] ?? imagesPair.key.range?.[0] ?? 0),
      hint: 'images is a list of {name, newName, newTag, digest} entries, e.g.\n  images:\n  - name: app\n    newTag: "1.2"',
    });
  }
  p.seq = v;
  for (const item of v.items as unknown[]) {
    const pos = (item as Node | null)?.range?.[0] ?? v.range?.[0] ?? 0;
    const bad = (why: string) =>
      fail.usage(KustomizeErrors.BAD_IMAGE_ENTRY, `an \`images\` entry in ${where} ${why}`, {
        where: at(t, where, pos),
        hint: 'each entry is a mapping with name and any of newName, newTag, digest, tagSuffix (strings)',
      });
    if (!isMap(item)) throw bad(isAlias(item) ? 'is an alias, which set-image does not follow' : 'is not a mapping');
    const pairs = new Map<Field, Pair<Scalar, Scalar | null>>();
    const entry: Partial<ImageEntry> = {};
    for (const pair of item.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (k === undefined || !(k in RANK)) throw bad(`has an unknown field ${JSON.stringify(k ?? String(pair.key))} (kustomize rejects it too)`);
      if (pairs.has(k as Field)) throw bad(`repeats the field ${k}`);
      const val = pair.value as Node | null;
      if (val !== null && !isScalar(val)) throw bad(`has a ${k} that is not a string`);
      // `newTag: !!binary …` (or any tag but !!str): not a plain string; a value spliced in after the tag
      // would change its meaning or make the YAML invalid, so it is refused and the file left as it is
      if (val !== null && (val as Scalar).tag && (val as Scalar).tag !== 'tag:yaml.org,2002:str') throw bad(`has a ${k} with the YAML tag ${(val as Scalar).tag!.replace('tag:yaml.org,2002:', '!!')}; write it as a plain string`);
      // `newTag: 1.10` (a float), `newTag: 16` (an int), `newTag: on` (a bool): kustomize refuses the whole file
      // ("invalid Kustomization: json: cannot unmarshal number into Go struct field Image.images.newTag of type
      // string", kustomize v5.5, as `kubectl kustomize` prints it). set-image matches it: refused, file untouched.
      // Typed as YAML 1.1 reads it (sigs.k8s.io/yaml): `yes`, `on`, `012`, `0x1F` are refused too.
      const type = val !== null && (val as Scalar).type === 'PLAIN' && (val as Scalar).value !== null ? yaml11Type(t.src.slice((val as Scalar).range![0], (val as Scalar).range![1]).trim()) : 'string';
      if (type === 'number' || type === 'bool') {
        const src = t.src.slice((val as Scalar).range![0], (val as Scalar).range![1]).trim();
        throw fail.usage(KustomizeErrors.BAD_IMAGE_ENTRY, `an \`images\` entry in ${where} has ${k}: ${src}, which YAML reads as a ${type}, not a string; kustomize refuses the file ("cannot unmarshal ${type} into Go struct field Image.images.${k} of type string")`, {
          where: at(t, where, (val as Scalar).range?.[0] ?? pos),
          hint: `quote it: ${k}: "${src}"`,
        });
      }
      pairs.set(k as Field, pair as Pair<Scalar, Scalar | null>);
      const s = val === null ? undefined : scalarString(t, val);
      if (s !== undefined) (entry as Record<string, string>)[k] = s;
    }
    p.entries.push({ node: item, entry: { name: entry.name ?? '', ...entry } as ImageEntry, pairs });
  }
  return p;
}

const typeCache = new Map<string, string>();
/**
 * what YAML 1.1 (sigs.k8s.io/yaml, which kustomize reads kustomizations with) makes of a plain scalar; without a
 * parse where yaml11TypeFast (src/edit/plain-scalar.ts) is certain
 */
export function yaml11Type(src: string, fast = true): 'number' | 'bool' | 'null' | 'string' {
  if (fast && yaml11TypeFast(src)) return 'string';
  let r = typeCache.get(src);
  if (r === undefined) {
    const v = parseDocument(`k: ${src}\n`, { version: '1.1' }).get('k');
    r = v === null || v === undefined ? 'null' : typeof v === 'boolean' ? 'bool' : typeof v === 'number' || typeof v === 'bigint' ? 'number' : 'string';
    typeCache.set(src, r);
  }
  return r as 'number' | 'bool' | 'null' | 'string';
}

/** The `images:` entries of a kustomization. Throws usage errors naming `where` (with line:col). */
export function readImages(text: string, where: string): ImageEntry[] {
  return parse(text, where).entries.map((e) => ({ ...e.entry }));
}

/** The `images:` entries with the 1-based line each starts on. */
export function readImagesWithLines(text: string, where: string): Array<{ entry: ImageEntry; line: number }> {
  const p = parse(text, where);
  return p.entries.map((e) => ({ entry: { ...e.entry }, line: lineCol(p.t, e.node.range?.[0] ?? 0).line }));
}

// ---------------------------------------------------------------------------------------------------------
// semantics (cleanEntry, sameEntry, applyExpr: src/kustomize/fast-edit.ts)

function fmtPair(k: string, v: string, style: Style = 'PLAIN', inFlow = false): string {
  return `${k}: ${formatScalar(v, style, inFlow)}`;
}

function entryPairs(e: ImageEntry, inFlow: boolean): string[] {
  return FIELDS.filter((f) => e[f] !== undefined).map((f) => fmtPair(f, e[f]!, 'PLAIN', inFlow));
}

interface SeqStyle {
  /** indentation before '-' */
  dashIndent: string;
  /** spaces between '-' and the first key, plus one for the dash: key column - dash column */
  keyOffset: number;
  /** siblings are `- {name: a}` */
  flowItems: boolean;
  /** padding inside `{ }` */
  pad: boolean;
  /** items separated by a blank line */
  blankSeparated: boolean;
}

function renderFlowMap(e: ImageEntry, pad: boolean): string {
  const inner = entryPairs(e, true).join(', ');
  return pad ? `{ ${inner} }` : `{${inner}}`;
}

function renderBlockItem(e: ImageEntry, st: SeqStyle, eol: string): string {
  if (st.flowItems) return `${st.dashIndent}-${' '.repeat(Math.max(1, st.keyOffset - 1))}${renderFlowMap(e, st.pad)}${eol}`;
  return entryPairs(e, false)
    .map((p, i) => (i === 0 ? `${st.dashIndent}-${' '.repeat(Math.max(1, st.keyOffset - 1))}${p}` : `${st.dashIndent}${' '.repeat(Math.max(2, st.keyOffset))}${p}`) + eol)
    .join('');
}

function seqStyle(t: Text, seq: YAMLSeq): SeqStyle {
  const items = seq.items as Node[];
  const st: SeqStyle = { dashIndent: '', keyOffset: 2, flowItems: false, pad: false, blankSeparated: false };
  const seqStart = seq.range?.[0] ?? 0;
  st.dashIndent = ' '.repeat(colOf(t, seqStart));
  const first = items.find((i) => isMap(i));
  if (first?.range) {
    const s = first.range[0];
    let j = s - 1;
    while (j >= 0 && t.src[j] === ' ') j--;
    if (j >= 0 && t.src[j] === '-') {
      st.dashIndent = ' '.repeat(colOf(t, j));
      st.keyOffset = s - j;
    }
    if ((first as YAMLMap).flow) {
      st.flowItems = true;
      st.pad = /^\{[ ]/.test(t.src.slice(s, s + 2));
    }
  }
  for (let i = 1; i < items.length; i++) {
    const prevEnd = contentEnd(items[i - 1], items[i - 1].range?.[1] ?? 0);
    const gap = t.src.slice(nextLineStart(t, prevEnd), lineStart(t, items[i].range?.[0] ?? 0));
    if (hasBlankLine(gap)) st.blankSeparated = true;
  }
  return st;
}

/** Set the value of a key the entry keeps: spliced in place, in the value's quote style where it allows. */
function setValue(t: Text, edits: Edits, p: Pair<Scalar, Scalar | null>, want: string, flow: boolean): void {
  const v = p.value;
  if (v && v.range && v.range[1] > v.range[0]) {
    const style = (v.type === 'QUOTE_SINGLE' || v.type === 'QUOTE_DOUBLE' ? v.type : 'PLAIN') as Style;
    const cur = typeof v.value === 'string' ? v.value : undefined;
    const formatted = formatScalar(want, style, flow);
    const end = pairValueEnd(t, p);
    // rewrite when the value differs, or when a plain value does not read back as that string
    if (cur !== want || (style === 'PLAIN' && formatted !== t.src.slice(v.range[0], end))) edits.add(v.range[0], end, formatted);
  } else {
    // `newTag:` with no value (maybe a comment after it, which keeps its blanks)
    const colon = pairValueEnd(t, p);
    edits.add(colon, colon, ` ${formatScalar(want, 'PLAIN', flow)}`);
  }
}

type Warn = (pos: number, message: string) => void;

/**
 * A Flux image automation marker in a trailing comment: `# {"$imagepolicy": "ns:policy"}` drives a whole image
 * reference, `…:tag` the tag, `…:name` the name, `…:digest` the digest (Flux image automation guide,
 * https://fluxcd.io/flux/guides/image-update/#configure-image-update-for-custom-resources). In a kustomization's
 * images entry the fields are newTag, newName and digest.
 */
function fluxMarker(comment: string): { text: string; policy: string; field: string } | undefined {
  const m = /#\s*(\{\s*"\$imagepolicy"\s*:\s*"([^"]*)"\s*\})/.exec(comment);
  if (!m) return undefined;
  const parts = m[2].split(':');
  const suffix = parts.length >= 3 ? parts[parts.length - 1] : '';
  const field = suffix === 'tag' ? 'newTag' : suffix === 'name' ? 'newName' : suffix === 'digest' ? 'digest' : '(image)';
  return { text: m[1], policy: m[2], field };
}

function dropMarkerMessage(marker: { text: string; policy: string }, oldKey: string, newKey?: string): string {
  const [ns, policy] = marker.policy.split(':');
  return (
    `dropped the Flux marker ${marker.text} of ${oldKey}: ` +
    (newKey ? `the line now holds ${newKey}, which the marker does not describe` : `${oldKey} is no longer in the entry`) +
    `; Flux will not update this image from ${ns}:${policy} any more` +
    (newKey === 'digest' ? ` (if that ImagePolicy reflects digests, mark the line with {"$imagepolicy": "${ns}:${policy}:digest"})` : '')
  );
}

/** Change one existing entry in place. */
function editEntry(t: Text, edits: Edits, pe: ParsedEntry, after: ImageEntry, warn: Warn): void {
  if (pe.node.flow) editFlowEntry(t, edits, pe, after);
  else editBlockEntry(t, edits, pe, after, warn);
}

/**
 * A block entry: the result has kustomize's fields, but the entry keeps its key order and every line it can.
 * - a kept key keeps its line; a changed value is spliced in place (quote style and trailing comment kept);
 * - the new keys (in kustomize's order among themselves) take the place of the first key that goes away: the
 *   first new key is written over that key and its value, so the line keeps its prefix (`- ` or indentation)
 *   and its trailing comment (`newTag: "3f2a9c1" # set by CI` → `digest: sha256:… # set by CI`); the others
 *   go on the lines below it. With no key going away, they go below the entry's last key;
 * - another key that goes away loses its line(s); its trailing comment stays on a line of its own, at the key's
 *   column. Own-line comments in the entry are never removed: set-image cannot tell whether a comment above a
 *   removed key is about that key or about what follows, so it keeps it (a new key inserted there goes below it).
 */
function editBlockEntry(t: Text, edits: Edits, pe: ParsedEntry, after: ImageEntry, warn: Warn): void {
  const pairs = pe.node.items as Pair<Scalar, Scalar | null>[];
  const fieldOf = (p: Pair<Scalar, Scalar | null>) => String(p.key.value) as Field;
  // name never goes away: the entry was found by it
  const removed = pairs.map((p) => fieldOf(p) !== 'name' && after[fieldOf(p)] === undefined);
  pairs.forEach((p, i) => {
    const f = fieldOf(p);
    if (f !== 'name' && !removed[i]) setValue(t, edits, p, after[f]!, false);
  });
  const present = new Set(pairs.map(fieldOf));
  const added = VALUE_FIELDS.filter((f) => after[f] !== undefined && !present.has(f)).map((f) => fmtPair(f, after[f]!));
  // the column of the entry's keys: that of a key that starts its line (the first may follow `- ` or an anchor)
  const lineKey = pairs.find((p) => startsLine(t, p.key.range![0])) ?? pairs[0];
  const indent = ' '.repeat(colOf(t, lineKey.key.range![0]));
  /** lines inserted after the line that holds `end` */
  const insertBelow = (end: number, lines: string[]) => {
    const { pos, needsEol } = afterLine(t, end);
    edits.add(pos, pos, needsEol ? lines.map((l) => t.eol + indent + l).join('') : lines.map((l) => indent + l + t.eol).join(''));
  };
  const first = removed.indexOf(true);
  if (added.length && first < 0) insertBelow(pairValueEnd(t, pairs[pairs.length - 1]), added);
  for (let i = 0; i < pairs.length; i++) {
    if (!removed[i]) continue;
    const p = pairs[i];
    const keyStart = p.key.range![0];
    const end = pairValueEnd(t, p);
    if (i === first && added.length) {
      const newKey = added[0].slice(0, added[0].indexOf(':'));
      const c = trailingComment(t, end);
      const marker = fluxMarker(c);
      if (marker && marker.field !== newKey) {
        // the line keeps its comment, but a Flux marker there would now drive the wrong field: dropped, said so
        edits.add(keyStart, end + c.length, added[0]);
        warn(keyStart, dropMarkerMessage(marker, String(p.key.value), newKey));
      } else edits.add(keyStart, end, added[0]);
      if (added.length > 1) insertBelow(end, added.slice(1));
    } else if (!startsLine(t, keyStart)) {
      // the key on the `- ` line (only the first can be, and then nothing is added): the next key that stays
      // moves up onto that line, and the comments in between go above the entry
      let j = i;
      while (removed[j + 1]) j++;
      const comments: string[] = [];
      for (let k = i; k <= j; k++) {
        const e = pairValueEnd(t, pairs[k]);
        const c = trailingComment(t, e);
        if (c) comments.push(c.trimStart());
        const gap = t.src.slice(afterLine(t, e).pos, lineStart(t, pairs[k + 1].key.range![0]));
        for (const l of gap.split('\n')) if (l.trim().startsWith('#')) comments.push(l.trim());
      }
      edits.add(keyStart, pairs[j + 1].key.range![0], '');
      if (comments.length) {
        const dash = dashOf(t, pe.node);
        const ls = lineStart(t, dash);
        const dashIndent = ' '.repeat(colOf(t, dash));
        // after a new entry inserted at the same place (it goes above this entry's comments)
        edits.add(ls, ls, comments.map((c) => dashIndent + c + t.eol).join(''), 1);
      }
      i = j;
    } else {
      let c = trailingComment(t, end);
      const marker = fluxMarker(c);
      if (marker) {
        // a marker of a key that goes away describes nothing left: not kept on a line of its own
        warn(keyStart, dropMarkerMessage(marker, String(p.key.value)));
        c = '';
      }
      const { pos } = afterLine(t, end);
      const eol = t.src.slice(lineStart(t, keyStart), pos).endsWith('\n') ? t.eol : '';
      edits.add(lineStart(t, keyStart), pos, c ? `${' '.repeat(colOf(t, keyStart))}${c.trimStart()}${eol}` : '');
    }
  }
}

/** A flow entry (`{name: a, newTag: v1}`, one line): values in place, dropped keys removed, new keys at kustomize's order. */
function editFlowEntry(t: Text, edits: Edits, pe: ParsedEntry, after: ImageEntry): void {
  const pairs = pe.node.items as Pair<Scalar, Scalar | null>[];
  const fieldOf = (p: Pair<Scalar, Scalar | null>) => String(p.key.value) as Field;
  const removed = new Set<number>();
  pairs.forEach((p, i) => {
    const f = fieldOf(p);
    if (f !== 'name' && after[f] === undefined) removed.add(i);
  });
  pairs.forEach((p, i) => {
    const f = fieldOf(p);
    if (f !== 'name' && !removed.has(i)) setValue(t, edits, p, after[f]!, true);
  });
  // remove fields the expression drops (runs of consecutive pairs)
  for (let i = 0; i < pairs.length; i++) {
    if (!removed.has(i)) continue;
    let j = i;
    while (removed.has(j + 1)) j++;
    const lastEnd = contentEnd(pairs[j].value, pairs[j].key.range?.[1] ?? 0);
    if (i === 0) {
      const next = pairs[j + 1]; // a kept pair: name is never removed
      edits.add(pairs[0].key.range![0], next.key.range![0], '');
    } else {
      const prevEnd = contentEnd(pairs[i - 1].value, pairs[i - 1].key.range?.[1] ?? 0);
      edits.add(prevEnd, lastEnd, '');
    }
    i = j;
  }
  // insert fields the entry lacks, at kustomize's key order relative to the keys already there
  const present = new Set(pairs.map(fieldOf));
  for (const f of VALUE_FIELDS) {
    if (after[f] === undefined || present.has(f)) continue;
    const anchor = pairs.find((p, i) => !removed.has(i) && RANK[fieldOf(p)] > RANK[f]);
    const text = fmtPair(f, after[f]!, 'PLAIN', true);
    if (anchor) edits.add(anchor.key.range![0], anchor.key.range![0], `${text}, `);
    else {
      const last = pairs.filter((_, i) => !removed.has(i)).pop()!;
      const end = contentEnd(last.value, last.key.range![1]);
      edits.add(end, end, `, ${text}`);
    }
  }
}

/** Remove a whole sequence item (a later duplicate of an entry we set; kustomize keeps one entry per name). */
function removeItem(t: Text, edits: Edits, seq: YAMLSeq, idx: number): void {
  const items = seq.items as Node[];
  const it = items[idx];
  const end = contentEnd(it, it.range![1]);
  if (seq.flow) {
    if (idx > 0) edits.add(contentEnd(items[idx - 1], items[idx - 1].range![1]), end, '');
    else if (items.length > 1) edits.add(it.range![0], items[1].range![0], '');
    else edits.add(it.range![0], end, '');
  } else {
    edits.add(lineStart(t, dashOf(t, it)), afterLine(t, end).pos, '');
  }
}

/** Top-level sequence indentation of the new `images:` key: kustomize's (dash at the key's column). */
function newImagesBlock(entries: ImageEntry[], keyIndent: string, eol: string): string {
  const st: SeqStyle = { dashIndent: keyIndent, keyOffset: 2, flowItems: false, pad: false, blankSeparated: false };
  return entries.map((e) => renderBlockItem(e, st, eol)).join('');
}

/**
 * Applies image expressions to the text of a kustomization. Returns the new text (=== `text` when nothing
 * changes) and one change record per expression. Throws usage errors (naming `where`, with line:col) for a
 * file that is not valid YAML or not a kustomization with a list of images.
 */
export function editKustomizationText(text: string, exprs: ImageExpr[], where: string): { text: string; changes: ImageChange[]; warnings?: string[] } {
  if (exprs.length === 0) throw fail.usage(KustomizeErrors.NO_IMAGE, 'no image specified', { where: 'command line' });
  const byName = exprsByName(exprs);
  const fast = fastPath.enabled ? fastEdit(text, byName) : undefined;
  if (fast) return fast;
  const p = parse(text, where);
  const { t } = p;
  const edits = new Edits();
  const changes: ImageChange[] = [];
  const warnings: string[] = [];
  const added: ImageEntry[] = [];
  for (const expr of byName.values()) {
    const idxs = p.entries.map((e, i) => (e.entry.name === expr.name ? i : -1)).filter((i) => i >= 0);
    const existing = idxs.length ? p.entries[idxs[0]] : undefined;
    const after = applyExpr(expr, existing?.entry);
    const before = existing ? { ...existing.entry } : undefined;
    const changed = !before || !sameEntry(before, after) || idxs.length > 1 || needsRequote(t, existing!, after);
    changes.push({ name: expr.name, ...(before ? { before } : {}), after, changed });
    if (!changed) continue;
    if (existing) {
      editEntry(t, edits, existing, after, (pos, msg) => warnings.push(`${where}:${lineCol(t, pos).line}: ${msg}`));
      for (const dup of idxs.slice(1)) removeItem(t, edits, p.seq!, dup);
    } else {
      added.push(after);
    }
  }
  if (added.length) insertEntries(p, edits, added);
  let out = edits.list.length ? edits.apply(text) : text;
  // a missing final newline stays missing (removing the last line of the file leaves the line break before it)
  if (text !== '' && !text.endsWith('\n') && out.endsWith('\n')) out = out.slice(0, out.endsWith('\r\n') ? -2 : -1);
  return { text: out, changes, ...(warnings.length ? { warnings } : {}) };
}

/** tests turn the fast path off to compare it with the full one */
export const fastPath = { enabled: true };

/**
 * The common case without a full YAML parse (src/kustomize/fast-edit.ts), with the parser's answers for plain
 * scalars the parse-free rules cannot type: every file of the subset src/edit/simple-yaml.ts reads takes it. Same
 * result, byte for byte (test/edit/simple-yaml.test.ts checks it on every golden and on generated files).
 */
export function fastEdit(text: string, byName: Map<string, ImageExpr>): { text: string; changes: ImageChange[] } | undefined {
  return fastEditWith(text, byName, withParse);
}
const withParse = { yaml11Type: (s: string) => yaml11Type(s), format: (s: string, style: Style) => formatScalar(s, style, false) };

/** an existing value equal to the wanted one, written plain although it would not read back as a string */
function needsRequote(t: Text, pe: ParsedEntry, after: ImageEntry): boolean {
  for (const f of VALUE_FIELDS) {
    const v = pe.pairs.get(f)?.value;
    if (!v || after[f] === undefined || !v.range) continue;
    if (v.type === 'PLAIN' && typeof v.value !== 'string') return true;
  }
  return false;
}

/** past the last `+kubebuilder:scaffold:` comment among the comment/blank lines that start at `pos` */
function belowScaffoldMarkers(t: Text, pos: number, needsEol: boolean): { pos: number; needsEol: boolean } {
  let at = pos;
  let best: { pos: number; needsEol: boolean } | undefined;
  while (at < t.src.length) {
    const next = nextLineStart(t, at);
    const line = t.src.slice(at, next).trim();
    if (line !== '' && !line.startsWith('#')) break;
    if (/^#\s*\+kubebuilder:scaffold:/.test(line)) best = { pos: next, needsEol: next === t.src.length && !t.src.endsWith('\n') };
    at = next;
  }
  return best ?? { pos, needsEol };
}

function insertEntries(p: Parsed, edits: Edits, added: ImageEntry[]): void {
  const { t } = p;
  added.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (p.seq && p.seq.items.length > 0) {
    const seq = p.seq;
    const items = seq.items as Node[];
    const names = p.entries.map((e) => e.entry.name);
    // where kustomize's sort by name puts each new entry: before the first entry that sorts after it
    // (in a list the user did not sort, that is the first such entry in file order)
    const groups = new Map<number, ImageEntry[]>();
    for (const e of added) {
      let j = names.findIndex((n) => n > e.name);
      if (j < 0) j = items.length;
      groups.set(j, [...(groups.get(j) ?? []), e]);
    }
    if (seq.flow) {
      const padded = items.some((i) => isMap(i) && (i as YAMLMap).flow && /^\{[ ]/.test(t.src.slice(i.range![0], i.range![0] + 2)));
      for (const [j, es] of groups) {
        const rendered = es.map((e) => renderFlowMap(e, padded));
        if (j < items.length) edits.add(items[j].range![0], items[j].range![0], rendered.map((r) => `${r}, `).join(''));
        else {
          const end = contentEnd(items[items.length - 1], items[items.length - 1].range![1]);
          edits.add(end, end, rendered.map((r) => `, ${r}`).join(''));
        }
      }
      return;
    }
    const st = seqStyle(t, seq);
    const floor = nextLineStart(t, p.imagesPair!.key.range![1]);
    for (const [j, es] of groups) {
      const body = es.map((e) => renderBlockItem(e, st, t.eol) + (st.blankSeparated ? t.eol : '')).join('');
      if (j < items.length) {
        const pos = leadingCommentsStart(t, dashOf(t, items[j]), j === 0 ? floor : nextLineStart(t, contentEnd(items[j - 1], items[j - 1].range![1])));
        edits.add(pos, pos, body);
      } else {
        const { pos, needsEol } = afterLine(t, contentEnd(items[items.length - 1], items[items.length - 1].range![1]));
        const text = (st.blankSeparated ? t.eol : '') + es.map((e) => renderBlockItem(e, st, t.eol)).join('');
        edits.add(pos, pos, needsEol ? t.eol + text.slice(0, -t.eol.length) : text);
      }
    }
    return;
  }
  if (p.seq && p.seq.flow) {
    // `images: []`
    const open = t.src.indexOf('[', p.seq.range![0]);
    const padded = / \]/.test(t.src.slice(open, p.seq.range![1]));
    edits.add(open + 1, open + 1, added.map((e) => renderFlowMap(e, padded)).join(', '));
    return;
  }
  if (p.imagesPair) {
    // `images:` with no value (or `~` / `null`): the list goes on the lines below the key
    const key = p.imagesPair.key;
    const v = p.imagesPair.value as Scalar | null;
    const keyIndent = ' '.repeat(colOf(t, key.range![0]));
    if (v && v.range && v.range[1] > v.range[0]) {
      const colon = t.src.indexOf(':', key.range![1]);
      edits.add(colon + 1, v.range[1], '');
    }
    const { pos, needsEol } = afterLine(t, Math.max(key.range![1], v?.range?.[1] ?? 0));
    const block = newImagesBlock(added, keyIndent, t.eol);
    edits.add(pos, pos, needsEol ? t.eol + block.slice(0, -t.eol.length) : block);
    return;
  }
  // no `images:` key: append it at the end of the mapping
  const root = p.root;
  if (root && root.flow) {
    const list = `images: [${added.map((e) => renderFlowMap(e, false)).join(', ')}]`;
    if (root.items.length) {
      const last = root.items[root.items.length - 1];
      const end = contentEnd(last.value, (last.key as Node).range![1]);
      edits.add(end, end, `, ${list}`);
    } else {
      const open = t.src.indexOf('{', root.range![0]);
      edits.add(open + 1, open + 1, list);
    }
    return;
  }
  let pos: number;
  let needsEol: boolean;
  let keyIndent = '';
  let blank = false;
  if (root && root.items.length) {
    const firstKey = root.items[0].key as Node;
    keyIndent = ' '.repeat(colOf(t, firstKey.range![0]));
    ({ pos, needsEol } = afterLine(t, contentEnd(root, root.range![1])));
    // a kubebuilder scaffold marker (`# +kubebuilder:scaffold:…`) in the comments after the last key marks where
    // kubebuilder inserts generated entries into the list above it: the new section goes below the marker
    ({ pos, needsEol } = belowScaffoldMarkers(t, pos, needsEol));
    // top-level keys separated by blank lines: keep doing so
    if (root.items.length > 1) {
      const prev = root.items[root.items.length - 2];
      const lastKey = root.items[root.items.length - 1].key as Node;
      const gap = t.src.slice(afterLine(t, contentEnd(prev.value, (prev.key as Node).range![1])).pos, lineStart(t, lastKey.range![0]));
      blank = hasBlankLine(gap);
    }
  } else {
    // empty document (or comments only): append at the end of the text, before a trailing `---`/`...`
    const m = /(^|\n)(---|\.\.\.)[ \t]*\r?\n?$/.exec(t.src);
    pos = m ? m.index + m[1].length : t.src.length;
    needsEol = pos > 0 && t.src[pos - 1] !== '\n';
  }
  const text = (blank ? t.eol : '') + `${keyIndent}images:${t.eol}` + newImagesBlock(added, keyIndent, t.eol);
  edits.add(pos, pos, needsEol ? t.eol + text.slice(0, -t.eol.length) : text);
}
