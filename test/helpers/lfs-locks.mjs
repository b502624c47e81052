// The Git LFS File Locking API as GitLab serves it beside a repository's smart HTTP, for git-http-server.mjs.
// Routes (appended to the repo's URL, which ends in .git): POST info/lfs/locks (create), GET info/lfs/locks (list),
// POST info/lfs/locks/:id/unlock, POST info/lfs/locks/verify. The contract: test/contracts/git-lfs-locks.json (the
// Git LFS locking spec, docs/api/locking.md, and GitLab's Repositories::LfsLocksApiController, Lfs::LockFileService,
// Lfs::UnlockFileService, LfsFileLockEntity, LfsRequest; test/contracts/SOURCES.md). GitLab's behaviour kept here:
//   - one lock per (project, path), whoever asks: a second create answers 409 with the lock that holds it (a unique
//     index, so two creates at the same moment cannot both win);
//   - create, unlock and verify need push access (a user without it: 403 "Access forbidden"); a project with LFS
//     off answers the same 403 to a user who can read it; LFS off on the whole server answers 501;
//   - unlock: the lock's owner, or anyone with force: true who is a Maintainer; otherwise 403; an unknown id 404;
//   - ids are strings of a serial number; locked_at is ISO 8601 in UTC; owner.name is the user's name;
//   - a list's ?path= and ?id= filter when given, even empty (Lfs::LocksFinderService: where(path: ''), none);
//   - the 403 of an unlock without force names the owner by numeric user id ("GitLab User 2"), and the 501 is
//     rendered as application/json (LfsRequest#require_lfs_enabled! names no content type).
// Options (environment of the server process): GITOPS_TEST_LFS = on (default) | project-off | server-off;
// GITOPS_TEST_LFS_THROTTLE = N: the first N creates are rate limited (429 with Retry-After: 1, as GitLab's
// Rack::Attack answers); GITOPS_TEST_LFS_DEVELOPERS = JSON array of users who may push but are not Maintainers (everyone else with
// push access is one).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const DOC = 'https://gitlab.example.com/help/topics/git/lfs/_index.md';
const CONTENT_TYPE = 'application/vnd.git-lfs+json; charset=utf-8';
const ROUTE = /^\/(.+\.git)\/info\/lfs\/locks(?:\/(verify)|\/([^/]+)\/unlock)?\/?$/;

/** the locks of one server process (in memory, as long as it runs) */
export function lfsLocks(root, env = process.env) {
  const mode = env.GITOPS_TEST_LFS || 'on';
  // GitLab's rate limit (Rack::Attack): the first N creates answer 429 `Retry later` with Retry-After: 1
  let throttle = Number(env.GITOPS_TEST_LFS_THROTTLE || 0);
  const developers = new Set(env.GITOPS_TEST_LFS_DEVELOPERS ? JSON.parse(env.GITOPS_TEST_LFS_DEVELOPERS) : []);
  /** per repo: path -> lock */
  const locks = new Map();
  let serial = 0;
  /** GitLab's numeric user ids, given in the order the server first sees each user */
  const userIds = new Map();
  const userId = (name) => {
    if (!userIds.has(name)) userIds.set(name, userIds.size + 1);
    return userIds.get(name);
  };
  const entity = (l) => ({ path: l.path, id: String(l.id), locked_at: l.lockedAt, owner: { name: l.owner } });

  /** whether `url` is a locks route (then `handle` answers it) */
  const matches = (url) => ROUTE.test(decodeURIComponent(url.pathname));
  /** answers a locks route; resolves to what was sent. `onAnswer` gets it before the client does (the request log:
   * a test that reads the log once its fetch resolved finds the answer there) */
  async function handle(req, res, url, user, readOnly, onAnswer = () => undefined) {
    const m = ROUTE.exec(decodeURIComponent(url.pathname));
    const [, repo, verify, unlockId] = m;
    userId(user);
    const send = (status, body, contentType = CONTENT_TYPE) => {
      const text = JSON.stringify(body);
      onAnswer({ status, body });
      res.writeHead(status, { 'Content-Type': contentType });
      res.end(text);
      return { status, body };
    };
    const answer = async () => {
      if (throttle > 0 && req.method === 'POST' && !verify && !unlockId) {
        throttle--;
        onAnswer({ status: 429, body: 'Retry later\n' });
        res.writeHead(429, { 'Content-Type': 'text/plain', 'Retry-After': '1' });
        res.end('Retry later\n');
        return { status: 429, body: 'Retry later\n' };
      }
      if (mode === 'server-off') return send(501, { message: 'Git LFS is not enabled on this GitLab server, contact your admin.', documentation_url: DOC }, 'application/json; charset=utf-8');
      if (!existsSync(join(root, repo))) return send(404, { message: 'Not found.', documentation_url: DOC });
      const upload = req.method === 'POST';
      // LfsRequest#lfs_check_access!: list needs read access (everyone here), the rest push access; LFS off on the
      // project fails both, and a user who can read the project is told 403
      if (mode === 'project-off' || (upload && readOnly)) return send(403, { message: 'Access forbidden. Check your access level.', documentation_url: DOC });
      let body = {};
      if (upload) {
        const text = await new Promise((resolve) => {
          let b = '';
          req.on('data', (d) => (b += d));
          req.on('end', () => resolve(b));
        });
        try {
          body = text ? JSON.parse(text) : {};
        } catch {
          return send(400, { message: 'Invalid JSON', documentation_url: DOC });
        }
      }
      const held = locks.get(repo) ?? new Map();
      locks.set(repo, held);
      if (req.method === 'GET' && !verify && !unlockId) {
        let list = [...held.values()];
        const path = url.searchParams.get('path');
        const id = url.searchParams.get('id');
        if (path !== null) list = list.filter((l) => l.path === path);
        if (id !== null) list = list.filter((l) => String(l.id) === id);
        return send(200, { locks: list.map(entity) });
      }
      if (req.method !== 'POST') return send(404, { message: 'Not found.', documentation_url: DOC });
      if (verify) {
        const all = [...held.values()];
        return send(200, { ours: all.filter((l) => l.owner === user).map(entity), theirs: all.filter((l) => l.owner !== user).map(entity) });
      }
      if (unlockId) {
        const lock = [...held.values()].find((l) => String(l.id) === unlockId);
        if (!lock) return send(404, { message: 'Lock not found', documentation_url: DOC });
        const forced = body.force === true;
        if (lock.owner === user || (forced && !developers.has(user))) {
          held.delete(lock.path);
          return send(200, { lock: entity(lock) });
        }
        if (forced) return send(403, { message: 'You must have maintainer access to force delete a lock', documentation_url: DOC });
        return send(403, { message: `${lock.path} is locked by GitLab User ${userId(lock.owner)}`, documentation_url: DOC });
      }
      if (typeof body.path !== 'string' || !body.path) return send(500, { message: "Validation failed: Path can't be blank", documentation_url: DOC });
      const current = held.get(body.path);
      if (current) return send(409, { lock: entity(current), message: 'already locked', documentation_url: DOC });
      const lock = { id: ++serial, path: body.path, owner: user, lockedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
      held.set(body.path, lock);
      return send(201, { lock: entity(lock) });
    };
    return answer();
  }
  return { matches, handle };
}
