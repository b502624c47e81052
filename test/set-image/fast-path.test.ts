/**
 * set-image's fast path (fastEdit in src/kustomize/edit.ts over src/edit/simple-yaml.ts) against the full-parse
 * path, on kustomize's own set-image cases (test/contracts/kustomize-setimage-cases.ts) and the set-image
 * goldens (test/fixtures/set-image): the same text, changes and errors, byte for byte. Then what the fast path
 * must refuse (so the full path answers): anchors, aliases, tags, flow style, quoted keys, CRLF, a BOM, tabs,
 * several documents, block scalars, duplicate names or keys, numeric-looking plain values. And yaml11TypeFast,
 * the parser-free answer for a plain scalar, against the parse it skips; and imagesInYaml's parser-free walk.
 * (test/edit/simple-yaml.test.ts compares the reader's tree with yaml's, and generated files both ways.)
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editKustomizationText, fastEdit, fastPath, yaml11Type, yaml11TypeFast } from '../../src/kustomize/edit.js';
import { parseImageExprs, type ImageExpr } from '../../src/kustomize/image-expr.js';
import { SET_IMAGE_CASES } from '../contracts/kustomize-setimage-cases.js';
import { imagesInYaml } from '../../src/kustomize/overlay.js';
import { parseAllDocuments } from 'yaml';
import { fastEdit as fastEditWithoutParse } from '../../src/kustomize/fast-edit.js';
import { formatScalarFast, plainIsSafeFast } from '../../src/edit/plain-scalar.js';
import { formatScalar, plainIsSafe } from '../../src/edit/splice.js';

const FIX = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/set-image');
const D = `sha256:${'b'.repeat(64)}`;

/** the result (or the error's code, where and message) of one path */
function through(fast: boolean, text: string, args: string[]) {
  fastPath.enabled = fast;
  try {
    return editKustomizationText(text, parseImageExprs(args), 'kustomization.yaml');
  } catch (e) {
    const g = e as { code?: string; where?: string; message: string };
    return { error: `${g.code} ${g.where} ${g.message}` };
  } finally {
    fastPath.enabled = true;
  }
}

function byName(args: string[]): Map<string, ImageExpr> {
  const m = new Map<string, ImageExpr>();
  for (const e of parseImageExprs(args)) {
    m.delete(e.name);
    m.set(e.name, e);
  }
  return m;
}

let quickHits = 0;
/** every case both ways; returns how many the fast path answered itself */
function bothWays(text: string, argSets: string[][]): number {
  let fastHits = 0;
  for (const args of argSets) {
    const fast = through(true, text, args);
    const full = through(false, text, args);
    expect(fast, `${JSON.stringify(text)} ${args.join(' ')}`).toEqual(full);
    let hit = false;
    try {
      hit = fastEdit(text, byName(args)) !== undefined;
    } catch {
      /* an expression the full path refuses */
    }
    if (hit) fastHits++;
    // set-image's first try, with no parser at all (src/kustomize/fast-edit.ts): the same answer, or none
    let quick: ReturnType<typeof fastEditWithoutParse>;
    try {
      quick = fastEditWithoutParse(text, byName(args));
    } catch {
      quick = undefined;
    }
    if (quick) {
      expect(hit, `${JSON.stringify(text)} ${args.join(' ')}`).toBe(true);
      expect(quick, `${JSON.stringify(text)} ${args.join(' ')}`).toEqual(full);
      quickHits++;
    }
  }
  return fastHits;
}

/** the cases' arguments, and the same names with another tag, a digest, a kept name with a new tag */
function variants(args: string[]): string[][] {
  let names: string[] = [];
  try {
    names = [...new Set(parseImageExprs(args).map((e) => e.name))];
  } catch {
    return [args];
  }
  return [args, names.map((n) => `${n}:9.9.9`), names.map((n) => `${n}@${D}`), names.map((n) => `${n}=*:1.10`), names.map((n) => `${n}:on`)];
}

describe('set-image fast path = full path, byte for byte', () => {
  it("on kustomize's own set-image cases (their kustomizations with their and other expressions)", () => {
    let n = 0;
    let hits = 0;
    for (const c of SET_IMAGE_CASES) {
      const given = c.given ?? 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n';
      const sets = variants(c.args);
      hits += bothWays(given, sets);
      // and on the file after the case's own edit: the fast path's common case (the entry is there)
      const after = through(false, given, c.args);
      if ('text' in after) hits += bothWays(after.text, sets);
      n += sets.length;
    }
    expect(n).toBeGreaterThan(100);
    expect(hits).toBeGreaterThan(20); // the fast path did answer a good share itself
  });

  it('on every set-image golden', () => {
    let n = 0;
    for (const c of readdirSync(FIX)) {
      const before = join(FIX, c, 'before.yaml');
      if (!existsSync(before)) continue;
      const args = JSON.parse(readFileSync(join(FIX, c, 'args.json'), 'utf8')) as string[];
      for (const f of ['before.yaml', 'after.yaml']) {
        if (!existsSync(join(FIX, c, f))) continue;
        bothWays(readFileSync(join(FIX, c, f), 'utf8'), variants(args));
        n++;
      }
    }
    expect(n).toBeGreaterThan(20);
  });

  it('answers the common file itself: one entry per image, a new tag where a tag was', () => {
    const text = `# overlay 1
resources:
  - ../../base   # shared base

images:
  # the application
  - name: registry.example.com/team/app
    # a comment between keys
    newTag: "1.0.0"   # bumped by CI
  - name: sidecar
    newTag: v2
`;
    expect(bothWays(text, [['registry.example.com/team/app:1.0.1'], [`sidecar@${D}`, 'sidecar:*'], ['registry.example.com/team/app:1.0.0']])).toBe(3);
    expect(fastEdit(text, byName(['registry.example.com/team/app:1.0.1']))!.text).toBe(text.replace('"1.0.0"', '"1.0.1"'));    // and without the parser at all, as set-image tries it first (and a plain tag too)
    expect(fastEditWithoutParse(text, byName(['registry.example.com/team/app:1.0.1']))!.text).toBe(text.replace('"1.0.0"', '"1.0.1"'));
    expect(fastEditWithoutParse(text, byName(['sidecar:v3']))!.text).toBe(text.replace('newTag: v2', 'newTag: v3'));
  });
});

describe('the fast path refuses what is outside its subset, and the full path answers', () => {
  const entry = '  - name: app\n    newTag: v1\n';
  const refused: Record<string, string> = {
    anchor: `images:\n  - &a\n    name: app\n    newTag: v1\n`,
    'anchored value': `images:\n  - name: app\n    newTag: &t v1\nother: *t\n`,
    alias: `x: &e {name: app, newTag: v1}\nimages:\n  - *e\n`,
    tag: `images:\n  - name: app\n    newTag: !!str v1\n`,
    'flow list': `images: [{name: app, newTag: v1}]\n`,
    'flow entry': `images:\n  - {name: app, newTag: v1}\n`,
    'quoted key': `images:\n  - name: app\n    "newTag": v1\n`,
    'single-quoted key': `images:\n  - 'name': app\n    newTag: v1\n`,
    CRLF: `images:\r\n${entry.replace(/\n/g, '\r\n')}`,
    BOM: `\ufeffimages:\n${entry}`,
    tab: `images:\n${entry}\t# x\n`,
    'two documents': `images:\n${entry}---\nimages: []\n`,
    'document start': `---\nimages:\n${entry}`,
    'block scalar': `images:\n${entry}note: |\n  text\n`,
    'duplicate names': `images:\n${entry}${entry.replace('v1', 'v2')}`,
    'duplicate key': `images:\n  - name: app\n    newTag: v1\n    newTag: v2\n`,
    'numeric tag': `images:\n  - name: app\n    newTag: 1.10\n`,
    'bool tag': `images:\n  - name: app\n    newTag: on\n`,
    'exponent tag': `images:\n  - name: app\n    newTag: e5\n`,
    'escape in double quotes': `images:\n  - name: app\n    newTag: "v\\u0031"\n`,
    'unknown field': `images:\n  - name: app\n    newTag: v1\n    tag: x\n`,
    'new image': `images:\n${entry}`,
    'field dropped': `images:\n  - name: app\n    newName: other\n    newTag: v1\n`,
  };
  for (const [what, text] of Object.entries(refused)) {
    it(what, () => {
      const args = what === 'new image' ? ['new:v2'] : ['app:v3'];
      expect(fastEdit(text, byName(args))).toBeUndefined();
      // (for these two only the edit is outside: app=*:v4 on the same files is a value change, in the subset)
      const more = what === 'new image' || what === 'field dropped' ? [] : [['app=*:v4'], [`app@${D}`]];
      expect(bothWays(text, [args, ...more])).toBe(0);
    });
  }
});

describe('the fast path without the parser (what set-image tries first)', () => {
  it('answered a good share of the cases above, each as the full path does', () => {
    // (bothWays compares every answer; this checks that the comparison had something to compare)
    expect(quickHits).toBeGreaterThanOrEqual(40);
  });
});

describe('plainIsSafeFast and formatScalarFast', () => {
  /** every string of up to `n` characters of `alphabet` */
  const all = (alphabet: string, n: number): string[] => {
    let level = [''];
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      level = level.flatMap((p) => [...alphabet].map((c) => p + c));
      out.push(...level);
    }
    return out;
  };
  const words = ['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE', 'on', 'On', 'ON', 'off', 'Off', 'OFF', 'null', 'Null', 'NULL', '~', '', 'e5', 'E5', 'e+5', 'e-12', '.inf', '.nan', '<<', '='];
  const tags = ['nan', 'inf', 'Infinity', 'v1', 'v1.2.3', 'latest', 'main-1234', 'sha-3f2a9c1', 'registry.example.com/team/app', 'app@sha256:abc', 'a:b', 'a: b', 'a:', 'a #b', 'a#b', 'a b', 'a  b', 'a ', ' a', 'a\tb', 'a\nb', "it's", 'a"b', 'a,b', 'a[0]', 'a{b}', 'a|b', 'a>b', 'a%b', 'a!b', 'a&b', 'a*b', 'a?b', 'a`b', 'x-', 'x_', 'x.', 'x/', 'x~', 'x$', 'x+', 'x=', 'x@', 'x:1', 'x :1', 'x - y'];
  const versions = ['1.4.3', '10.0.0-rc.1', '1.2.3-', '1.2.3.', '1.2.3-a:b', '1.2.3-a b', '2001.12.14', '1.2.3.4', '0.0.1', '01.02.03', '1.2', '1.2.3e5', '1.2.3_4', '1.2.3+b', '-1.2.3', '1..2', '1.2.3-rc.1-x', '1.2.3--'];
  const candidates = [...words, ...tags, ...versions, ...all('aYnoe5.: -#', 3), ...all('01.-e:', 5)];
  it('say safe only where the YAML 1.1 and 1.2 parses say so, and for the usual names and tags', () => {
    let fast = 0;
    for (const s of candidates) {
      if (plainIsSafeFast(s)) {
        fast++;
        expect(plainIsSafe(s), JSON.stringify(s)).toBe(true);
      }
      for (const style of ['PLAIN', 'QUOTE_SINGLE', 'QUOTE_DOUBLE'] as const) {
        const f = formatScalarFast(s, style);
        if (f !== undefined) expect(f, `${JSON.stringify(s)} ${style}`).toBe(formatScalar(s, style, false));
      }
    }
    for (const w of words) expect(plainIsSafeFast(w), w).toBeUndefined();
    for (const s of ['v1', 'v1.2.3', 'latest', 'main-1234', 'sha-3f2a9c1', 'registry.example.com/team/app', 'app@sha256:abc', 'a:b', 'a b']) expect(plainIsSafeFast(s), s).toBe(true);
    for (const s of ['1.4.3', '10.0.0-rc.1', '0.0.1', '1.2.3.4']) expect(plainIsSafeFast(s), s).toBe(true);
    // and yaml11TypeFast: string only where the YAML 1.1 parse says string (on what can be the source of a plain
    // scalar, as the line reader gives it: trimmed, no comment, no `: `)
    const plainSource = (s: string) => s !== '' && s === s.trim() && !s.includes('#') && !s.includes(': ') && !s.endsWith(':');
    for (const s of candidates) if (plainSource(s) && yaml11TypeFast(s)) expect(yaml11Type(s, false), JSON.stringify(s)).toBe('string');
    expect(fast).toBeGreaterThan(200);
  });
});

describe('yaml11TypeFast', () => {
  it('says string only where the YAML 1.1 parse says string, and for the usual names and tags', () => {
    const words = ['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE', 'on', 'On', 'ON', 'off', 'Off', 'OFF', 'null', 'Null', 'NULL', '~', ''];
    const others = ['e5', 'E5', 'e+5', 'e-12', 'E-0', 'e', 'E', 'ex', 'e5x', '1e5', '.5', '.inf', '-.inf', '.nan', '0x1F', '012', '0b101', '1_000', '190:20:30', '2001-12-14', '<<', '+1', '-1', '1.10', 'yES', 'tRUE', 'oN', 'nULL', 'yess', 'onn', 'Nope', 'v1', 'v2.3', 'latest', 'sidecar', 'registry.example.com/team/app', 'sha-3f2a9c1', 'a:b', 'a b', 'x1.0', 'main-1234', 'Infinity', 'NaN', 'nan', 'inf'];
    let fast = 0;
    for (const s of [...words, ...others]) {
      const f = yaml11TypeFast(s);
      if (f) {
        fast++;
        expect(yaml11Type(s, false), s).toBe('string');
      }
    }
    for (const w of words) expect(yaml11TypeFast(w), w).toBeUndefined();
    for (const s of ['v1', 'latest', 'sidecar', 'registry.example.com/team/app', 'sha-3f2a9c1']) expect(yaml11TypeFast(s)).toBe('string');
    expect(fast).toBeGreaterThan(15);
    // and the answer through yaml11Type is the parse's answer for every one of them
    for (const s of [...words, ...others]) expect(yaml11Type(s), s).toBe(yaml11Type(s, false));
  });
});

describe('imagesInYaml without the parser, where the file is in the simple subset', () => {
  it('finds the same image values as the full parse', () => {
    const full = (text: string) => {
      const out: string[] = [];
      const walk = (x: unknown): void => {
        if (Array.isArray(x)) x.forEach(walk);
        else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) k === 'image' && typeof v === 'string' ? out.push(v) : walk(v);
      };
      for (const d of parseAllDocuments(text)) if (!d.errors.length) walk(d.toJS());
      return out;
    };
    const texts = [
      'apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/team/app:0.0.1\n      - name: side\n        image: "quay.io/x/side@sha256:abc"   # pinned\n',
      'spec:\n  image: true\n',
      'spec:\n  image: NULL\n',
      'spec:\n  image: 12\n',
      'spec:\n  image: 1.5\n',
      'spec:\n  image: \'True\'\n',
      'spec:\n  image:\n    repository: app\n    tag: v1\n  other:\n  - image: nginx\n',
      'a:\n  1:\n    image: one\n  0:\n    image: zero\n',
      'spec:\n  image: ~\n',
      'spec:\n  image: .inf\n',
      'image: top\nlist:\n- image: a\n- image: b\n',
      'x: 1\n---\ny:\n  image: doc2\n',
    ];
    for (const t of texts) expect(imagesInYaml(t), t).toEqual(full(t));
  });
});
