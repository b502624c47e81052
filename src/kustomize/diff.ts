/**
 * A unified diff (as `diff -u` / `git diff` print it) of two texts, with 3 lines of context. Lines are split
 * on '\n'; a '\r' stays part of its line.
 *
 * Bounded in space and time, whatever the input (a merge request controls it): common head and tail are
 * trimmed, then Myers' O(ND) greedy algorithm finds a shortest edit script, keeping for each edit distance d
 * only the 2d+1 furthest-reaching positions. The work is O((N+M)·D) and the memory O(N+M+D²); D is capped
 * (DEFAULT_MAX_EDITS): texts that differ in more lines than that are compared line by line in order (a true
 * diff, linear, not a shortest one), and the first hunk header says so. Before this,
 * an LCS table of N×M cells made 12,000 changed lines of one resource cost 656 MB.
 */

/** edit distance (lines removed + added) above which a diff is summarised instead of computed */
export const DEFAULT_MAX_EDITS = 2000;

export interface DiffOptions {
  context?: number;
  maxEdits?: number;
}

type Op = { t: ' ' | '-' | '+'; line: string };

/**
 * A shortest edit script from a to b (Myers 1986), or undefined when it needs more than maxEdits edits.
 * Deletions come before insertions within a change block.
 */
export function editScript(a: string[], b: string[], maxEdits = DEFAULT_MAX_EDITS): Op[] | undefined {
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, maxEdits);
  // trace[d][k + d] = furthest x on diagonal k after d edits
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max; d++) {
    const v = new Int32Array(2 * d + 1);
    const prev = d > 0 ? trace[d - 1]! : undefined;
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (d === 0) x = 0;
      else if (k === -d || (k !== d && prev![k - 1 + (d - 1)]! < prev![k + 1 + (d - 1)]!)) x = prev![k + 1 + (d - 1)]!;
      else x = prev![k - 1 + (d - 1)]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[k + d] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    trace.push(v);
    if (found >= 0) break;
  }
  if (found < 0) return undefined;
  // walk back from (n, m)
  const rev: Op[] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && prev[k - 1 + (d - 1)]! < prev[k + 1 + (d - 1)]!);
    const pk = down ? k + 1 : k - 1;
    const px = prev[pk + (d - 1)]!;
    const py = px - pk;
    // the snake after the edit
    const sx = down ? px : px + 1;
    while (x > sx) {
      rev.push({ t: ' ', line: a[x - 1]! });
      x--;
      y--;
    }
    if (down) rev.push({ t: '+', line: b[py]! });
    else rev.push({ t: '-', line: a[px]! });
    x = px;
    y = py;
  }
  while (x > 0) {
    rev.push({ t: ' ', line: a[x - 1]! });
    x--;
  }
  const ops = rev.reverse();
  // deletions before insertions within a change block, as diff prints them
  const out: Op[] = [];
  for (let i = 0; i < ops.length; ) {
    if (ops[i]!.t === ' ') {
      out.push(ops[i++]!);
      continue;
    }
    let e = i;
    while (e < ops.length && ops[e]!.t !== ' ') e++;
    for (let j = i; j < e; j++) if (ops[j]!.t === '-') out.push(ops[j]!);
    for (let j = i; j < e; j++) if (ops[j]!.t === '+') out.push(ops[j]!);
    i = e;
  }
  return out;
}

export function unifiedDiff(before: string, after: string, path: string, context: number | DiffOptions = 3): string {
  if (before === after) return '';
  const o: DiffOptions = typeof context === 'number' ? { context } : context;
  const ctx = o.context ?? 3;
  const a = splitLines(before);
  const b = splitLines(after);
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  // git's a/ b/ prefixes for a relative path; an absolute path stands as it is, as in `diff -u`
  const out: string[] = path.startsWith('/') ? [`--- ${path}`, `+++ ${path}`] : [`--- a/${path}`, `+++ b/${path}`];
  const maxEdits = o.maxEdits ?? DEFAULT_MAX_EDITS;
  // over the bound: still a true diff (applying it gives `after`), but lines are paired by position, not
  // by a shortest edit script; the first hunk header says so
  const exact = editScript(am, bm, maxEdits);
  const middle = exact ?? pairByPosition(am, bm);
  const note = exact ? '' : ` not a minimal diff: more than ${maxEdits.toLocaleString('en-US')} changed lines, compared line by line in order`;
  const ops: Op[] = [];
  for (let i = 0; i < pre; i++) ops.push({ t: ' ', line: a[i]! });
  for (const op of middle) ops.push(op);
  for (let i = a.length - suf; i < a.length; i++) ops.push({ t: ' ', line: a[i]! });
  // line numbers before each op, computed once (a running count: linear however many hunks)
  const lineA = new Int32Array(ops.length + 1);
  const lineB = new Int32Array(ops.length + 1);
  lineA[0] = 1;
  lineB[0] = 1;
  for (let x = 0; x < ops.length; x++) {
    lineA[x + 1] = lineA[x]! + (ops[x]!.t !== '+' ? 1 : 0);
    lineB[x + 1] = lineB[x]! + (ops[x]!.t !== '-' ? 1 : 0);
  }
  const changedIdx: number[] = [];
  for (let x = 0; x < ops.length; x++) if (ops[x]!.t !== ' ') changedIdx.push(x);
  let k = 0;
  while (k < changedIdx.length) {
    const start = Math.max(0, changedIdx[k]! - ctx);
    let end = changedIdx[k]!;
    while (k < changedIdx.length && changedIdx[k]! - end <= 2 * ctx + 1) end = changedIdx[k++]!;
    end = Math.min(ops.length - 1, end + ctx);
    const la = lineA[start]!;
    const lb = lineB[start]!;
    const ca = lineA[end + 1]! - la;
    const cb = lineB[end + 1]! - lb;
    out.push(`@@ -${ca === 0 ? la - 1 : la}${ca === 1 ? '' : `,${ca}`} +${cb === 0 ? lb - 1 : lb}${cb === 1 ? '' : `,${cb}`} @@${out.length === 2 ? note : ''}`);
    for (let x = start; x <= end; x++) {
      const op = ops[x]!;
      if (op.line.endsWith('\n')) out.push(`${op.t}${op.line.slice(0, -1)}`);
      else out.push(`${op.t}${op.line}`, '\\ No newline at end of file');
    }
  }
  return out.join('\n') + '\n';
}

/** a linear edit script: line i of a against line i of b, each run of differing lines removed then added */
function pairByPosition(a: string[], b: string[]): Op[] {
  const out: Op[] = [];
  const common = Math.min(a.length, b.length);
  let i = 0;
  while (i < common) {
    if (a[i] === b[i]) {
      out.push({ t: ' ', line: a[i]! });
      i++;
      continue;
    }
    let e = i;
    while (e < common && a[e] !== b[e]) e++;
    // a differing run that reaches the end takes the longer side's tail with it
    const [ea, eb] = e === common ? [a.length, b.length] : [e, e];
    for (let j = i; j < ea; j++) out.push({ t: '-', line: a[j]! });
    for (let j = i; j < eb; j++) out.push({ t: '+', line: b[j]! });
    i = e === common ? Number.MAX_SAFE_INTEGER : e;
  }
  if (i !== Number.MAX_SAFE_INTEGER) {
    for (let j = common; j < a.length; j++) out.push({ t: '-', line: a[j]! });
    for (let j = common; j < b.length; j++) out.push({ t: '+', line: b[j]! });
  }
  return out;
}

/** lines with their '\n' (the last one may lack it), so that a missing final newline is a difference */
function splitLines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}
