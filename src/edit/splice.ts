/**
 * The format-preserving YAML splicer every edit target shares. A target parses the text with `yaml` (for node
 * ranges only: nothing is ever re-serialised), collects replacements at byte ranges in an `Edits`, and applies
 * them to the source text: every byte outside those ranges stays identical (comments, blank lines, key order,
 * indentation, quoting, flow style, CRLF, a missing final newline).
 *
 * Scalars are written by `formatScalar`, which keeps the quote style of the value it replaces where it can and
 * double-quotes a value that would not read back as the same string in YAML 1.1 or 1.2 (`1.10`, `on`, `null`…).
 */
import { isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Node, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { plainIsSafeFast, type Style } from './plain-scalar.js';

// ---------------------------------------------------------------------------------------------------------
// text helpers

export interface Text {
  src: string;
  eol: string;
}

export function lineStart(t: Text, pos: number): number {
  return t.src.lastIndexOf('\n', pos - 1) + 1;
}
/** position just after the line's EOL (or the end of the text when the line has none) */
export function nextLineStart(t: Text, pos: number): number {
  const nl = t.src.indexOf('\n', pos);
  return nl < 0 ? t.src.length : nl + 1;
}
/** the column of `pos` on its line, not counting a byte-order mark at the start of the file */
export function colOf(t: Text, pos: number): number {
  const ls = lineStart(t, pos);
  return pos - ls - (ls === 0 && t.src.charCodeAt(0) === 0xfeff ? 1 : 0);
}
export function lineCol(t: Text, pos: number): { line: number; col: number } {
  let line = 1;
  for (let i = t.src.indexOf('\n'); i >= 0 && i < pos; i = t.src.indexOf('\n', i + 1)) line++;
  return { line, col: pos - lineStart(t, pos) + 1 };
}
export function at(t: Text, where: string, pos: number): string {
  const { line, col } = lineCol(t, pos);
  return `${where}:${line}:${col}`;
}
/** whether `gap` (whole lines: it starts at a line start) holds a blank line */
export function hasBlankLine(gap: string): boolean {
  return gap.split('\n').slice(0, -1).some((l) => l.trim() === '');
}

// ---------------------------------------------------------------------------------------------------------
// scalars

const plainCache = new Map<string, boolean>();
/** whether `s` can be written as a plain scalar and read back as the same string, in YAML 1.1 and 1.2 */
export function plainIsSafe(s: string, inFlow = false): boolean {
  if (s === '' || s !== s.trim() || /[\r\n\t]/.test(s)) return false;
  if (inFlow && /[,[\]{}]/.test(s)) return false;
  if (!inFlow && plainIsSafeFast(s)) return true;
  const key = `${inFlow ? 'f' : 'b'}${s}`;
  const hit = plainCache.get(key);
  if (hit !== undefined) return hit;
  let ok = true;
  for (const version of ['1.1', '1.2'] as const) {
    const d = parseDocument(inFlow ? `k: [${s}]\n` : `k: ${s}\n`, { version });
    const n = inFlow ? (d.getIn(['k', 0], true) as unknown) : (d.get('k', true) as unknown);
    if (d.errors.length || !isScalar(n) || n.value !== s || n.type !== 'PLAIN') ok = false;
  }
  plainCache.set(key, ok);
  return ok;
}

export type { Style };

/** Formats a string as a YAML scalar: in `style` when it allows, double-quoted when it must be quoted. */
export function formatScalar(s: string, style: Style = 'PLAIN', inFlow = false): string {
  if (style === 'QUOTE_SINGLE' && !/[\r\n]/.test(s)) return `'${s.replace(/'/g, "''")}'`;
  if (style === 'QUOTE_DOUBLE') return JSON.stringify(s);
  return plainIsSafe(s, inFlow) ? s : JSON.stringify(s);
}

// ---------------------------------------------------------------------------------------------------------
// edits

export interface Edit {
  start: number;
  end: number;
  text: string;
  /** among insertions at the same place, lower orders go first (then the order of `add`) */
  order: number;
  seq: number;
}

export class Edits {
  list: Edit[] = [];
  private n = 0;
  add(start: number, end: number, text: string, order = 0): void {
    this.list.push({ start, end, text, order, seq: this.n++ });
  }
  apply(src: string): string {
    const l = [...this.list].sort((a, b) => a.start - b.start || (a.end - a.start) - (b.end - b.start) || a.order - b.order || a.seq - b.seq);
    let out = '';
    let pos = 0;
    for (const e of l) {
      if (e.start < pos) throw new Error(`internal: overlapping edits at ${e.start}`);
      out += src.slice(pos, e.start) + e.text;
      pos = e.end;
    }
    return out + src.slice(pos);
  }
}

/** end of the last value written in a node (before trailing comments and line breaks) */
export function contentEnd(n: unknown, fallback: number): number {
  if (n === null || n === undefined) return fallback;
  if (isScalar(n) || isAlias(n)) return (n as Node).range?.[1] ?? fallback;
  if (isMap(n) || isSeq(n)) {
    if ((n as YAMLMap).flow) return (n as Node).range?.[1] ?? fallback;
    const items = (n as YAMLMap | YAMLSeq).items as unknown[];
    if (!items.length) return (n as Node).range?.[1] ?? fallback;
    const last = items[items.length - 1];
    if (isPair(last)) {
      const kEnd = (last.key as Node | null)?.range?.[1] ?? fallback;
      const v = last.value as Node | null;
      if (v === null || (isScalar(v) && v.value === null && v.range && v.range[0] === v.range[1])) return kEnd;
      return contentEnd(v, kEnd);
    }
    return contentEnd(last, fallback);
  }
  return fallback;
}

/** the position after the line holding `pos - 1`'s content (i.e. where a new line can be inserted) */
export function afterLine(t: Text, end: number): { pos: number; needsEol: boolean } {
  if (end > 0 && t.src[end - 1] === '\n') return { pos: end, needsEol: false };
  const pos = nextLineStart(t, end);
  return { pos, needsEol: pos === t.src.length && !t.src.endsWith('\n') };
}

/** the '-' of a block sequence item (it may sit on the line above the item's content) */
export function dashOf(t: Text, item: Node): number {
  const s = item.range![0];
  let j = s - 1;
  while (j >= 0 && /[ \t\r\n]/.test(t.src[j])) j--;
  return j >= 0 && t.src[j] === '-' ? j : s;
}

/** start of the block of own-line comments right above the line at `pos` (they belong to that item) */
export function leadingCommentsStart(t: Text, pos: number, floor: number): number {
  let ls = lineStart(t, pos);
  while (ls > floor) {
    const prev = lineStart(t, ls - 1);
    if (prev < floor) break;
    const line = t.src.slice(prev, ls).trim();
    if (!line.startsWith('#')) break;
    ls = prev;
  }
  return ls;
}

/** where a pair's value ends on the page: after the scalar (a block scalar's final line break excluded), or after the ':' of a key with no value */
export function pairValueEnd(t: Text, p: Pair<Scalar, Scalar | null>): number {
  const v = p.value;
  if (v && v.range && v.range[1] > v.range[0]) {
    let end = v.range[1];
    if (v.type === 'BLOCK_LITERAL' || v.type === 'BLOCK_FOLDED') while (end > v.range[0] && (t.src[end - 1] === '\n' || t.src[end - 1] === '\r')) end--;
    return end;
  }
  return t.src.indexOf(':', p.key.range![1]) + 1;
}

/** the comment after `end` on its line, with the blanks before it (`   # bumped by CI`), or '' */
export function trailingComment(t: Text, end: number): string {
  let le = t.src.indexOf('\n', end);
  if (le < 0) le = t.src.length;
  if (le > end && t.src[le - 1] === '\r') le--;
  const rest = t.src.slice(end, le);
  return /^[ \t]+#/.test(rest) ? rest.replace(/[ \t]+$/, '') : '';
}

/** whether only blanks come before `pos` on its line */
export function startsLine(t: Text, pos: number): boolean {
  return /^[\uFEFF \t]*$/.test(t.src.slice(lineStart(t, pos), pos));
}


/** The text of a file, with the line break it uses. */
export function textOf(src: string): Text {
  return { src, eol: src.includes('\r\n') ? '\r\n' : '\n' };
}

/** The style of a scalar node as formatScalar takes it. */
export function styleOf(n: Scalar): Style {
  return n.type === 'QUOTE_SINGLE' || n.type === 'QUOTE_DOUBLE' ? n.type : 'PLAIN';
}

/** The source text of a scalar node (a block scalar's final line breaks excluded). */
export function scalarSource(t: Text, n: Scalar): string {
  const [a, b] = n.range ?? [0, 0];
  let end = b;
  if (n.type === 'BLOCK_LITERAL' || n.type === 'BLOCK_FOLDED') while (end > a && (t.src[end - 1] === '\n' || t.src[end - 1] === '\r')) end--;
  return t.src.slice(a, end);
}

/**
 * Replace the scalar node `n` by the string `want`, in its quote style where that reads back as `want`
 * (double-quoted otherwise). Returns whether the text changes, and whether the value had to be quoted
 * although the original was plain (the caller may want to say so).
 */
export function replaceScalar(t: Text, edits: Edits, n: Scalar, want: string, inFlow = false): { changed: boolean; quoted: boolean } {
  const style = styleOf(n);
  const formatted = formatScalar(want, style, inFlow);
  const src = scalarSource(t, n);
  if (formatted === src) return { changed: false, quoted: false };
  const [a] = n.range!;
  edits.add(a, a + src.length, formatted);
  return { changed: true, quoted: style === 'PLAIN' && formatted !== want };
}
