/**
 * Where the userinfo of a URL-ish value is, whether or not it parses (src/core/secrets.ts findUserinfo): the
 * table of shapes met in practice and in attacks. A shape that leaked joins here and in secrets.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { findUserinfo, secretValueProblem } from '../../src/core/secrets.js';
import { stripUserinfo } from '../../src/core/mask.js';

const D = 'sha256:' + 'a'.repeat(64);
const cases: Array<[string, Array<{ user?: string; password?: string }>]> = [
  ['https://oauth2:glpat-abc@gitlab.example.com/g/r.git', [{ user: 'oauth2', password: 'glpat-abc' }]],
  ['https://u:p/w@d@host/x.git', [{ user: 'u', password: 'p/w@d' }]],
  ['HTTP://user:p:w/d@host/app:1', [{ user: 'user', password: 'p:w/d' }]],
  ['oauth2:glpat-xyz@gitlab.example.com:group/repo.git', [{ user: 'oauth2', password: 'glpat-xyz' }]],
  ['--repo=https://bot:s3cret@host/r.git', [{ user: 'bot', password: 's3cret' }]],
  ['https://ghp_0123456789abcdefghij@github.com/o/r.git', [{ user: 'ghp_0123456789abcdefghij' }]],
  ['git@gitlab.example.com:group/repo.git', []],
  ['ssh://git@host:2222/repo.git', [{ user: 'git' }]],
  [`registry.example.com:5000/app@${D}`, []],
  [`registry.example.com:5000/app:1.2@${D}`, []],
  [`https://registry.example.com:5000/app@${D}`, []],
  ['https://host/users/@me', []],
  ['http://host:8080/users/@me', []],
  ['user@example.com', []],
  ['see https://a:b1234@h/x and http://c:d5678@i/y', [{ user: 'a', password: 'b1234' }, { user: 'c', password: 'd5678' }]],
];

describe('findUserinfo', () => {
  for (const [text, want] of cases) {
    it(text, () => {
      expect(findUserinfo(text)).toEqual(want);
    });
  }
});

describe('stripUserinfo', () => {
  it('takes out exactly what findUserinfo finds in scheme URLs', () => {
    expect(stripUserinfo('https://u:p/w@d@host/x.git')).toBe('https://host/x.git');
    expect(stripUserinfo('http://host:8080/users/@me')).toBe('http://host:8080/users/@me');
    expect(stripUserinfo(`https://r:5000/app@${D}`)).toBe(`https://r:5000/app@${D}`);
  });
});

describe('secretValueProblem', () => {
  it('refuses line breaks, control characters and non-Latin-1; keys may span lines', () => {
    expect(secretValueProblem('ok-token_+/=')).toBeUndefined();
    expect(secretValueProblem('a\nb')).toMatch(/line break/);
    expect(secretValueProblem('a\tb')).toMatch(/control/);
    expect(secretValueProblem('tök€n')).toMatch(/Latin-1/);
    expect(secretValueProblem('-----BEGIN KEY-----\nabc\n-----END KEY-----\n', { multiline: true })).toBeUndefined();
    expect(secretValueProblem('key\u0000', { multiline: true })).toMatch(/control/);
  });
});
