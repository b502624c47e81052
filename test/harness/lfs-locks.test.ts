/**
 * The Git LFS File Locking API of the test git server (test/helpers/lfs-locks.mjs), driven with plain `fetch` as a
 * client (git-lfs, `gitops-ci bump`) would, on every route and case GitLab answers: create, the 409 of a held path
 * (also under ten concurrent creates), unlock by the owner, by another user with and without force, as a Developer
 * and as a Maintainer, an unknown id, list with its filters, verify, a read-only user, LFS off for the project (403)
 * and on the server (501), no credentials (401). After each test, every answer the server logged is checked against
 * test/contracts/git-lfs-locks.json (test/helpers/lfs-contract.ts), and matched against the answers the client got.
 * GitLab's behaviour: https://docs.gitlab.com/user/project/file_lock/ (Developer to lock, Maintainer to force an
 * unlock) and the sources named in the contract's $comment; the API: https://github.com/git-lfs/git-lfs/blob/main/docs/api/locking.md
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { lfsEndpoint, lfsLogProblems, validateLfsResponse } from '../helpers/lfs-contract.js';

const LFS_JSON = 'application/vnd.git-lfs+json';
const FORBIDDEN = 'Access forbidden. Check your access level.';
const OFF = 'Git LFS is not enabled on this GitLab server, contact your admin.';

type Creds = readonly [string, string] | null;
interface Answer {
  status: number;
  contentType: string | null;
  headers: Headers;
  body: any;
}
interface Lock {
  id: string;
  path: string;
  locked_at: string;
  owner: { name: string };
}

/** a git server with the test's users, the answers its clients got, and the contract check after each test */
function useServer(opts: Parameters<typeof startGitServer>[0] = {}) {
  const s = {
    srv: undefined as unknown as GitServer,
    /** the JSON answers of LFS routes the clients got (a 401 is the server's, before any LFS route: not logged) */
    got: [] as { status: number; body: unknown }[],
    alice: null as Creds,
    bob: ['bob', 'pw-bob'] as Creds,
    carol: ['carol', 'pw-carol'] as Creds,
    reader: ['reader', 'pw-reader'] as Creds,
    /** one request to `<repo>.git/info/lfs<route>` with the headers git-lfs sends */
    async lfs(creds: Creds, method: 'GET' | 'POST', repo: string, route: string, body?: unknown): Promise<Answer> {
      const headers: Record<string, string> = { Accept: LFS_JSON };
      if (method === 'POST') headers['Content-Type'] = LFS_JSON;
      if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds[0]}:${creds[1]}`).toString('base64')}`;
      const res = await fetch(`${s.srv.url}/${repo}/info/lfs${route}`, {
        method,
        headers,
        body: method === 'POST' ? (typeof body === 'string' ? body : JSON.stringify(body ?? {})) : undefined,
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // a text answer (the 401) stays text
      }
      if (res.status !== 401) s.got.push({ status: res.status, body: parsed });
      return { status: res.status, contentType: res.headers.get('content-type'), headers: res.headers, body: parsed };
    },
    create: (creds: Creds, repo: string, path: string) => s.lfs(creds, 'POST', repo, '/locks', { path }),
    unlock: (creds: Creds, repo: string, id: string, body: unknown = {}) => s.lfs(creds, 'POST', repo, `/locks/${id}/unlock`, body),
    list: (creds: Creds, repo: string, query = '') => s.lfs(creds, 'GET', repo, `/locks${query}`),
    verify: (creds: Creds, repo: string) => s.lfs(creds, 'POST', repo, '/locks/verify', {}),
    /** the LFS answers the server logged */
    logged: () => s.srv.requests.filter((r) => r.status !== undefined) as { method: string; path: string; user: string; status: number; response: unknown }[],
  };
  beforeAll(async () => {
    s.srv = await startGitServer({
      user: 'alice',
      users: { bob: 'pw-bob', carol: 'pw-carol', reader: 'pw-reader' },
      readOnlyUsers: ['reader'],
      developers: ['carol'],
      ...opts,
    });
    s.alice = ['alice', s.srv.password];
    for (const r of ['config.git', 'other.git', 'list.git', 'verify.git']) s.srv.createRepo(r);
  });
  afterAll(async () => s.srv?.stop());
  /** how many logged answers earlier tests checked */
  let checked = 0;
  afterEach(() => {
    // the answers of this test (each test checks its own, so together they check every one)
    const all = s.logged();
    const logged = all.slice(checked);
    checked = all.length;
    const got = s.got.splice(0);
    // every LFS answer keeps the contract
    expect(lfsLogProblems(logged)).toEqual([]);
    // and the log is the answers the clients got, all of them (logged before they are sent)
    const key = (a: { status: number; body: unknown }) => JSON.stringify([a.status, a.body]);
    expect(logged.map((r) => key({ status: r.status, body: r.response })).sort()).toEqual(got.map(key).sort());
    expect(logged.length).toBeGreaterThan(0);
  });
  return s;
}

describe('Git LFS locks on the test git server, as GitLab answers them', () => {
  const s = useServer();
  let n = 0;
  /** a path no other test uses */
  const fresh = () => `envs/staging/.gitops-lock-${++n}`;

  it('create: 201 with the lock (a serial id as a string, locked_at ISO 8601 UTC, owner the caller), as application/vnd.git-lfs+json', async () => {
    const path = fresh();
    const before = Math.floor(Date.now() / 1000) * 1000; // locked_at has whole seconds
    const r = await s.create(s.alice, 'config.git', path);
    const after = Date.now();
    expect(r.status).toBe(201);
    expect(r.contentType).toMatch(/^application\/vnd\.git-lfs\+json/);
    expect(Object.keys(r.body)).toEqual(['lock']);
    const lock = r.body.lock as Lock;
    expect(lock.path).toBe(path);
    expect(lock.id).toMatch(/^[0-9]+$/);
    expect(lock.locked_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // the moment of the create, in UTC
    expect(Date.parse(lock.locked_at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(lock.locked_at)).toBeLessThanOrEqual(after);
    expect(lock.owner).toEqual({ name: 'alice' });
    // the next lock's id is the next number
    const next = await s.create(s.bob, 'config.git', fresh());
    expect(Number(next.body.lock.id)).toBeGreaterThan(Number(lock.id));
  });

  it("a second create of a held path answers 409 with the holder's lock, whoever asks (the holder too); the same path in another project is free", async () => {
    const path = fresh();
    const held = (await s.create(s.alice, 'config.git', path)).body.lock as Lock;
    for (const who of [s.bob, s.carol, s.alice]) {
      const r = await s.create(who, 'config.git', path);
      expect(r.status).toBe(409);
      expect(r.body).toEqual({ lock: held, message: 'already locked', documentation_url: expect.any(String) });
    }
    const other = await s.create(s.bob, 'other.git', path);
    expect(other.status).toBe(201);
    expect(other.body.lock).toMatchObject({ path, owner: { name: 'bob' } });
  });

  it("ten concurrent creates of one path: exactly one 201, the nine others 409 with the winner's lock", async () => {
    const path = fresh();
    const users = [s.alice, s.bob, s.carol];
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => s.create(users[i % 3]!, 'config.git', path)));
    const won = answers.filter((a) => a.status === 201);
    expect(won).toHaveLength(1);
    const lost = answers.filter((a) => a.status !== 201);
    expect(lost.map((a) => a.status)).toEqual(Array(9).fill(409));
    for (const a of lost) expect(a.body.lock).toEqual(won[0]!.body.lock);
    const listed = await s.list(s.alice, 'config.git', `?path=${encodeURIComponent(path)}`);
    expect(listed.body.locks).toEqual([won[0]!.body.lock]);
  });

  it('unlock by the owner: 200 with the deleted lock, and the path is free again (under a new id)', async () => {
    const path = fresh();
    const lock = (await s.create(s.carol, 'config.git', path)).body.lock as Lock;
    const r = await s.unlock(s.carol, 'config.git', lock.id);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ lock });
    expect((await s.list(s.alice, 'config.git', `?path=${encodeURIComponent(path)}`)).body).toEqual({ locks: [] });
    const again = await s.create(s.bob, 'config.git', path);
    expect(again.status).toBe(201);
    expect(Number(again.body.lock.id)).toBeGreaterThan(Number(lock.id));
    // the owner may pass force too
    expect((await s.unlock(s.bob, 'config.git', again.body.lock.id, { force: true })).status).toBe(200);
  });

  it("unlock of another user's lock without force (or with a force that is not the JSON true): 403 naming the holder by user id; the lock stays", async () => {
    const path = fresh();
    const lock = (await s.create(s.alice, 'config.git', path)).body.lock as Lock;
    for (const body of [{}, { force: false }, { force: 'true' }]) {
      const r = await s.unlock(s.bob, 'config.git', lock.id, body);
      expect(r.status).toBe(403);
      expect(r.body).toEqual({ message: expect.stringMatching(new RegExp(`^${path.replace(/[.]/g, '\\.')} is locked by GitLab User \\d+$`)), documentation_url: expect.any(String) });
    }
    expect((await s.list(s.alice, 'config.git', `?id=${lock.id}`)).body).toEqual({ locks: [lock] });
    await s.unlock(s.alice, 'config.git', lock.id);
  });

  it('force unlock: by a Developer 403 (maintainer access needed), by a Maintainer 200', async () => {
    const path = fresh();
    const lock = (await s.create(s.alice, 'config.git', path)).body.lock as Lock;
    const dev = await s.unlock(s.carol, 'config.git', lock.id, { force: true });
    expect(dev.status).toBe(403);
    expect(dev.body).toEqual({ message: 'You must have maintainer access to force delete a lock', documentation_url: expect.any(String) });
    const maintainer = await s.unlock(s.bob, 'config.git', lock.id, { force: true });
    expect(maintainer.status).toBe(200);
    expect(maintainer.body).toEqual({ lock });
    expect((await s.list(s.alice, 'config.git', `?id=${lock.id}`)).body).toEqual({ locks: [] });
  });

  it('unlock of an unknown id: 404 Lock not found', async () => {
    const r = await s.unlock(s.alice, 'config.git', '999999');
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ message: 'Lock not found', documentation_url: expect.any(String) });
  });

  it('list: every lock of the project; ?path= and ?id= filter (a given empty value matches nothing); a read-only user may list', async () => {
    const a = (await s.create(s.alice, 'list.git', 'a.yaml')).body.lock as Lock;
    const b = (await s.create(s.bob, 'list.git', 'b.yaml')).body.lock as Lock;
    const all = await s.list(s.alice, 'list.git');
    expect(all.status).toBe(200);
    expect(all.contentType).toMatch(/^application\/vnd\.git-lfs\+json/);
    expect(all.body).toEqual({ locks: [a, b] });
    expect((await s.list(s.alice, 'list.git', '?path=b.yaml')).body).toEqual({ locks: [b] });
    expect((await s.list(s.alice, 'list.git', `?id=${a.id}`)).body).toEqual({ locks: [a] });
    expect((await s.list(s.alice, 'list.git', '?path=')).body).toEqual({ locks: [] });
    expect((await s.list(s.alice, 'list.git', '?path=nope.yaml')).body).toEqual({ locks: [] });
    const reader = await s.list(s.reader, 'list.git');
    expect(reader.status).toBe(200);
    expect(reader.body).toEqual({ locks: [a, b] });
  });

  it('verify: the locks split into ours and theirs by owner; a read-only user is refused (push access)', async () => {
    const a = (await s.create(s.alice, 'verify.git', 'a.yaml')).body.lock as Lock;
    const b = (await s.create(s.bob, 'verify.git', 'b.yaml')).body.lock as Lock;
    const alice = await s.verify(s.alice, 'verify.git');
    expect(alice.status).toBe(200);
    expect(alice.body).toEqual({ ours: [a], theirs: [b] });
    expect((await s.verify(s.bob, 'verify.git')).body).toEqual({ ours: [b], theirs: [a] });
    expect((await s.verify(s.carol, 'verify.git')).body).toEqual({ ours: [], theirs: [a, b] });
    expect((await s.verify(s.alice, 'other.git')).status).toBe(200);
    const reader = await s.verify(s.reader, 'verify.git');
    expect(reader.status).toBe(403);
    expect(reader.body).toEqual({ message: FORBIDDEN, documentation_url: expect.any(String) });
  });

  it('a read-only user cannot create or unlock: 403 Access forbidden, and nothing changes', async () => {
    const path = fresh();
    const r = await s.create(s.reader, 'config.git', path);
    expect(r.status).toBe(403);
    expect(r.body).toEqual({ message: FORBIDDEN, documentation_url: expect.any(String) });
    const lock = (await s.create(s.alice, 'config.git', path)).body.lock as Lock;
    for (const body of [{}, { force: true }]) {
      const u = await s.unlock(s.reader, 'config.git', lock.id, body);
      expect(u.status).toBe(403);
      expect(u.body.message).toBe(FORBIDDEN);
    }
    expect((await s.list(s.alice, 'config.git', `?id=${lock.id}`)).body).toEqual({ locks: [lock] });
  });

  it('no credentials or a wrong password: 401 HTTP Basic before any LFS check, and no lock is made', async () => {
    const path = fresh();
    for (const creds of [null, ['alice', 'not-the-password'] as const]) {
      const r = await s.create(creds, 'config.git', path);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Basic /);
      expect(r.body).toMatch(/^HTTP Basic: Access denied/);
      expect((await s.lfs(creds, 'GET', 'config.git', '/locks')).status).toBe(401);
    }
    expect((await s.list(s.alice, 'config.git', `?path=${encodeURIComponent(path)}`)).body).toEqual({ locks: [] });
    // the 401 is answered before the LFS routes: nothing of it in the LFS log
    expect(s.logged().filter((r) => r.status === 401)).toEqual([]);
  });

  it('a blank path: 500 "Validation failed"; a body that is not JSON: 400; neither makes a lock', async () => {
    const before = (await s.list(s.alice, 'config.git')).body.locks as Lock[];
    const blank = await s.lfs(s.alice, 'POST', 'config.git', '/locks', { path: '' });
    expect(blank.status).toBe(500);
    expect(blank.body).toEqual({ message: "Validation failed: Path can't be blank", documentation_url: expect.any(String) });
    const garbled = await s.lfs(s.alice, 'POST', 'config.git', '/locks', '{"path": ');
    expect(garbled.status).toBe(400);
    expect((await s.list(s.alice, 'config.git')).body.locks).toEqual(before);
  });

  it('the contract check catches a wrong answer: a real logged 201, 409, list and verify, each spoilt one way', async () => {
    const path = fresh();
    await s.create(s.alice, 'config.git', path);
    await s.create(s.bob, 'config.git', path);
    await s.list(s.alice, 'config.git');
    await s.verify(s.alice, 'config.git');
    const logged = s.logged();
    const last = (status: number, method: string, suffix: string) => structuredClone(logged.filter((r) => r.status === status && r.method === method && r.path.endsWith(suffix)).at(-1)!);
    const created = last(201, 'POST', '/locks');
    const conflict = last(409, 'POST', '/locks');
    const list = last(200, 'GET', '/locks');
    const verify = last(200, 'POST', '/locks/verify');
    for (const r of [created, conflict, list, verify]) expect(validateLfsResponse(r)).toEqual([]);
    // the log check sees an LFS answer among the git routes' entries (which it skips) and names it
    const spoiltList = structuredClone(list);
    (spoiltList.response as { locks: unknown }).locks = 'none';
    expect(lfsLogProblems([{ method: 'GET', path: '/config.git/info/refs', user: 'alice' } as never, spoiltList])).toEqual([`GET ${list.path} 200.locks: not an array (Lock[])`]);
    const spoilt = (r: typeof created, spoil: (b: any) => void, status = r.status) => {
      const c = structuredClone(r);
      spoil(c.response);
      return validateLfsResponse({ ...c, status });
    };
    expect(spoilt(created, (b) => (b.lock.id = Number(b.lock.id))).join('\n')).toMatch(/lock\.id: not a string/);
    expect(spoilt(created, (b) => (b.lock.id = 'lock-1')).join('\n')).toMatch(/lock\.id: "lock-1" does not match/);
    expect(spoilt(created, (b) => (b.lock.expires_at = 'x')).join('\n')).toMatch(/Lock has no field expires_at/);
    expect(spoilt(created, (b) => delete b.lock.owner).join('\n')).toMatch(/Lock lacks required field owner/);
    expect(spoilt(created, (b) => (b.lock.locked_at = 'yesterday')).join('\n')).toMatch(/locked_at: not an ISO 8601 time/);
    expect(spoilt(created, () => undefined, 200).join('\n')).toMatch(/status 200 is not listed for POST \/locks/);
    expect(spoilt(conflict, (b) => delete b.lock).join('\n')).toMatch(/LockConflict lacks required field lock/);
    expect(spoilt(conflict, (b) => (b.request_id = '1')).join('\n')).toMatch(/LockConflict has no field request_id/);
    expect(spoilt(list, (b) => (b.next_cursor = '2')).join('\n')).toMatch(/LockList has no field next_cursor/);
    expect(spoilt(list, (b) => (b.locks = b.locks[0])).join('\n')).toMatch(/locks: not an array/);
    expect(spoilt(verify, (b) => delete b.theirs).join('\n')).toMatch(/VerifyAnswer lacks required field theirs/);
    expect(spoilt(verify, (b) => (b.ours = [{ id: '1' }])).join('\n')).toMatch(/ours\[0\]: Lock lacks required field path/);
    // a route GitLab does not serve (there is no show action) and a status no route lists
    expect(validateLfsResponse({ ...created, method: 'GET', path: '/config.git/info/lfs/locks/1' })).toEqual(['GET /config.git/info/lfs/locks/1 201: route is not an endpoint of the contract']);
    expect(validateLfsResponse({ method: 'GET', path: '/config.git/info/lfs/locks', status: 501, response: { message: OFF } }).join('\n')).toMatch(/Error lacks required field documentation_url/);
    expect(lfsEndpoint('POST', '/group/config.git/info/lfs/locks/12/unlock')).toBe('POST /locks/:id/unlock');
    expect(lfsEndpoint('POST', '/config.git/info/lfs/locks/verify')).toBe('POST /locks/verify');
  });
});

describe('Git LFS off for the project: every route 403 Access forbidden', () => {
  const s = useServer({ lfs: 'project-off' });
  it('create, list, unlock, verify', async () => {
    for (const r of [await s.create(s.alice, 'config.git', 'a.yaml'), await s.list(s.alice, 'config.git'), await s.unlock(s.alice, 'config.git', '1'), await s.verify(s.alice, 'config.git'), await s.list(s.reader, 'config.git')]) {
      expect(r.status).toBe(403);
      expect(r.contentType).toMatch(/^application\/vnd\.git-lfs\+json/);
      expect(r.body).toEqual({ message: FORBIDDEN, documentation_url: expect.any(String) });
    }
  });
});

describe('Git LFS off on the server: every route 501', () => {
  const s = useServer({ lfs: 'server-off' });
  it('create, list, unlock, verify (GitLab renders it as application/json)', async () => {
    for (const r of [await s.create(s.alice, 'config.git', 'a.yaml'), await s.list(s.alice, 'config.git'), await s.unlock(s.alice, 'config.git', '1'), await s.verify(s.bob, 'config.git')]) {
      expect(r.status).toBe(501);
      expect(r.contentType).toMatch(/^application\/json/);
      expect(r.body).toEqual({ message: OFF, documentation_url: expect.any(String) });
    }
    // no credentials is still 401 first
    expect((await s.list(null, 'config.git')).status).toBe(401);
  });
});
