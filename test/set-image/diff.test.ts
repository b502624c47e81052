import { describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../src/kustomize/diff.js';

describe('unifiedDiff headers', () => {
  const before = 'a: 1\nb: 2\n';
  const after = 'a: 1\nb: 3\n';
  it('uses git-style a/ b/ prefixes for a relative path', () => {
    expect(unifiedDiff(before, after, 'overlays/staging/kustomization.yaml').split('\n').slice(0, 2)).toEqual([
      '--- a/overlays/staging/kustomization.yaml',
      '+++ b/overlays/staging/kustomization.yaml',
    ]);
  });
  it('leaves an absolute path as it is', () => {
    const d = unifiedDiff(before, after, '/tmp/x/kustomization.yaml');
    expect(d.split('\n').slice(0, 2)).toEqual(['--- /tmp/x/kustomization.yaml', '+++ /tmp/x/kustomization.yaml']);
    expect(d).toContain('-b: 2\n+b: 3');
  });
  it('is empty when nothing changed', () => {
    expect(unifiedDiff(before, before, 'k.yaml')).toBe('');
  });
});
