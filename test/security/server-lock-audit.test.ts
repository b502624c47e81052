/**
 * A hostile and failure audit of `--server-lock auto` (src/writeback/server-lock.ts): a broken or hostile locks API
 * must never fail or stall a deploy beyond the stated bounds, show a secret, send a token where it does not belong,
 * or leave a lock of ours behind. Through the CLI bundle with the real git server; where a test needs an answer no
 * GitLab gives, a small proxy of its own (below) sits in front of that server: git passes through, the locks routes
 * are answered as the test says (or passed through, and the server's real answers checked against
 * test/contracts/git-lfs-locks.json by lfsLogProblems).
 *
 * Defects found and fixed (each test failed first):
 *  - a server message cut at 200 characters before masking showed the first part of a token it echoed;
 *  - a lock request that did not answer was bounded by the command's deadline, not by when the wait gives up: with a
 *    short --timeout the writer fell back at the deadline itself and then timed out (exit 4) because of the lock;
 *  - --via api sent the API token (the lock's credentials without the repo's own) to the config repo's URL even where
 *    that is not the API's origin (another port, or plain http where the API is https);
 *  - a 201 whose body names no lock id (a proxy that mangles it), or one over 1 MiB, left our lock on the server,
 *    holding every other writer up until its lease ran out;
 *  - SIGTERM while the create was on its way left the lock the server had just made ours (and the stopping process
 *    went on to start a clone that outlived its exit);
 *  - a holder's name (and a message) from the server was printed as sent: a line break forged a line of ours, a
 *    terminal escape could rewrite the job log, and the name had no length bound.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../helpers/cli.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { lfsLogProblems } from '../helpers/lfs-contract.js';
import { configRepo, headOf, IMAGE, installHook, jobEnv, leakForms, PROD, show } from '../bump/fixture.js';

const LOCK_PATH = '.gitops-ci/write-back/main';
const LOCKS = /\/info\/lfs\/locks(\/|$)/;

/** how the proxy answers a locks route: `pass` forwards it to the real server (then `edit` may change the answer) */
type Answerer = (req: IncomingMessage, res: ServerResponse, body: string, n: number) => 'pass' | void;

interface Hostile {
  url: string;
  /** the locks requests it saw: path and Authorization header */
  seen: Array<{ path: string; auth?: string }>;
  /** the handler of the locks routes (default: pass) */
  locks: Answerer;
  /** rewrites a passed locks answer's body */
  edit?: (path: string, status: number, body: string) => string;
  /** holds a passed locks answer until the promise it returns resolves */
  hold?: (path: string) => Promise<void> | undefined;
  /** the answers left hanging, ended by stop() */
  hanging: ServerResponse[];
  stop(): Promise<void>;
}

/** a proxy in front of `srv`: git passes through; the locks routes are answered by `locks` */
async function hostile(srv: GitServer): Promise<Hostile> {
  const h: Hostile = { url: '', seen: [], locks: () => 'pass', hanging: [], stop: async () => undefined };
  let n = 0;
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, edit?: (status: number, text: string) => string, hold?: Promise<void>) => {
    const up = httpRequest(`${srv.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: new URL(srv.url).host } }, (r) => {
      if (!edit) {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const text = edit(r.statusCode ?? 502, Buffer.concat(chunks).toString('utf8'));
        const headers = { ...r.headers };
        delete headers['content-length'];
        delete headers['transfer-encoding'];
        const send = () => {
          res.writeHead(r.statusCode ?? 502, headers);
          res.end(text);
        };
        if (hold) void hold.then(send);
        else send();
      });
    });
    up.on('error', () => res.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (!LOCKS.test(path)) return forward(req, res, undefined);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      h.seen.push({ path, auth: req.headers.authorization });
      const body = Buffer.concat(chunks);
      const hold = h.hold?.(path);
      if (h.locks(req, res, body.toString('utf8'), n++) === 'pass') forward(req, res, body, h.edit || hold ? (s, t) => (h.edit ? h.edit(path, s, t) : t) : undefined, hold);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  h.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  h.stop = async () => {
    for (const r of h.hanging) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return h;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/vnd.git-lfs+json; charset=utf-8', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};
/** the token of a Basic Authorization header */
const tokenOf = (auth: string | undefined) => (auth ? Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8').replace(/^[^:]*:/, '') : '');

let srv: GitServer;
let px: Hostile;
// long enough that a cut through it leaves a telling part on either side
const TOKEN = `glpat-${Math.random().toString(36).slice(2, 12)}${Math.random().toString(36).slice(2, 12)}`;

beforeAll(async () => {
  srv = await startGitServer({ password: TOKEN });
  px = await hostile(srv);
});
afterAll(async () => {
  // every answer of the real locks API the writers met (through the proxy or not), against the contract
  expect(lfsLogProblems(srv.requests)).toEqual([]);
  await px?.stop();
  await srv?.stop();
});

/** a config repo on the real server, reached through the proxy */
function repo() {
  const r = configRepo(srv);
  return { ...r, via: `${px.url}/${r.name}` };
}
/** the locks held on the real server for a repo */
async function locksOn(name: string): Promise<Array<{ id: string; path: string }>> {
  const r = await fetch(`${srv.url}/${name}/info/lfs/locks`, { headers: { Accept: 'application/vnd.git-lfs+json', Authorization: `Basic ${Buffer.from(`${srv.user}:${srv.password}`).toString('base64')}` } });
  return ((await r.json()) as { locks: Array<{ id: string; path: string }> }).locks;
}
const bumpArgs = (url: string, tag: string, extra: string[] = []) => ['bump', '--repo', url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:${tag}`, ...extra];
const noLeak = (all: string) => {
  for (const f of leakForms(TOKEN, [srv.user])) expect(all).not.toContain(f);
  // any telling part of the token (a message cut through it)
  for (let i = 0; i + 10 <= TOKEN.length; i++) expect(all).not.toContain(TOKEN.slice(i, i + 10));
};

describe('secrets: what a hostile locks API echoes back is never shown', () => {
  it('a 403 whose message echoes the token so that the 200-character cut falls inside it: no part of it is shown', async () => {
    const r = repo();
    px.locks = (req, res) => {
      const t = tokenOf(req.headers.authorization);
      // the message is cut at 200 characters (said()): the token straddles the cut
      json(res, 403, { message: `${'denied '.repeat(27)}${t} is not allowed`, documentation_url: 'https://gitlab.example.com/help' });
    };
    const res = await runCli(bumpArgs(r.via, 'echo-cut'), { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/offers no write-back lock \(Git LFS locks at .*: HTTP 403: denied/);
    noLeak(res.all);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "echo-cut"');
  });

  it('a 500 echoing the Authorization header, the credentialed URL and the token: masked, and the bump lands', async () => {
    const r = repo();
    px.locks = (req, res) => {
      const t = tokenOf(req.headers.authorization);
      json(res, 500, { message: `boom: ${req.headers.authorization} https://${srv.user}:${t}@gitlab.example.com/x ${encodeURIComponent(t)}` });
    };
    const res = await runCli(bumpArgs(r.via, 'echo-500', ['-v']), { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/HTTP 500: boom: Basic \[MASKED\]/);
    noLeak(res.all);
  });

  it('a holder name and a message with line breaks and terminal escapes (a hostile server): one line each, no forged line, no escape', async () => {
    const r = repo();
    const forged = '✔ bump: pushed 0000000000 to main';
    px.locks = (req, res) => {
      if (req.url?.endsWith('/unlock')) return json(res, 403, { message: `no\n${forged}\x1b[2K\x1b]8;;https://evil.example\x07link` });
      json(res, 409, { lock: { id: '77', path: LOCK_PATH, locked_at: '2026-01-01T00:00:00Z', owner: { name: `mallory\r\n${forged}\x1b[1A\x1b[2K${'m'.repeat(5000)}` } }, message: 'already locked' });
    };
    const res = await runCli(bumpArgs(r.via, 'forged'), { env: jobEnv(srv, { GITOPS_SERVER_LOCK_LEASE_S: '1' }) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/held by mallory .*has been held for over 1 s: breaking it/);
    expect(res.stderr.split('\n').filter((l) => l.startsWith(forged))).toEqual([]);
    expect(res.stderr).not.toMatch(/\x1b\[(1A|2K)|\x1b\]8|\r|\x07/);
    expect(res.stderr).not.toContain('m'.repeat(300));
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "forged"');
  });

  it('a redirect (307 to another host) is not followed: that host sees no request, and the bump lands', async () => {
    const r = repo();
    let elsewhere = 0;
    const other = createServer((_q, s) => {
      elsewhere++;
      s.end('{}');
    });
    await new Promise<void>((ok) => other.listen(0, '127.0.0.1', ok));
    try {
      px.locks = (_q, res) => {
        res.writeHead(307, { Location: `http://127.0.0.1:${(other.address() as AddressInfo).port}/steal` });
        res.end();
      };
      const res = await runCli(bumpArgs(r.via, 'redirect'), { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(0);
      expect(res.stderr).toMatch(/offers no write-back lock \(Git LFS locks at .*: HTTP 307\)/);
      expect(elsewhere).toBe(0);
      noLeak(res.all);
    } finally {
      other.closeAllConnections();
      await new Promise((ok) => other.close(ok));
    }
  });

  it('--via api: the API token is not sent to a config repo URL that is not the API\'s origin (here another port)', async () => {
    const gl: GitlabDouble = await startGitlabDouble({ git: srv, projects: [] });
    try {
      const r = repo();
      gl.hooks.addProject({ path: r.name.replace(/\.git$/, ''), repo: r.name });
      px.locks = () => 'pass';
      const from = px.seen.length;
      // no credentials of the config repo's own: the API token would be the lock's
      const res = await runCli(bumpArgs(r.via, 'api-origin', ['--via', 'api', '-v']), { env: { CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token } });
      expect(res.code, res.all).toBe(0);
      expect(new URL(gl.apiUrl).port).not.toBe(new URL(px.url).port);
      for (const q of px.seen.slice(from)) expect(tokenOf(q.auth)).not.toBe(gl.token);
      for (const f of leakForms(gl.token, ['oauth2'])) expect(res.all).not.toContain(f);
      expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "api-origin"');
    } finally {
      await gl.stop();
    }
  });
});

describe('broken answers: the writer races (exit 0), within its bounds, and leaves no lock of ours', () => {
  it('a lock request that never answers, with a short --timeout: the wait ends when half the time is gone, not at the deadline (exit 0, not 4)', async () => {
    const r = repo();
    px.locks = (_q, res) => void px.hanging.push(res);
    const res = await runCli(bumpArgs(r.via, 'hang', ['--timeout', '8']), { env: jobEnv(srv), timeoutMs: 60_000 });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/could not be asked for \(the lock request did not complete within/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "hang"');
  });

  for (const [tag, mangle] of [
    ['no-id', () => '{"lock":{}}'],
    // valid JSON, but over the 1 MiB the client reads: the server made the lock all the same
    ['huge-201', (t: string) => `{"pad":"${'x'.repeat(2 * 1024 * 1024)}",${t.slice(1)}`],
  ] as const) {
    it(`a 201 whose body names no lock id we can read (${tag}: a proxy that mangles it): the lock we were given is found, held and given back`, async () => {
      const r = repo();
      px.locks = () => 'pass';
      px.edit = (path, status, text) => (status === 201 && path.endsWith('/locks') ? mangle(text) : text);
      const from = px.seen.length;
      try {
        const res = await runCli(bumpArgs(r.via, tag, ['-v']), { env: jobEnv(srv) });
        expect(res.code, res.all).toBe(0);
        // the writer asked which lock is its own (verify), held it through the push, and gave it back
        expect(px.seen.slice(from).map((q) => q.path.replace(/.*\/locks/, ''))).toEqual(['', '/verify', expect.stringMatching(/^\/\d+\/unlock$/)]);
        expect(res.stderr).not.toMatch(/without a lock/);
        expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(`newTag: "${tag}"`);
        expect(await locksOn(r.name)).toEqual([]);
      } finally {
        px.edit = undefined;
      }
    });
  }

  it('a 409 that is no JSON, then one whose body is over 1 MiB: the writer races at once, and lands', async () => {
    for (const [tag, body] of [
      ['not-json', '<html>busy</html>'],
      ['huge', JSON.stringify({ lock: { id: '1', path: LOCK_PATH, locked_at: '2026-01-01T00:00:00Z', owner: { name: 'x'.repeat(2 * 1024 * 1024) } } })],
    ] as const) {
      const r = repo();
      px.locks = (_q, res) => json(res, 409, body);
      const res = await runCli(bumpArgs(r.via, tag), { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(0);
      expect(res.stderr).toMatch(/racing for main of .* without a lock/);
      expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(`newTag: "${tag}"`);
    }
  });

  it('a 409 whose lock id changes at every look (never stale), with a short --timeout: the writer gives up at half the time and lands', async () => {
    const r = repo();
    px.locks = (_q, res, _b, n) => json(res, 409, { lock: { id: String(1000 + n), path: LOCK_PATH, locked_at: '2026-01-01T00:00:00Z', owner: { name: 'mallory' } }, message: 'already locked' });
    const res = await runCli(bumpArgs(r.via, 'rotating', ['--timeout', '6']), { env: jobEnv(srv, { GITOPS_SERVER_LOCK_LEASE_S: '1' }) });
    expect(res.code, res.all).toBe(0);
    // the wait ends (a look is made only with a second left for its answer; on a loaded machine a look may still be
    // cut short by the end of the wait): either way it races, and lands
    expect(res.stderr).toMatch(/waited \d+ s for the server's write-back lock \(half this command's time\)|could not be asked for \(the lock request did not complete within/);
    expect(res.stderr).not.toContain('breaking it');
  });
});

describe('exit paths: no lock of ours, nor the lock file, left behind', () => {
  it('--lock-file and the server lock, then a usage error after both are taken (overlay not found, exit 2): both given back', async () => {
    const r = repo();
    px.locks = () => 'pass';
    const lockFile = join(tmp('gci-slock-audit-'), 'writers.lock');
    const res = await runCli(['bump', '--repo', r.via, '--branch', 'main', '--dir', '.kubernetes/overlays/nowhere', '--image', `${IMAGE}:x`, '--lock-file', lockFile], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('overlay not found on branch main');
    expect(existsSync(lockFile)).toBe(false);
    expect(await locksOn(r.name)).toEqual([]);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a push that runs out of --timeout (exit 4): the lock is given back all the same', async () => {
    const r = repo();
    px.locks = () => 'pass';
    // the server holds the push past the deadline, then refuses it
    installHook(r.path, 'pre-receive', 'sleep 8\nexit 1');
    const res = await runCli(bumpArgs(r.via, 'late', ['--timeout', '5']), { env: jobEnv(srv), timeoutMs: 60_000 });
    expect(res.code, res.all).toBe(4);
    expect(await locksOn(r.name)).toEqual([]);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a no-op bump (the image already pinned) and --dry-run: no lock left (dry-run asks for none)', async () => {
    const r = repo();
    px.locks = () => 'pass';
    const from = px.seen.length;
    expect((await runCli(bumpArgs(r.via, 'same'), { env: jobEnv(srv) })).code).toBe(0);
    const head = headOf(r.path);
    const again = await runCli(bumpArgs(r.via, 'same'), { env: jobEnv(srv) });
    expect(again.code, again.all).toBe(0);
    expect(headOf(r.path)).toBe(head);
    const asked = px.seen.length;
    const dry = await runCli(bumpArgs(r.via, 'dry', ['--dry-run']), { env: jobEnv(srv) });
    expect(dry.code, dry.all).toBe(0);
    expect(px.seen.length).toBe(asked);
    expect(px.seen.slice(from).filter((q) => q.path.endsWith('/unlock'))).toHaveLength(2);
    expect(await locksOn(r.name)).toEqual([]);
  });

  it('SIGTERM while the lock request is on its way (the server has created the lock, its answer not yet read): the lock is given back', async () => {
    const r = repo();
    px.locks = () => 'pass';
    // the create's answer reaches the proxy (the lock exists on the server) and is held there until the test lets it go
    let created!: () => void;
    const atProxy = new Promise<void>((ok) => (created = ok));
    let letGo!: () => void;
    const held = new Promise<void>((ok) => (letGo = ok));
    px.edit = (path, status, text) => {
      if (status === 201 && path.endsWith('/locks')) created();
      return text;
    };
    const hold = px.hold;
    px.hold = (path) => (path.endsWith('/locks') ? held : undefined);
    try {
      const run = startCli(bumpArgs(r.via, 'cancel-in-flight'), { env: jobEnv(srv) });
      await atProxy;
      expect((await locksOn(r.name)).map((l) => l.path)).toEqual([LOCK_PATH]);
      run.kill('SIGTERM');
      // the answer arrives while the CLI is stopping (its exit waits up to a second for the lock's release)
      setTimeout(letGo, 200);
      const res = await run.done;
      expect(res.code, res.all).toBe(143);
      expect(await locksOn(r.name)).toEqual([]);
      expect(headOf(r.path)).toBe(r.head);
      // and the stopping process started no clone (a git child made during the exit's wait would outlive it)
      await new Promise((ok) => setTimeout(ok, 500));
      expect(srv.requests.filter((q) => q.path.startsWith(`/${r.name}/`) && !LOCKS.test(q.path))).toEqual([]);
    } finally {
      letGo();
      px.edit = undefined;
      px.hold = hold;
    }
  });

  it('SIGTERM while waiting for another holder: exit 143, that holder\'s lock untouched, none of ours', async () => {
    const r = repo();
    px.locks = () => 'pass';
    // another writer holds it (the test, as the same user)
    const held = await fetch(`${srv.url}/${r.name}/info/lfs/locks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/vnd.git-lfs+json', Accept: 'application/vnd.git-lfs+json', Authorization: `Basic ${Buffer.from(`${srv.user}:${srv.password}`).toString('base64')}` },
      body: JSON.stringify({ path: LOCK_PATH }),
    });
    const theirs = ((await held.json()) as { lock: { id: string } }).lock.id;
    const run = startCli(bumpArgs(r.via, 'cancelled'), { env: jobEnv(srv) });
    await run.waitForStderr(/waiting for its turn/);
    run.kill('SIGTERM');
    const res = await run.done;
    expect(res.code, res.all).toBe(143);
    expect((await locksOn(r.name)).map((l) => l.id)).toEqual([theirs]);
    expect(headOf(r.path)).toBe(r.head);
  });
});
