/**
 * The sparse checkout's cone, written by bump itself instead of a `git sparse-checkout set --cone` process
 * (src/git/clone.ts conePatterns): it must be exactly the file real git writes for the same paths, so that git
 * reads it as a cone (and `sparse-checkout add` extends it as its own). Compared with real git, and then used
 * by a real checkout: only the cone is in the work tree.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { conePatterns } from '../../src/git/clone.js';
import { tmp } from '../helpers/services.js';

const git = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.test' } }).toString();

describe('conePatterns', () => {
  const cases = [
    ['.kubernetes/overlays/production'],
    ['.kubernetes/overlays/production', '.kubernetes/overlays/staging', '.kubernetes/base'],
    ['a', 'a/b'],
    ['x/y/z', 'x/y', 'b/c', 'x/q'],
    ['z', 'a-b/c.d', 'a_b/c', 'envs/review-mr-12/'],
    ['A/b', 'a/B', 'B'],
  ];
  it.each(cases.map((c) => [c.join(' ')]))('writes what git sparse-checkout set --cone writes: %s', (joined) => {
    const paths = joined.split(' ');
    const repo = tmp('gci-cone-');
    git(repo, ['init', '-q']);
    git(repo, ['sparse-checkout', 'set', '--cone', '--', ...paths]);
    expect(conePatterns(paths)).toBe(readFileSync(join(repo, '.git', 'info', 'sparse-checkout'), 'utf8'));
  });

  it('leaves to git a path it would escape or refuse, or one that climbs', () => {
    for (const p of ['a b/c', 'a*', 'x/[y]', 'back\\slash', './a', 'a/../b', '']) expect(conePatterns([p]), p).toBeUndefined();
  });

  it('a checkout with the written cone holds the cone and the files of its parents, nothing else', () => {
    const src = tmp('gci-cone-src-');
    git(src, ['init', '-q', '-b', 'main']);
    const files = ['root.txt', 'envs/note.txt', 'envs/production/kustomization.yaml', 'envs/staging/kustomization.yaml', 'apps/a/x.yaml'];
    for (const f of files) execFileSync('sh', ['-c', `mkdir -p "$(dirname "$1")" && echo x > "$1"`, 'sh', join(src, f)]);
    git(src, ['add', '-A']);
    git(src, ['commit', '-q', '-m', 'c']);
    const dir = join(tmp('gci-cone-co-'), 'c');
    git(src, ['clone', '-q', '--no-checkout', '--config=core.sparseCheckout=true', '--config=core.sparseCheckoutCone=true', `file://${src}`, dir]);
    execFileSync('sh', ['-c', 'mkdir -p "$1/.git/info" && cat > "$1/.git/info/sparse-checkout"', 'sh', dir], { input: conePatterns(['envs/production'])! });
    git(dir, ['checkout', '-q', 'main']);
    expect(files.filter((f) => existsSync(join(dir, f)))).toEqual(['root.txt', 'envs/note.txt', 'envs/production/kustomization.yaml']);
    // git reads it as a cone: `sparse-checkout list` names the directory, and `add` extends it
    expect(git(dir, ['sparse-checkout', 'list']).trim()).toBe('envs/production');
    git(dir, ['sparse-checkout', 'add', 'apps/a']);
    expect(existsSync(join(dir, 'apps/a/x.yaml'))).toBe(true);
  });
});
