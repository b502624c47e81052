/**
 * A line reader for the plain block-YAML most kustomizations and values files are written in, so that the
 * common edit (a new tag or digest for an image already pinned) needs no full YAML parse: on 1,000 overlays the
 * `yaml` parser's allocations were most of set-image's time (bench/set-image.ts).
 *
 * It accepts a strict subset and returns undefined for anything else, so the caller falls back to the full
 * parser: block mappings and sequences (also `- key: value` items, and sequences at their parent key's column),
 * plain scalars of a safe alphabet, single- and double-quoted scalars without escapes, comments, blank lines.
 * Refused: tabs, CR, a BOM, directives, document markers, flow collections, anchors, aliases, tags, block
 * scalars, complex or quoted keys, a plain scalar holding ': ' or ending in ':', duplicate keys, and any
 * indentation it cannot place. Within the subset its tree is the one `yaml` builds (test/edit/simple-yaml.test.ts
 * compares the two, and the edits made through either).
 */

export interface SScalar {
  kind: 'scalar';
  /** the value as YAML reads it (for a plain scalar: the source text; typing is the caller's) */
  value: string;
  style: 'PLAIN' | 'QUOTE_SINGLE' | 'QUOTE_DOUBLE';
  /** source range of the scalar (quotes included) */
  start: number;
  end: number;
  line: number;
}
export interface SNull {
  kind: 'null';
  /** position just after the key's ':' */
  start: number;
  line: number;
}
export interface SMap {
  kind: 'map';
  indent: number;
  pairs: Array<{ key: string; keyStart: number; line: number; value: SNode }>;
  line: number;
}
export interface SSeq {
  kind: 'seq';
  indent: number;
  items: SNode[];
  line: number;
}
export type SNode = SScalar | SNull | SMap | SSeq;

const KEY = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;
const PLAIN = /^[A-Za-z0-9_./~$][A-Za-z0-9_./:@+=~$ -]*$/;

/**
 * The value that starts at `from` in `line` (after a key's ':' or a dash): its text, style and its range
 * [a, b) within `line`; null when there is no value (blanks, maybe a comment); undefined when outside the subset.
 * Offsets into `line`, no substring but the value itself: this runs on every line of a thousand files.
 */
function scalarAt(line: string, from: number): { value: string; style: SScalar['style']; a: number; b: number } | null | undefined {
  const n = line.length;
  let a = from;
  while (a < n && line.charCodeAt(a) === 32) a++;
  if (a === n) return null;
  const c = line[a];
  if (c === '#') return a > from ? null : undefined;
  let b: number;
  let value: string;
  let style: SScalar['style'];
  if (c === '"' || c === "'") {
    const close = line.indexOf(c, a + 1);
    if (close < 0) return undefined;
    value = line.slice(a + 1, close);
    if (c === '"' && value.includes('\\')) return undefined;
    if (c === "'" && line[close + 1] === "'") return undefined;
    b = close + 1;
    style = c === '"' ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE';
  } else {
    const hash = line.indexOf(' #', a);
    let end = hash < 0 ? n : hash;
    while (end > a && line.charCodeAt(end - 1) === 32) end--;
    value = line.slice(a, end);
    if (!PLAIN.test(value) || value.includes(': ') || value.endsWith(':')) return undefined;
    b = end;
    style = 'PLAIN';
  }
  // after the value: blanks, then nothing or a comment (which needs a blank before it)
  let r = b;
  while (r < n && line.charCodeAt(r) === 32) r++;
  if (r < n) {
    if (line[r] !== '#' || r === b) return undefined;
    // (as the pattern this scan replaced, /^( *| +#.*)$/: a comment holding U+2028/U+2029 is refused)
    if (line.indexOf('\u2028', r) >= 0 || line.indexOf('\u2029', r) >= 0) return undefined;
  }
  return { value, style, a, b };
}

interface Frame {
  node: SMap | SSeq;
  /** column of the map's keys, or of the sequence's dashes */
  indent: number;
}

/** whether `map` already has `key` (maps here have a handful of keys: a scan beats a Set per map) */
function hasKey(map: SMap, key: string): boolean {
  for (const p of map.pairs) if (p.key === key) return true;
  return false;
}

/** the last text read and its tree: set-image reads a kustomization for its edit and then for its resources */
let last: { text: string; root: SMap | undefined } | undefined;

/**
 * Reads `text` if it is in the subset (one document, a mapping at column 0), else undefined. The tree is
 * shared with the next call on the same text (the last one is kept): callers read it, never change it.
 */
export function readSimpleYaml(text: string): SMap | undefined {
  if (last !== undefined && last.text === text) return last.root;
  const root = read(text);
  last = { text, root };
  return root;
}

function read(text: string): SMap | undefined {
  if (text.includes('\t') || text.includes('\r') || text.charCodeAt(0) === 0xfeff) return undefined;
  const root: SMap = { kind: 'map', indent: 0, pairs: [], line: 1 };
  const stack: Frame[] = [{ node: root, indent: 0 }];
  let pending: { map: SMap; indent: number; pairIndex: number } | undefined;
  let pos = 0;
  let lineNo = 0;
  while (pos < text.length) {
    lineNo++;
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl;
    const lineStart = pos;
    pos = nl < 0 ? text.length : nl + 1;
    let ind = lineStart;
    while (ind < end && text.charCodeAt(ind) === 32) ind++;
    if (ind === end || text[ind] === '#') continue; // blank or comment line: no substring made
    const line = text.slice(lineStart, end);
    ind -= lineStart;
    if (line.startsWith('---') || line.startsWith('...') || line[0] === '%') return undefined;
    let col = ind;
    let dash = false;
    if (line[col] === '-' && (line[col + 1] === ' ' || col + 1 === line.length)) {
      dash = true;
      col++;
      while (col < line.length && line.charCodeAt(col) === 32) col++;
      if (col === line.length || line[col] === '#') return undefined; // `-` alone: a nested block item
      if (line[col] === '-' && (line[col + 1] === ' ' || col + 1 === line.length)) return undefined; // `- - x`
    }
    // key: value?
    const colon = line.indexOf(':', col);
    let key: string | undefined;
    let valueFrom = -1;
    if (colon > col && (colon + 1 === line.length || line[colon + 1] === ' ')) {
      const k = line.slice(col, colon);
      if (KEY.test(k)) {
        key = k;
        valueFrom = colon + 1;
      } else if (!(line[col] === '"' || line[col] === "'") || !dash) return undefined;
    }
    if (!dash && key === undefined) return undefined;

    // 1. a pending key (no value on its line) takes this line as its child block, or is null
    if (pending) {
      const p = pending;
      pending = undefined;
      // a block sequence may sit at its key's column (YAML's compact form, `images:` then `- name:`)
      const opensSeq = dash && ind >= p.indent;
      const opensMap = !dash && ind > p.indent;
      if (opensSeq) {
        const seq: SSeq = { kind: 'seq', indent: ind, items: [], line: lineNo };
        p.map.pairs[p.pairIndex].value = seq;
        stack.push({ node: seq, indent: ind });
      } else if (opensMap) {
        const m: SMap = { kind: 'map', indent: ind, pairs: [], line: lineNo };
        p.map.pairs[p.pairIndex].value = m;
        stack.push({ node: m, indent: ind });
      }
    }
    // 2. close the blocks this line is not in
    for (;;) {
      const top = stack[stack.length - 1];
      if (top.node.kind === 'map' ? top.indent > ind : top.indent > ind || (top.indent === ind && !dash)) {
        stack.pop();
        if (!stack.length) return undefined;
        continue;
      }
      break;
    }
    const top = stack[stack.length - 1];
    let map: SMap;
    if (dash) {
      if (top.node.kind !== 'seq' || top.indent !== ind) return undefined;
      const seq = top.node;
      if (key === undefined) {
        const v = scalarAt(line, col);
        if (!v) return undefined;
        seq.items.push({ kind: 'scalar', value: v.value, style: v.style, start: lineStart + v.a, end: lineStart + v.b, line: lineNo });
        continue;
      }
      map = { kind: 'map', indent: col, pairs: [], line: lineNo };
      seq.items.push(map);
      stack.push({ node: map, indent: col });
    } else {
      if (top.node.kind !== 'map' || top.indent !== ind) return undefined;
      map = top.node;
    }
    if (hasKey(map, key!)) return undefined;
    const v = scalarAt(line, valueFrom);
    if (v === undefined) return undefined;
    const keyStart = lineStart + col;
    if (v === null) {
      map.pairs.push({ key: key!, keyStart, line: lineNo, value: { kind: 'null', start: lineStart + valueFrom, line: lineNo } });
      pending = { map, indent: col, pairIndex: map.pairs.length - 1 };
    } else {
      map.pairs.push({ key: key!, keyStart, line: lineNo, value: { kind: 'scalar', value: v.value, style: v.style, start: lineStart + v.a, end: lineStart + v.b, line: lineNo } });
    }
  }
  return root;
}

/** the value of `key` in a simple map */
export function sget(m: SMap, key: string): SNode | undefined {
  return m.pairs.find((p) => p.key === key)?.value;
}
