/**
 * The review directory's name: GitLab's environment slug (CI_ENVIRONMENT_SLUG,
 * https://docs.gitlab.com/ci/variables/predefined_variables/), computed as GitLab's lib/gitlab/slug/environment.rb
 * does: the cases of GitLab's own spec (spec/lib/gitlab/slug/environment_spec.rb), whose suffix there is a stub, are
 * checked here for everything but the suffix, which is the last 6 base-36 digits of the name's SHA-256.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { environmentSlug, reviewName } from '../../src/review/review.js';

const suffix = (name: string) => BigInt(`0x${createHash('sha256').update(name).digest('hex')}`).toString(36).slice(-6);

describe('environmentSlug (GitLab CI_ENVIRONMENT_SLUG)', () => {
  it.each([
    ['staging-12345678901234567', 'staging-123456789-'],
    ['9-staging-123456789012345', 'env-9-staging-123-'],
    ['PRODUCTION', 'production-'],
    ['review/1-foo', 'review-1-foo-'],
    ['1-foo', 'env-1-foo-'],
    ['1/foo', 'env-1-foo-'],
  ])('%s → %s<suffix>', (name, prefix) => {
    expect(environmentSlug(name)).toBe(`${prefix}${suffix(name)}`);
  });

  it.each([
    ['staging-1234567890123456', 'staging-1234567890123456'],
    ['production', 'production'],
    ['mr-12', 'mr-12'],
    ['foo-', 'foo'],
  ])('%s stays %s (already a slug, at most 24 characters)', (name, slug) => {
    expect(environmentSlug(name)).toBe(slug);
  });

  it('every slug is a DNS label of at most 24 characters', () => {
    for (const n of ['Feature_X', 'a'.repeat(80), 'ÄÖÜ', '--x--', 'x']) {
      const s = environmentSlug(n);
      expect(s.length, n).toBeLessThanOrEqual(24);
      expect(s, n).toMatch(/^[a-z]([a-z0-9-]*[a-z0-9])?$/);
    }
  });
});

describe('reviewName', () => {
  it('the directory is <root>/<slug of the name after the folder>; a name that could leave the root is refused', () => {
    const problems: string[] = [];
    expect(reviewName('review/mr-12', 'review', problems)).toEqual({ env: 'review/mr-12', slug: 'mr-12', dir: 'review/mr-12' });
    expect(reviewName('review/Feature_X', 'apps/review', problems)?.dir).toBe(`apps/review/feature-x-${suffix('Feature_X')}`);
    expect(problems).toEqual([]);
    for (const bad of ['mr-12', 'review/..', 'review/a/b', 'review/a\\b', 'review/a..b', 'review/.', 'review/a\nb', 'rev\u0000iew/a']) {
      const p: string[] = [];
      expect(reviewName(bad, 'review', p), JSON.stringify(bad)).toBeUndefined();
      expect(p).toHaveLength(1);
    }
  });
});
