/**
 * Secrets in unusual places (High 2, 3 of issue #10): credentials in malformed or unusual URLs, in image
 * references, in --server, --repo and GITOPS_CONFIG_REPO, and secrets holding control or non-Latin-1
 * characters. Each row makes a real call (or the CLI refuses before it) and runAbused checks the secret is in
 * no output, file, child argv or payload. A new attack joins by adding a row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startGitServer, startRegistry, tmp, type GitServer, type Registry } from '../helpers/services.js';
import { runAbused } from './abuse.js';

const RAND = Math.random().toString(36).slice(2, 10);
// characters that URL-encoding and base64 both change
const PW = `s3cr+t=${RAND}`;

let srv: GitServer;
let reg: Registry;
let closed: number;
beforeAll(async () => {
  srv = await startGitServer({ user: 'bot', password: PW });
  reg = await startRegistry({ user: 'reguser', password: PW });
  closed = await freePort();
});
afterAll(async () => {
  await srv?.stop();
  await reg?.stop();
});

interface Row {
  name: string;
  args: () => string[];
  env?: () => NodeJS.ProcessEnv;
  input?: string;
  secret: string;
  users?: string[];
  code: number;
  /** a string stderr must contain */
  says?: string;
}

const bumpArgs = ['bump', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1', '--timeout', '30'];

const secretFile = () => {
  const f = join(tmp('gci-secret-'), 'hook-secret');
  writeFileSync(f, `hook-${RAND}\ninjected: header-${RAND}\n`);
  return f;
};

const rows: Row[] = [
  {
    name: '`/` and `@` percent-encoded in the password of --repo, against the real git server (404)',
    args: () => [...bumpArgs, '--repo', `http://bot:${encodeURIComponent(`p/w@d-${RAND}`)}@127.0.0.1:${srv.port}/missing.git`],
    secret: `p/w@d-${RAND}`,
    users: ['bot'],
    code: 3,
  },
  {
    name: '`/` and `@` raw in the password of --repo (does not parse)',
    args: () => [...bumpArgs, '--repo', `http://bot:p/w@d-${RAND}@127.0.0.1:${srv.port}/x.git`],
    secret: `p/w@d-${RAND}`,
    code: 2,
    says: 'EGIT_URL',
  },
  {
    name: 'no scheme in GITOPS_CONFIG_REPO: oauth2:TOKEN@host:group/repo.git is refused, not taken for scp',
    args: () => bumpArgs,
    env: () => ({ GITOPS_CONFIG_REPO: `oauth2:glpat-${RAND}xyz@127.0.0.1:group/repo.git` }),
    secret: `glpat-${RAND}xyz`,
    users: ['oauth2'],
    code: 2,
    says: 'EGIT_URL',
  },
  {
    name: 'credentials in an image reference (image resolve HTTP://user:p:w/d@host/…)',
    args: () => ['image', 'resolve', `HTTP://user:p:w/d-${RAND}@${reg.host}/app:1`],
    secret: `p:w/d-${RAND}`,
    code: 2,
  },
  {
    name: 'credentials in an image reference without a scheme, against the real registry',
    args: () => ['image', 'resolve', `reguser:${PW}@${reg.host}/app:1`],
    secret: PW,
    users: ['reguser'],
    code: 2,
  },
  {
    name: 'credentials in --server (argocd), a closed port',
    args: () => ['argocd', 'wait', '--app', 'web', '--revision', 'a'.repeat(40), '--server', `http://admin:${PW}@127.0.0.1:${closed}`, '--timeout', '5s'],
    env: () => ({ ARGOCD_AUTH_TOKEN: `tok-${RAND}-abcdef` }),
    secret: PW,
    users: ['admin'],
    code: 2,
  },
  {
    name: 'credentials with `@` in --allow-descendant --repo (argocd wait), a closed port',
    args: () => ['argocd', 'wait', '--app', 'web', '--revision', 'a'.repeat(40), '--allow-descendant', '--repo', `http://u:x@y-${RAND}@127.0.0.1:${closed}/c.git`, '--server', `http://127.0.0.1:${closed}`, '--timeout', '5s', '--request-timeout', '2s'],
    env: () => ({ ARGOCD_AUTH_TOKEN: `tok-${RAND}-abcdef` }),
    secret: `x@y-${RAND}`,
    code: 4,
  },
  {
    name: 'a token with a newline (GITOPS_GIT_TOKEN): refused up front, the second line never shown',
    args: () => [...bumpArgs, '--repo', `${srv.url}/missing.git`],
    env: () => ({ GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: `${PW}\nsecond-line-${RAND}` }),
    secret: `${PW}\nsecond-line-${RAND}`,
    users: ['bot'],
    code: 2,
    says: 'ESECRET_INVALID',
  },
  {
    name: 'a token with a non-Latin-1 character: a usage error, not a transient retry',
    args: () => [...bumpArgs, '--repo', `${srv.url}/missing.git`],
    env: () => ({ GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: `tok€n-${RAND}` }),
    secret: `tok€n-${RAND}`,
    code: 2,
    says: 'ESECRET_INVALID',
  },
  {
    name: 'a percent-encoded newline in the URL password',
    args: () => [...bumpArgs, '--repo', `http://bot:ab%0Asecond-${RAND}@127.0.0.1:${srv.port}/x.git`],
    secret: `second-${RAND}`,
    code: 2,
    says: 'ESECRET_INVALID',
  },
  {
    name: 'a malformed percent-escape in the URL password: EGIT_URL, not an internal error',
    args: () => [...bumpArgs, '--repo', `http://bot:bad%zz-${RAND}@127.0.0.1:${srv.port}/x.git`],
    secret: `bad%zz-${RAND}`,
    code: 2,
    says: 'EGIT_URL',
  },
  {
    name: 'a registry password with a control character (DOCKER_AUTH_CONFIG)',
    args: () => ['image', 'resolve', `${reg.host}/app:1`],
    env: () => ({ DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [`${reg.host}`]: { username: 'reguser', password: `${PW}\u0007tail-${RAND}` } } }) }),
    secret: `${PW}\u0007tail-${RAND}`,
    code: 2,
    says: 'ESECRET_INVALID',
  },
  {
    name: 'a registry password from stdin with a line break inside (--registry-password-stdin)',
    args: () => ['image', 'resolve', `${reg.host}/app:1`, '--registry-user', 'reguser', '--registry-password-stdin'],
    input: `${PW}\ntail-${RAND}\n`,
    secret: `${PW}\ntail-${RAND}`,
    users: ['reguser'],
    code: 2,
    says: 'ESECRET_INVALID',
  },
  {
    name: 'a webhook secret file with a line break inside (argocd notify --secret-file): no header injection',
    args: () => ['argocd', 'notify', '--repo-url', 'https://gitlab.example.com/g/c', '--branch', 'main', '--after', 'a'.repeat(40), '--server', `http://127.0.0.1:${closed}`, '--secret-file', secretFile()],
    secret: `hook-${RAND}\ninjected: header-${RAND}`,
    code: 2,
    says: 'line break',
  },
];

describe('secrets in unusual places never show', () => {
  for (const row of rows) {
    it(row.name, async () => {
      const res = await runAbused(row.args(), { env: row.env?.() ?? {}, input: row.input, secret: row.secret, users: row.users });
      expect(res.code, res.all).toBe(row.code);
      if (row.says) expect(res.stderr).toContain(row.says);
    });
  }

  it('the harness catches a leak (a secret printed as it is fails the check)', async () => {
    await expect(runAbused(['bump', '--branch', `bad..leak-${RAND}`], { secret: `leak-${RAND}` })).rejects.toThrow(/leaked/);
  });
});
