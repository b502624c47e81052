/**
 * The library under the command: image expressions, the text splice of editKustomizationText on the shapes a
 * user may write, and the errors it gives (code, file:line:col).
 */
import { describe, expect, it } from 'vitest';
import { editKustomizationText, readImages } from '../../src/kustomize/edit.js';
import { parseImageExpr, parseImageExprs, splitImage } from '../../src/kustomize/image-expr.js';
import { imageMatches, renderedMatches, unifiedDiff } from '../../src/kustomize/overlay.js';
import type { GitopsError } from '../../src/core/errors.js';

const D = 'sha256:' + 'd'.repeat(64);

function edit(text: string, args: string[]): string {
  return editKustomizationText(text, parseImageExprs(args), 'k.yaml').text;
}
function error(text: string, args: string[] = ['a:1']): GitopsError {
  try {
    editKustomizationText(text, parseImageExprs(args), 'k.yaml');
  } catch (e) {
    return e as GitopsError;
  }
  throw new Error('no error');
}

describe('image expressions', () => {
  it('parses the forms kustomize accepts', () => {
    const p = (a: string) => {
      const { raw: _r, keepNewName: _a, keepNewTag: _b, keepDigest: _c, ...rest } = parseImageExpr(a);
      return rest;
    };
    expect(p('app:1.2')).toEqual({ name: 'app', newTag: '1.2' });
    expect(p(`app@${D}`)).toEqual({ name: 'app', digest: D });
    expect(p(`app:1.2@${D}`)).toEqual({ name: 'app', newTag: '1.2', digest: D });
    expect(p('app=reg.io/x/app')).toEqual({ name: 'app', newName: 'reg.io/x/app' });
    expect(p(`app=localhost:5000/x/app:dev-01@${D}`)).toEqual({ name: 'app', newName: 'localhost:5000/x/app', newTag: 'dev-01', digest: D });
    expect(p('localhost:5000/x/app:1')).toEqual({ name: 'localhost:5000/x/app', newTag: '1' });
    expect(p('localhost:5000/x/app=*:1')).toEqual({ name: 'localhost:5000/x/app', newName: '*', newTag: '1' });
    expect(parseImageExpr('app=new@*').keepDigest).toBe(true);
    // kustomize: `foo=` sets an entry with the name only
    expect(p('foo=')).toEqual({ name: 'foo' });
  });

  it('rejects what kustomize rejects, and an empty name', () => {
    for (const bad of ['bad', 'reg.io/team/app', '', '=:1', '=']) {
      expect(() => parseImageExpr(bad), bad).toThrow(expect.objectContaining({ code: 'EKUSTOMIZE_BAD_IMAGE_EXPR', kind: 'usage' }));
    }
    expect(() => parseImageExprs([])).toThrow(expect.objectContaining({ code: 'EKUSTOMIZE_NO_IMAGE' }));
  });

  it('reports every bad expression at once', () => {
    expect(() => parseImageExprs(['bad', 'ok:1', 'args'])).toThrow(expect.objectContaining({ code: 'EKUSTOMIZE_BAD_IMAGE_EXPR', message: 'invalid image expressions: "bad", "args"' }));
  });

  it('keeps the last expression for a name, as kustomize does', () => {
    expect(parseImageExprs(['a:1', 'b:1', 'a:2']).map((e) => e.raw)).toEqual(['b:1', 'a:2']);
  });

  it('splits like kustomize image.Split', () => {
    expect(splitImage('host:5000/a/b:t@sha256:x')).toEqual({ name: 'host:5000/a/b', tag: 't', digest: 'sha256:x' });
    expect(splitImage('a@sha256:x')).toEqual({ name: 'a', tag: '', digest: 'sha256:x' });
    expect(splitImage('a')).toEqual({ name: 'a', tag: '', digest: '' });
  });
});

describe('editKustomizationText: shapes of images:', () => {
  it('`images: []` and padded flow lists stay flow', () => {
    expect(edit('resources: []\nimages: []\n', ['a:v1', 'b:2'])).toBe('resources: []\nimages: [{name: a, newTag: v1}, {name: b, newTag: "2"}]\n');
    expect(edit('images: [ { name: a, newTag: v1 } ]\n', ['b:2'])).toBe('images: [ { name: a, newTag: v1 }, { name: b, newTag: "2" } ]\n');
    expect(edit('images: [{name: a, newTag: v1, digest: x, newName: q}]\n', ['a:v2'])).toBe('images: [{name: a, newTag: v2}]\n');
    expect(edit('images: [{digest: x, name: a}]\n', ['a:v2'])).toBe('images: [{name: a, newTag: v2}]\n');
  });

  it('an empty file, a comments-only file, a top-level flow mapping, an indented document, no final newline', () => {
    expect(edit('', ['a:v1'])).toBe('images:\n- name: a\n  newTag: v1\n');
    expect(edit('# nothing yet\n', ['a:v1'])).toBe('# nothing yet\nimages:\n- name: a\n  newTag: v1\n');
    expect(edit('{resources: [x.yaml]}\n', ['a:v1'])).toBe('{resources: [x.yaml], images: [{name: a, newTag: v1}]}\n');
    expect(edit('  resources:\n  - a\n', ['a:1'])).toBe('  resources:\n  - a\n  images:\n  - name: a\n    newTag: "1"\n');
    expect(edit('resources:\n- a.yaml', ['a:1'])).toBe('resources:\n- a.yaml\nimages:\n- name: a\n  newTag: "1"');
  });

  it('`images:` with no value, or `~` with a comment', () => {
    expect(edit('images: ~   # none\nnamespace: x\n', ['a:v1'])).toBe('images:   # none\n- name: a\n  newTag: v1\nnamespace: x\n');
    expect(edit('images:\n', ['a:v1'])).toBe('images:\n- name: a\n  newTag: v1\n');
  });

  it('flow entries inside a block list stay flow', () => {
    expect(edit('images:\n- {name: a, newTag: v1, digest: x}\n- {name: c}\n', ['a:v2', 'b:1'])).toBe('images:\n- {name: a, newTag: v2}\n- {name: b, newTag: "1"}\n- {name: c}\n');
  });

  it('a field without a value, a first field that goes away, runs of fields that go away', () => {
    expect(edit('images:\n- name: a\n  newTag:\n', ['a:v2'])).toBe('images:\n- name: a\n  newTag: v2\n');
    expect(edit('images:\n- newTag: v1\n  name: a\n  newName: x\n', [`a@${D}`])).toBe(`images:\n- digest: ${D}\n  name: a\n`);
    // newName takes the place of the first key that goes away (digest, on the `- ` line)
    expect(edit('images:\n- digest: x\n  newTag: v7\n  name: a\n  tagSuffix: -s\n', ['a=m'])).toBe('images:\n- newName: m\n  name: a\n');
  });

  it('a replaced entry keeps its key order and lines: values in place, new keys where removed ones were', () => {
    // tag → digest: the new key on the removed key's line, which keeps its trailing comment; `- name:` untouched
    expect(edit('images:\n  - name: a   # app\n    newTag: "1.0" # set by CI\n', [`a@${D}`])).toBe(`images:\n  - name: a   # app\n    digest: ${D} # set by CI\n`);
    // several new keys: in kustomize's order among themselves, the first one taking the comment
    expect(edit('images:\n- name: a\n  newTag: v1 # c\n- name: b\n', [`a=x@${D}`])).toBe(`images:\n- name: a\n  digest: ${D} # c\n  newName: x\n- name: b\n`);
    // no key goes away: new keys after the entry's last key, before the comments that follow it
    expect(edit('images:\n- name: a\n  newTag: v1 # c\n  # next\n- name: b\n', ['a=x:v2'])).toBe('images:\n- name: a\n  newTag: v2 # c\n  newName: x\n  # next\n- name: b\n');
    // the file's order stays: newTag before newName, digest last
    expect(edit(`images:\n- newTag: v1\n  newName: x\n  name: a\n  digest: ${D}\n`, ['a=y:v2@*'])).toBe(`images:\n- newTag: v2\n  newName: "y"\n  name: a\n  digest: ${D}\n`);
    // the entry's own indentation for new lines
    expect(edit('images:\n    -   name: a\n        newTag: v1\n', ['a=x:v1'])).toBe('images:\n    -   name: a\n        newTag: v1\n        newName: x\n');
  });

  it('comments of removed keys are kept', () => {
    // a trailing comment with no new key to go to stays, on its own line at the key's column
    expect(edit(`images:\n- name: a\n  newTag: v1 # tag\n  digest: ${D} # pinned\n`, ['a:v2'])).toBe('images:\n- name: a\n  newTag: v2 # tag\n  # pinned\n');
    // own-line comments above a removed key stay; the new key goes below them, in the removed key's place
    expect(edit('images:\n- name: a\n  # pinned by CI\n  digest: sha256:x\n', ['a:1.2'])).toBe('images:\n- name: a\n  # pinned by CI\n  newTag: "1.2"\n');
    expect(edit('images:\n- name: a\n  newTag: v1\n  # about the suffix\n  tagSuffix: -s\n', ['a:v2'])).toBe('images:\n- name: a\n  newTag: v2\n  # about the suffix\n');
    // the key on the `- ` line goes and nothing replaces it: the next key moves up, the comments go above the entry
    expect(edit('images:\n- newTag: v1 # t\n  # about name\n  name: a\n', ['a='])).toBe('images:\n# t\n# about name\n- name: a\n');
    // ... below a new entry inserted before it
    expect(edit('images:\n  - newTag: v1 # t\n    name: b\n', ['b=', 'a:1'])).toBe('images:\n  - name: a\n    newTag: "1"\n  # t\n  - name: b\n');
  });

  it('keeps a missing final newline when the last line of the file goes', () => {
    expect(edit('images:\n- name: a\n  newTag: v1\n  tagSuffix: -s', ['a:v2'])).toBe('images:\n- name: a\n  newTag: v2');
    expect(edit('images:\r\n- name: a\r\n  newName: x\r\n  newTag: v1', [`a=x@${D}`])).toBe(`images:\r\n- name: a\r\n  newName: x\r\n  digest: ${D}`);
  });

  it('a key written with no value but a comment', () => {
    expect(edit('images:\n- name: a\n  newTag:   # a: b\n', ['a:v2'])).toBe('images:\n- name: a\n  newTag: v2   # a: b\n');
  });

  it('merges later duplicates of the name it sets into the first entry, as kustomize keeps one entry per name', () => {
    expect(edit('images:\n- name: a\n  newTag: "1"\n- name: b\n  newTag: "1"\n- name: a   # again\n  newTag: "2"\n', ['a:3'])).toBe('images:\n- name: a\n  newTag: "3"\n- name: b\n  newTag: "1"\n');
  });

  it('a new entry goes before the comments of the entry it precedes; a dash on its own line', () => {
    expect(edit('images:\n  # first\n  - name: m\n    newTag: v1\n', ['a:1', 'z:1'])).toBe('images:\n  - name: a\n    newTag: "1"\n  # first\n  - name: m\n    newTag: v1\n  - name: z\n    newTag: "1"\n');
    expect(edit('images:\n-\n  name: m\n  newTag: v1\n', ['a:1'])).toBe('images:\n- name: a\n  newTag: "1"\n-\n  name: m\n  newTag: v1\n');
  });

  it('quotes values that would not read back as strings (YAML 1.1 and 1.2)', () => {
    const out = edit('images: []\n', ['a:1e3', 'b:0x10', 'c:null', 'd:on', 'e:~', 'f:1:2', 'g:true', 'h:n', 'i:v1.0']);
    expect(readImages(out, 'k').map((e) => e.newTag)).toEqual(['1e3', '0x10', 'null', 'on', '~', '1:2', 'true', 'n', 'v1.0']);
    expect(out).toContain('{name: i, newTag: v1.0}');
    expect(out).toContain('{name: a, newTag: "1e3"}');
  });

  it('a byte-order mark, a document end marker, a block scalar value, quoted keys, an anchor', () => {
    expect(edit('\uFEFFresources:\n- a\n', ['a:1'])).toBe('\uFEFFresources:\n- a\nimages:\n- name: a\n  newTag: "1"\n');
    expect(edit('resources:\n- a\n...\n', ['a:1'])).toBe('resources:\n- a\nimages:\n- name: a\n  newTag: "1"\n...\n');
    expect(edit('images:\n- name: a\n  newTag: |-\n    v1\n- name: b\n', ['a:v2'])).toBe('images:\n- name: a\n  newTag: v2\n- name: b\n');
    expect(edit(`images:\n- "name": "a"\n  'newTag': 'v1'\n`, ['a=x:v2'])).toBe(`images:\n- "name": "a"\n  'newTag': 'v2'\n  newName: x\n`);
    expect(edit('images:\n- &e\n  name: a\n  newTag: v1\n', ['a:v2'])).toBe('images:\n- &e\n  name: a\n  newTag: v2\n');
  });

  it('keeps CRLF in what it inserts', () => {
    const out = edit('images:\r\n- name: a\r\n  newTag: v1\r\n', ['a:v2', 'b:1', 'a=x:v2']);
    expect(out).toBe('images:\r\n- name: a\r\n  newTag: v2\r\n  newName: x\r\n- name: b\r\n  newTag: "1"\r\n');
    expect(edit('images:\r\n- name: a\r\n  newTag: v1 # c\r\n', [`a=x@${D}`])).toBe(`images:\r\n- name: a\r\n  digest: ${D} # c\r\n  newName: x\r\n`);
  });

  it('reports changes with before and after', () => {
    const { changes } = editKustomizationText('images:\n- name: a\n  newTag: v1\n', parseImageExprs(['a:v1', 'b=*:2']), 'k');
    expect(changes).toEqual([
      { name: 'a', before: { name: 'a', newTag: 'v1' }, after: { name: 'a', newTag: 'v1' }, changed: false },
      { name: 'b', after: { name: 'b', newTag: '2' }, changed: true },
    ]);
  });
});

describe('editKustomizationText: errors name the file, line and column', () => {
  it.each([
    ['several documents', 'a: 1\n---\nb: 2\n', 'EKUSTOMIZE_NOT_A_MAPPING', 'k.yaml:2:1'],
    ['a list at the top', '- a\n', 'EKUSTOMIZE_NOT_A_MAPPING', 'k.yaml:1:1'],
    ['an unknown field in an entry', 'images:\n- name: a\n  foo: b\n', 'EKUSTOMIZE_BAD_IMAGE_ENTRY', 'k.yaml:2:3'],
    ['an entry that is a string', 'images:\n- a:1\n', 'EKUSTOMIZE_BAD_IMAGE_ENTRY', 'k.yaml:2:3'],
    ['images as an alias', 'x: &i []\nimages: *i\n', 'EKUSTOMIZE_IMAGES_NOT_LIST', 'k.yaml:2:9'],
    ['images as a mapping', 'images:\n  name: a\n', 'EKUSTOMIZE_IMAGES_NOT_LIST', 'k.yaml:2:3'],
    ['bad indentation', 'images:\n- name: a\n newTag: b\n', 'EKUSTOMIZE_YAML', 'k.yaml:3:1'],
    ['a duplicate key', 'images: []\nimages: []\n', 'EKUSTOMIZE_YAML', 'k.yaml:2:1'],
  ])('%s', (_n, text, code, where) => {
    const e = error(text);
    expect(e.code).toBe(code);
    expect(e.kind).toBe('usage');
    expect(e.where).toBe(where);
  });
});

describe('matching images', () => {
  it('kustomize IsImageMatched', () => {
    expect(imageMatches('reg.io/app:1', 'reg.io/app')).toBe(true);
    expect(imageMatches(`reg.io/app:1@${D}`, 'reg.io/app')).toBe(true);
    expect(imageMatches('reg.io/app2:1', 'reg.io/app')).toBe(false);
    expect(imageMatches('docker.io/app:1', 'app')).toBe(false);
    expect(imageMatches('x', '[')).toBe(false);
  });
  it('rendered reference of an entry', () => {
    expect(renderedMatches('new/app:2', { name: 'app', newName: 'new/app', newTag: '2' })).toBe(true);
    expect(renderedMatches(`app@${D}`, { name: 'app', digest: D })).toBe(true);
    expect(renderedMatches('app:1', { name: 'app', newTag: '2' })).toBe(false);
    expect(renderedMatches('app:1', { name: 'app' })).toBe(true);
  });
});

describe('unifiedDiff', () => {
  it('prints git-style hunks', () => {
    expect(unifiedDiff('a\nb\nc\n', 'a\nB\nc\n', 'k.yaml')).toBe('--- a/k.yaml\n+++ b/k.yaml\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n');
    expect(unifiedDiff('a\n', 'a\n', 'k.yaml')).toBe('');
  });
});
