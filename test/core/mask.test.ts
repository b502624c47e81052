import { afterEach, describe, expect, it } from 'vitest';
import { addSecret, clearSecrets, mask, redactUrl } from '../../src/core/mask.js';
import { registerEnvSecrets } from '../../src/core/secrets.js';

afterEach(() => clearSecrets());

describe('mask', () => {
  const secret = 'glpat-Zx9_secret+/value';

  it('masks a secret raw, URL-encoded and base64-encoded at any offset', () => {
    addSecret(secret, { users: ['gitlab-ci-token'] });
    const texts = [
      `token=${secret}`,
      `url=https://x/${encodeURIComponent(secret)}`,
      `Authorization: Basic ${Buffer.from(`gitlab-ci-token:${secret}`).toString('base64')}`,
      ...['', 'a', 'ab', 'abc'].map((p) => Buffer.from(`${p}${secret}-tail`).toString('base64')),
    ];
    for (const t of texts) {
      const m = mask(t);
      expect(m).toContain('[MASKED]');
      expect(m).not.toContain(secret);
      expect(m).not.toContain(encodeURIComponent(secret));
      expect(m).not.toContain(Buffer.from(secret).toString('base64').slice(2, 20));
    }
  });

  it('masks the base64url forms too (a JWT segment, a token endpoint\'s answer), at any offset', () => {
    const secret = 'glpat-~~>>??~~secret';
    addSecret(secret, { users: ['gitlab-ci-token'] });
    const url = (b: Buffer) => b.toString('base64url');
    const texts = [url(Buffer.from(secret)), url(Buffer.from(`gitlab-ci-token:${secret}`)), ...['', 'a', 'ab', 'abc'].map((p) => `eyJ.${url(Buffer.from(`${p}${secret}-tail`))}.sig`)];
    // not only base64 by another name: some hold - or _ where base64 has + or /
    expect(texts.filter((t) => /[-_]/.test(t.replace(/^eyJ\.|\.sig$/g, ''))).length).toBe(6);
    for (const t of texts) {
      const m = mask(t);
      expect(m, t).toContain('[MASKED]');
      expect(m).not.toContain(url(Buffer.from(secret)).slice(2, 20));
    }
  });

  it('masks passwords in credentialed URLs it was never told about', () => {
    expect(mask('fatal: unable to access https://oauth2:abc123@gitlab.example/x.git')).toBe('fatal: unable to access https://oauth2:[MASKED]@gitlab.example/x.git');
    expect(redactUrl('https://u:p@h.example/a.git')).toBe('https://h.example/a.git');
  });

  it('registers secrets from the CI environment, including DOCKER_AUTH_CONFIG', () => {
    const auth = Buffer.from('bot:regpassword9').toString('base64');
    registerEnvSecrets({ CI_JOB_TOKEN: 'jobtoken-123456', DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'r.example': { auth } } }) });
    expect(mask('x jobtoken-123456 y')).toBe('x [MASKED] y');
    expect(mask('pw regpassword9')).toBe('pw [MASKED]');
    expect(mask(`auth ${auth}`)).not.toContain(auth);
  });

  it('leaves short values alone (they would destroy the output)', () => {
    addSecret('abc');
    expect(mask('abc')).toBe('abc');
  });
});
