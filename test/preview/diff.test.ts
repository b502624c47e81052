/**
 * The rendered diff library (src/render/diff.ts): golden Markdown for a before/after pair, Secret values
 * replaced before anything is compared (never in the output, not even in truncated parts), truncation per
 * resource with a note, the whole body under the limit.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { diffRendered, formatDiffs, REDACTED, REDACTED_CHANGED } from '../../src/render/diff.js';
import { renderOrError } from '../../src/preview/app.js';
import { Logger } from '../../src/core/log.js';
import { tmp } from '../helpers/services.js';
import { mkdirSync } from 'node:fs';

const dir = (c: string) => fileURLToPath(new URL(`../fixtures/render/${c}/`, import.meta.url));
const read = (c: string, f: string) => readFileSync(`${dir(c)}${f}`, 'utf8');

function golden(c: string, name: string, actual: string): void {
  const f = `${dir(c)}${name}`;
  if (process.env.UPDATE_GOLDEN || !existsSync(f)) writeFileSync(f, actual);
  expect(actual).toBe(readFileSync(f, 'utf8'));
}

const SECRET_VALUES = ['c3VwZXItc2VjcmV0LW9sZA==', 'c3VwZXItc2VjcmV0LW5ldw==', 'c2hvdmVs', 'plain-token-value-1', 'super-secret-old', 'super-secret-new'];

describe('rendered diff', () => {
  it('one <details> block per changed resource, unified diffs, golden Markdown', () => {
    const diffs = diffRendered(read('basic', 'before.yaml'), read('basic', 'after.yaml'), 'production');
    expect(diffs.map((d) => `${d.apiVersion} ${d.kind}/${d.namespace ?? ''}/${d.name} ${d.status}`)).toEqual([
      'v1 ConfigMap/shovel-production/old-config removed',
      'apps/v1 Deployment/shovel-production/prod-shovel changed',
      'v1 Namespace//shovel-production added',
      'v1 Secret/shovel-production/db changed',
    ]);
    const out = formatDiffs([{ title: 'production (.kubernetes/overlays/production)', diffs }], { header: '### Rendered diff', footer: '<!-- marker -->' });
    expect(out.resources).toBe(4);
    expect(out.shown).toBe(4);
    expect(out.truncated).toBe(0);
    expect(out.body.match(/<details>/g)).toHaveLength(4);
    golden('basic', 'expected.md', out.body);
  });

  it('replaces every data/stringData value of a Secret before diffing: a changed value shows as changed, no value appears', () => {
    const diffs = diffRendered(read('basic', 'before.yaml'), read('basic', 'after.yaml'));
    const secret = diffs.find((d) => d.kind === 'Secret')!;
    expect(secret.diff).toContain(`-  password: ${REDACTED}`);
    expect(secret.diff).toContain(`+  password: ${REDACTED_CHANGED}`);
    const all = formatDiffs([{ title: 't', diffs }]).body;
    for (const v of SECRET_VALUES) expect(all).not.toContain(v);
    // an unchanged Secret is no diff at all
    const same = read('basic', 'before.yaml');
    expect(diffRendered(same, same)).toEqual([]);
    // a removed Secret: still only markers
    const gone = diffRendered(same, same.split('---')[1]!);
    expect(gone.find((d) => d.kind === 'Secret')!.status).toBe('removed');
    for (const v of SECRET_VALUES) expect(JSON.stringify(gone)).not.toContain(v);
  });

  it('redacts the last-applied annotation of a Secret, which would carry the values again', () => {
    const s = (v: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"k":"${v}"}}'\ndata:\n  k: ${v}\n`;
    const d = diffRendered(s('dmFsdWUtb25l'), s('dmFsdWUtdHdv'));
    expect(JSON.stringify(d)).not.toMatch(/dmFsdWUt/);
  });

  it('truncates one big resource diff with a note, and the truncated part holds no Secret value', () => {
    const big = (n: number, v: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n${Array.from({ length: 3000 }, (_, i) => `  key${i}: value-${n}-${i}`).join('\n')}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n${Array.from({ length: 2000 }, (_, i) => `  k${i}: ${v}${i}`).join('\n')}\n`;
    const diffs = diffRendered(big(1, 'hunter2-old-'), big(2, 'hunter2-new-'));
    const out = formatDiffs([{ title: 'production', diffs }], { maxPerResource: 5000 });
    expect(out.truncated).toBe(2);
    expect(out.body).toMatch(/_Diff truncated: \d+ of \d+ lines \(\d+ characters\) not shown\._/);
    expect(out.body).not.toContain('hunter2');
    expect(JSON.stringify(diffs)).not.toContain('hunter2');
    expect(out.body.length).toBeLessThan(100_000);
  });

  it('keeps the whole body under the limit: blocks that do not fit are counted, header and footer always kept', () => {
    const many = (tag: string) =>
      Array.from({ length: 400 }, (_, i) => `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-${i}\nspec:\n  template:\n    spec:\n      containers:\n      - image: registry.example.com/app-${i}:${tag}\n        name: c\n        args: [${Array.from({ length: 30 }, (_, j) => `"--flag-${j}=${tag}"`).join(', ')}]\n`).join('---\n');
    const diffs = diffRendered(many('one'), many('two'));
    expect(diffs).toHaveLength(400);
    const out = formatDiffs([{ title: 'production', diffs }], { header: '# head', footer: '<!-- marker -->' });
    expect(out.body.length).toBeLessThanOrEqual(100_000);
    expect(out.shown).toBeLessThan(400);
    expect(out.body).toContain(`_${400 - out.shown} more resource diffs not shown: the body is limited to 100,000 characters.`);
    expect(out.body.startsWith('# head')).toBe(true);
    expect(out.body.trimEnd().endsWith('<!-- marker -->')).toBe(true);
    // a smaller limit is honoured too
    expect(formatDiffs([{ title: 'production', diffs }], { maxChars: 10_000 }).body.length).toBeLessThanOrEqual(10_000);
  });

  it('a diff holding backticks gets a longer fence; HTML in names is escaped', () => {
    const a = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  md: "```"\n';
    const b = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  md: "````"\n';
    const out = formatDiffs([{ title: '<b>prod</b>', diffs: diffRendered(a, b) }]).body;
    expect(out).toContain('`````diff');
    expect(out).toContain('&#60;b&#62;prod&#60;/b&#62;');
    expect(out).not.toContain('<b>');
  });

  it('pairs a generated ConfigMap/Secret whose hash suffix changed with its predecessor', () => {
    const cm = (name: string, v: string) => `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: ns\ndata:\n  PASSWORD: ${v}\n`;
    const d = diffRendered(cm('prod-db-7t2k9m4h5b', 'b2xkLXZhbHVl'), cm('prod-db-g8dc5f7k2m', 'bmV3LXZhbHVl'));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ status: 'changed', name: 'prod-db-g8dc5f7k2m', renamedFrom: 'prod-db-7t2k9m4h5b' });
    expect(d[0]!.diff).toContain(`+  PASSWORD: ${REDACTED_CHANGED}`);
    expect(formatDiffs([{ title: 'p', diffs: d }]).body).toContain('Secret <code>ns/prod-db-g8dc5f7k2m</code> (v1, changed, was <code>prod-db-7t2k9m4h5b</code>)');
    expect(JSON.stringify(d)).not.toMatch(/b2xkLXZhbHVl|bmV3LXZhbHVl/);
  });

  it('a section that could not be rendered says so', () => {
    const out = formatDiffs([{ title: 'staging', diffs: [], error: 'kustomize build failed: accumulating resources' }]).body;
    expect(out).toContain('staging: could not be rendered');
    expect(out).toContain('accumulating resources');
  });

  it('a render error that quotes a secretGenerator literal (real kustomize) shows no value in the note or the log', async () => {
    const root = tmp('gci-render-err-');
    mkdirSync(`${root}/prod`, { recursive: true });
    // a careless literal: a space instead of '=' makes kustomize quote the whole source in its error
    writeFileSync(`${root}/prod/kustomization.yaml`, 'secretGenerator:\n- name: db\n  literals:\n  - PASSWORD hunter2-literal-value\n  - TOKEN=tok-second-literal\n');
    const r = await renderOrError(root, 'prod', new Logger({ sink: { out: () => {}, err: () => {} } }), 'head');
    expect(r.error).toBeTruthy();
    expect(r.error).toContain('invalid literal source');
    const body = formatDiffs([{ title: 'production (prod)', diffs: [], error: r.error! }]).body;
    for (const v of ['hunter2-literal-value', 'tok-second-literal']) {
      expect(r.error).not.toContain(v);
      expect(body).not.toContain(v);
    }
    // formatDiffs redacts on its own too (an error from elsewhere)
    const direct = formatDiffs([{ title: 'p', diffs: [], error: 'loading KV pairs: literal sources [A=one-secret B two-secret]: invalid literal source B two-secret, expected key=value' }]).body;
    expect(direct).not.toMatch(/one-secret|two-secret/);
    expect(direct).toContain('invalid literal source');
  });
});
