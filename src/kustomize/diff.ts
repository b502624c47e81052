/**
 * A unified diff (as `diff -u` / `git diff` print it) of two texts, with 3 lines of context. Lines are split
 * on '\n'; a '\r' stays part of its line. Common head and tail are trimmed before the LCS, so a small edit to a
 * big file stays cheap.
 */
export function unifiedDiff(before: string, after: string, path: string, context = 3): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  // LCS on the middle
  const n = am.length;
  const m = bm.length;
  const dp: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) dp[i][j] = am[i] === bm[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  type Op = { t: ' ' | '-' | '+'; line: string };
  const ops: Op[] = a.slice(0, pre).map((line) => ({ t: ' ' as const, line }));
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && am[i] === bm[j]) {
      ops.push({ t: ' ', line: am[i] });
      i++;
      j++;
    } else if (j < m && (i >= n || dp[i][j + 1] >= dp[i + 1][j])) {
      ops.push({ t: '+', line: bm[j++] });
    } else {
      ops.push({ t: '-', line: am[i++] });
    }
  }
  for (const line of a.slice(a.length - suf)) ops.push({ t: ' ', line });
  // order deletions before insertions within a change block, as diff does
  for (let k = 0; k < ops.length; ) {
    if (ops[k].t === ' ') {
      k++;
      continue;
    }
    let e = k;
    while (e < ops.length && ops[e].t !== ' ') e++;
    const block = ops.slice(k, e);
    ops.splice(k, e - k, ...block.filter((o) => o.t === '-'), ...block.filter((o) => o.t === '+'));
    k = e;
  }
  // git's a/ b/ prefixes for a relative path; an absolute path stands as it is, as in `diff -u`
  const out: string[] = path.startsWith('/') ? [`--- ${path}`, `+++ ${path}`] : [`--- a/${path}`, `+++ b/${path}`];
  const changedIdx = ops.map((o, k) => (o.t === ' ' ? -1 : k)).filter((k) => k >= 0);
  let k = 0;
  while (k < changedIdx.length) {
    let start = Math.max(0, changedIdx[k] - context);
    let end = changedIdx[k];
    while (k < changedIdx.length && changedIdx[k] - end <= 2 * context + 1) end = changedIdx[k++];
    end = Math.min(ops.length - 1, end + context);
    let la = 1;
    let lb = 1;
    for (let x = 0; x < start; x++) {
      if (ops[x].t !== '+') la++;
      if (ops[x].t !== '-') lb++;
    }
    const hunk = ops.slice(start, end + 1);
    const ca = hunk.filter((o) => o.t !== '+').length;
    const cb = hunk.filter((o) => o.t !== '-').length;
    out.push(`@@ -${ca === 0 ? la - 1 : la}${ca === 1 ? '' : `,${ca}`} +${cb === 0 ? lb - 1 : lb}${cb === 1 ? '' : `,${cb}`} @@`);
    for (const o of hunk) {
      if (o.line.endsWith('\n')) out.push(`${o.t}${o.line.slice(0, -1)}`);
      else out.push(`${o.t}${o.line}`, '\\ No newline at end of file');
    }
    start = end;
  }
  return out.join('\n') + '\n';
}

/** lines with their '\n' (the last one may lack it), so that a missing final newline is a difference */
function splitLines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}
