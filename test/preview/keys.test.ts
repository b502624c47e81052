/**
 * The rendered diff against hostile manifests (issue #18, Deliver 4): resources keyed by group, version,
 * kind, namespace and name (a decoy of another API group cannot hide a real Deployment's change); names and
 * titles escaped in the Markdown (no heading, link, image or HTML of the manifest's making); a large resource
 * diffed in bounded space, the output linear in the input and the note under its limit.
 */
import { describe, expect, it } from 'vitest';
import { diffRendered, formatDiffs } from '../../src/render/diff.js';
import { unifiedDiff, editScript } from '../../src/kustomize/diff.js';
import { codeSpan, escapeMarkdown } from '../../src/core/markdown.js';

const deploy = (apiVersion: string, image: string, name = 'web') => `apiVersion: ${apiVersion}\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${image}\n`;

describe('resources keyed by group, version, kind, namespace and name', () => {
  it('a same-named Deployment of another API group does not hide the real one changing', () => {
    // the decoy comes after the real Deployment and does not change: keyed by kind/namespace/name it replaced
    // the real one on both sides, and the note said nothing changed
    const before = `${deploy('apps/v1', 'registry.example.com/app:1')}---\n${deploy('decoy.example.com/v1', 'registry.example.com/app:1')}`;
    const after = `${deploy('apps/v1', 'registry.example.com/app:666-evil')}---\n${deploy('decoy.example.com/v1', 'registry.example.com/app:1')}`;
    const d = diffRendered(before, after);
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web', status: 'changed' });
    expect(d[0]!.diff).toContain('+          image: registry.example.com/app:666-evil');
    const body = formatDiffs([{ title: 'production', diffs: d }]).body;
    expect(body).toContain('Deployment <code>shop/web</code> (apps/v1, changed)');
  });

  it('the group shows in the note, so a decoy that changes is told apart from the real resource', () => {
    const d = diffRendered(deploy('decoy.example.com/v1', 'a:1'), deploy('decoy.example.com/v1', 'a:2'));
    expect(formatDiffs([{ title: 'p', diffs: d }]).body).toContain('(decoy&#46;example&#46;com/v1, changed)'.replace(/&#46;/g, '.'));
  });
});

describe('everything from a manifest is escaped in the note', () => {
  it('a resource name cannot open a heading, a link, an image or HTML', () => {
    const evil = "x\n# Approved by security\n[click](https://evil.example/) ![i](https://evil.example/i.png) <img src=x onerror=alert(1)> @all";
    const cm = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${JSON.stringify(evil)}\n  namespace: ${JSON.stringify('</code></summary># ns')}\ndata:\n  k: ${v}\n`;
    const body = formatDiffs([{ title: '## fake title [x](https://evil.example/)', diffs: diffRendered(cm('a'), cm('b')) }]).body;
    const outsideFences = body.replace(/```[\s\S]*?```/g, '');
    expect(outsideFences).not.toMatch(/^#{1,3} /m);
    expect(outsideFences).not.toContain('](https://evil.example');
    expect(outsideFences).not.toContain('<img');
    expect(outsideFences).not.toContain('</code></summary>#');
    expect(outsideFences).not.toMatch(/^# Approved/m);
    expect(outsideFences).toContain('&#35; Approved by security');
  });

  it('escapeMarkdown and codeSpan', () => {
    expect(escapeMarkdown('# a\n- b [c](d) <e> `f`')).toBe('&#35; a - b &#91;c&#93;&#40;d&#41; &#60;e&#62; &#96;f&#96;');
    expect(escapeMarkdown('- list')).toBe('&#45; list');
    expect(escapeMarkdown('1. item')).toBe('1&#46; item');
    expect(escapeMarkdown('shop/web-1.2')).toBe('shop/web-1.2');
    expect(codeSpan('app:1')).toBe('`app:1`');
    expect(codeSpan('a``b')).toBe('```a``b```');
    expect(codeSpan('`x')).toBe('`` `x ``');
    expect(codeSpan('a\n# b')).toBe('`a # b`');
  });
});

describe('the diff is bounded in space', () => {
  const big = (n: number, lines: number) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n${Array.from({ length: lines }, (_, i) => `  key${i}: value-${n}-${i}`).join('\n')}\n`;

  it('12,000 changed lines of one resource: a true diff linear in size, the note under its limit with a clear note', () => {
    // the YAML text kustomize would print for the resource (diffRendered's own YAML parse is left out: it is
    // linear and slow, and not what this checks)
    const before = big(1, 12_000);
    const after = big(2, 12_000);
    const diff = unifiedDiff(before, after, 'ConfigMap/big');
    // every changed line once on each side and a few headers: linear, not N×M (the LCS table was 656 MB)
    expect(diff.length).toBeLessThan(1.1 * (before.length + after.length));
    expect(diff.split('\n').filter((l) => l.startsWith('-  key')).length).toBe(12_000);
    expect(diff.split('\n').filter((l) => l.startsWith('+  key')).length).toBe(12_000);
    expect(diff).toContain('not a minimal diff: more than 2,000 changed lines');
    const out = formatDiffs([{ title: 'production', diffs: [{ key: 'k', apiVersion: 'v1', kind: 'ConfigMap', name: 'big', status: 'changed', diff }] }]);
    expect(out.body.length).toBeLessThan(100_000);
    expect(out.truncated).toBe(1);
    expect(out.body).toMatch(/_Diff truncated: \d+ of \d+ lines \(\d+ characters\) not shown\._/);
    expect(out.body).toContain('not a minimal diff');
  });

  it('a smaller resource goes through diffRendered whole', () => {
    const d = diffRendered(big(1, 1500), big(2, 1500));
    expect(d).toHaveLength(1);
    expect(d[0]!.diff).toContain('not a minimal diff');
    expect(d[0]!.diff.length).toBeLessThan(2 * big(1, 1500).length + 4 * 1500 + 1000);
  });

  it('under the bound the edit script is a shortest one, and the diff is exact', () => {
    const a = Array.from({ length: 5000 }, (_, i) => `line ${i}\n`);
    const b = [...a];
    b.splice(2500, 1, 'changed\n');
    b.splice(100, 0, 'inserted\n');
    const ops = editScript(a, b)!;
    expect(ops.filter((o) => o.t !== ' ')).toHaveLength(3);
    const u = unifiedDiff(a.join(''), b.join(''), 'f');
    expect(u).toBe(['--- a/f', '+++ b/f', '@@ -98,6 +98,7 @@', ' line 97', ' line 98', ' line 99', '+inserted', ' line 100', ' line 101', ' line 102', '@@ -2498,7 +2499,7 @@', ' line 2497', ' line 2498', ' line 2499', '-line 2500', '+changed', ' line 2501', ' line 2502', ' line 2503', ''].join('\n'));
    expect(editScript(a, b, 2)).toBeUndefined();
  });
});
