/**
 * The path shortcuts of src/kustomize/set-images.ts (concatenation where path.join / path.resolve would normalise
 * the whole string again) give what node:path gives, on every spelling of a directory or a resource entry.
 */
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { childOf, resolveFrom } from '../../src/kustomize/set-images.js';

const bases = ['/', '/a', '/a/b', '/tmp/x/overlays/o0001', '/a/', '/a//b', '/a/./b', '/a/../b', 'rel/dir', '.', '/.hidden', '/a/..b', '/a/b..'];
const rels = [
  '../../base', '../base', '..', '../', '../..', '../../..', '../../../../../../x', 'base', 'base/', './base', 'base/./x', 'base/../x', 'a/b/c.yaml',
  '/abs/base', '', '.', './', '..base', '...', 'x/..', 'x//y', '../x/../y', '.hidden', 'deployment.yaml', '../../base/deployment.yaml',
];
const names = ['kustomization.yaml', 'Kustomization', '.git', '.', '..', '', 'a/b', '...', '.x', 'x.'];

describe('set-images path shortcuts = node:path', () => {
  it('resolveFrom(base, rel) = path.resolve(base, rel)', () => {
    for (const b of bases) for (const r of rels) expect(resolveFrom(b, r), `${b} + ${r}`).toBe(resolve(b, r));
  });
  it('childOf(dir, name) = path.join(dir, name)', () => {
    for (const b of bases) for (const n of names) expect(childOf(b, n), `${b} + ${n}`).toBe(join(b, n));
  });
});
