/**
 * `--server-lock auto` (the default): writers of one config repo branch take turns through a lock on the config
 * repo's own server instead of racing for the branch, wherever they run (several projects, several runners).
 *
 * The lock is the Git LFS File Locking API, which GitLab serves beside every repository (Free and up, where LFS is
 * on: the default on gitlab.com and self-managed): `POST <repo>.git/info/lfs/locks {path}` creates a lock on a path
 * for the token's user, atomically (a unique index per project and path), and answers 409 with the holder's lock
 * while another one holds it, whoever that is; `POST …/locks/:id/unlock` releases it (its owner, or a Maintainer with
 * force). The path locked is `.gitops-ci/write-back/<branch>`, which no commit ever holds: GitLab's push check of LFS
 * locks (a changed path locked by another user is refused) never meets it.
 * Sources: https://github.com/git-lfs/git-lfs/blob/main/docs/api/locking.md (the API),
 * https://docs.gitlab.com/user/project/file_lock/ (GitLab, every tier), GitLab's Lfs::LockFileService and
 * Lfs::UnlockFileService (the 409 and who may unlock); the project's contract: test/contracts/git-lfs-locks.json.
 *
 * Why: N writers racing for one branch pay in refused pushes, fetches and backoff (bench/bump: 1.6-4.0x the same N in
 * a row through git, 1.1-1.7x through the API); N writers taking turns cost about the N in a row. A GitLab
 * resource_group orders one project's jobs only, --lock-file the writers of one host only; the config repo's server
 * is the one thing every writer of the branch shares.
 *
 * The lock is an optimisation, never what keeps a write correct (a push is never forced; an API commit carries
 * last_commit_id), so every failure of it falls back to the race, which is correct, and never fails a deploy:
 *   - not offered (an ssh or local remote, no token, LFS off: 403/404/501, any other answer, a network error):
 *     one info line, then the race;
 *   - held by one writer for longer than the lease (GITOPS_SERVER_LOCK_LEASE_S, default 60 s: a holder killed
 *     without releasing it): broken (force unlock; a token that may not break another user's lock goes on without it);
 *   - waited for until half the command's time is gone (at most 30 s before its deadline): the writer goes on
 *     without it, so that a stuck lock costs a race, not a timeout.
 * The holder releases it as soon as its push (or API commit) ends, whatever the outcome, and on cancel.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { atCancel, cancelling } from '../core/cleanup.js';
import { tuning } from '../core/flags.js';
import { KEEP_ALIVE, readBody, readErrorText, watchDeadline } from '../core/http.js';
import type { Logger } from '../core/log.js';
import { addSecret, mask } from '../core/mask.js';
import { httpCredentials, type Credentials } from '../git/session.js';
import type { Remote } from '../git/url.js';
import type { HeldLock } from './lock.js';

export type ServerLockChoice = 'auto' | 'off';
export const SERVER_LOCK_CHOICES: readonly ServerLockChoice[] = ['auto', 'off'];

/** the lock's path in the repo: no commit ever holds it */
export const lockPath = (branch: string) => `.gitops-ci/write-back/${branch}`;

/** the locks API of a git https remote, as git-lfs finds it (server discovery: the remote + `.git/info/lfs`) */
export function locksUrl(remoteUrl: string): string {
  const base = remoteUrl.replace(/\/+$/, '');
  return `${base.endsWith('.git') ? base : `${base}.git`}/info/lfs/locks`;
}

interface Answer {
  status: number;
  /** Retry-After of a 429, in ms */
  retryAfterMs?: number;
  body: { lock?: { id?: unknown; path?: unknown; owner?: { name?: unknown } }; message?: unknown; ours?: unknown };
}

const REQUEST_MS = 10_000;
const CONTENT_TYPE = 'application/vnd.git-lfs+json';

async function tlsCa(env: NodeJS.ProcessEnv): Promise<string[] | undefined> {
  // the CA git is told of (GIT_SSL_CAINFO), else the one GitLab Runner gives the job for its GitLab; Node adds
  // NODE_EXTRA_CA_CERTS itself
  for (const f of [env.GIT_SSL_CAINFO, env.CI_SERVER_TLS_CA_FILE]) {
    if (f && existsSync(f)) {
      try {
        return [...(await import('node:tls')).rootCertificates, readFileSync(f, 'utf8')];
      } catch {
        /* unreadable: the default CAs */
      }
    }
  }
  return undefined;
}

/** one client of one locks URL: basic auth, keep-alive (a waiter asks again and again), bounded answers */
async function client(url: string, creds: Credentials, env: NodeJS.ProcessEnv) {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  // loaded here, not with the module: a bump that never asks (ssh, --server-lock off) loads no HTTP or TLS code, and
  // one on http loads no TLS (start-up is a share of a one-bump's time: bench/bump)
  const mod = secure ? await import('node:https') : await import('node:http');
  const agent = secure ? new (mod as typeof import('node:https')).Agent({ ...KEEP_ALIVE, ca: await tlsCa(env) }) : new mod.Agent(KEEP_ALIVE);
  const auth = `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}`;
  addSecret(creds.password, { users: [creds.user] });
  const request = (suffix: string, body: unknown, deadline: number): Promise<Answer> =>
    new Promise<Answer>((resolve, reject) => {
      const text = JSON.stringify(body);
      const req = mod.request(
        `${url}${suffix}`,
        { method: 'POST', agent, headers: { Accept: CONTENT_TYPE, 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), Authorization: auth } },
        (res) => {
          const status = res.statusCode ?? 0;
          // a lock answer's first MiB, never an error for its size: a 2xx too large to read still made a lock of ours,
          // which is then looked up (verify) and given back, not left behind
          const read = status >= 200 && status < 300 ? readBody(res, 1024 * 1024, { truncate: true }).then((b) => b.toString('utf8')) : status === 409 ? readBody(res, 1024 * 1024, { truncate: true }).then((b) => b.toString('utf8')) : readErrorText(res, 4096);
          read.then(
            (t) => {
              dl.clear();
              let parsed: Answer['body'] = {};
              try {
                const j = JSON.parse(t) as unknown;
                if (j && typeof j === 'object' && !Array.isArray(j)) parsed = j as Answer['body'];
              } catch {
                /* not JSON: the status says enough */
              }
              const ra = Number(res.headers['retry-after']);
              resolve({ status, body: parsed, retryAfterMs: Number.isFinite(ra) && ra >= 0 ? ra * 1000 : undefined });
            },
            (e) => {
              dl.clear();
              reject(e);
            },
          );
        },
      );
      const dl = watchDeadline(req, Math.max(1, Math.min(REQUEST_MS, deadline - Date.now())), 'the lock request');
      req.on('error', (e) => {
        dl.clear();
        reject(dl.expired ? dl.error : e);
      });
      req.end(text);
    });
  return { request, close: () => agent.destroy() };
}

/** a server's text (a message, a holder's name) for a log line: one line (a line break would forge a line of ours, a
 *  terminal escape rewrite the job log), short, and masked before it is cut: a server that echoes the token (or the
 *  Authorization header) could otherwise have the cut fall inside it, leaving a part the logger cannot know */
const clean = (t: string) => mask(t.replace(/[\s\x00-\x1f\x7f-\x9f]+/g, ' ')).slice(0, 200);

/** the server's message of an answer, for a log line */
function said(a: Answer): string {
  const m = typeof a.body.message === 'string' ? clean(a.body.message) : '';
  return `HTTP ${a.status}${m ? `: ${m}` : ''}`;
}

export interface ServerLockOptions {
  remote: Remote;
  env: NodeJS.ProcessEnv;
  branch: string;
  /** the command's deadline (Date.now() ms) */
  deadline: number;
  log: Logger;
  /** e.g. `main of https://gitlab.example.com/group/config.git`, for the log */
  what: string;
  /** --via api: the API token, which takes the lock when the config repo has no credentials of its own (GitLab takes a
   *  token as the password of any user name over HTTPS: https://docs.gitlab.com/user/profile/personal_access_tokens/) */
  apiToken?: string;
  /** the API's URL: the API token goes only to the API's own origin (scheme, host, port) */
  apiUrl?: string;
}

const originOf = (url: string | undefined): string | undefined => {
  try {
    return url ? new URL(url).origin : undefined;
  } catch {
    return undefined;
  }
};

/** the id of a lock as the API names it (a string; a number from a server that sends one) */
const idOf = (lock: unknown): string | undefined => {
  const id = lock && typeof lock === 'object' ? (lock as { id?: unknown }).id : undefined;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
};

/**
 * Take the server's write-back lock for `branch`, waiting while another writer holds it. Undefined when the server
 * offers none or the wait ends without it (see the rules above): the caller then races, as without a lock.
 */
export async function acquireServerLock(o: ServerLockOptions): Promise<HeldLock | undefined> {
  const { log } = o;
  if (o.remote.kind !== 'http') {
    log.debug(`no server lock for ${o.what}: the config repo is ${o.remote.kind === 'ssh' ? 'an ssh URL' : 'a local path'} (the Git LFS locks API is HTTPS)`);
    return undefined;
  }
  // the config repo's own credentials when given (in the URL, GITOPS_GIT_TOKEN); else, through the API, the API token
  // (the writer's identity there); never CI_JOB_TOKEN (below). The API token only where the API is (same scheme, host
  // and port): --via api accepts a config repo URL on the API's host name at another port or scheme (git behind a
  // proxy), where that token was never meant to go (over http, in clear text)
  const explicit = o.remote.password || o.env.GITOPS_GIT_TOKEN;
  const atApi = !!o.apiToken && originOf(o.apiUrl) !== undefined && originOf(o.apiUrl) === originOf(o.remote.url);
  if (!explicit && o.apiToken && !atApi) log.debug(`the API token is not sent to ${o.remote.display} for the write-back lock: it is not the API's origin (${originOf(o.apiUrl)})`);
  const creds: Credentials | undefined = !explicit && atApi ? { user: 'oauth2', password: o.apiToken!, source: 'the API token' } : httpCredentials(o.remote, o.env);
  if (!creds) {
    log.debug(`no server lock for ${o.what}: no token for ${o.remote.host}`);
    return undefined;
  }
  if (creds.source === 'CI_JOB_TOKEN') {
    // GitLab gives a job token no push_code ability (Gitlab::Auth#build_authentication_abilities), and the locks API
    // wants it (LfsRequest#lfs_upload_access?): the answer would be 403 every time, so it is not asked
    log.debug(`no server lock for ${o.what}: GitLab lets no CI_JOB_TOKEN take an LFS lock (set GITOPS_GIT_TOKEN to take turns)`);
    return undefined;
  }
  const url = locksUrl(o.remote.url);
  const c = await client(url, creds, o.env);
  const path = lockPath(o.branch);
  const ref = { name: `refs/heads/${o.branch}` };
  const leaseMs = (tuning(o.env, 'GITOPS_SERVER_LOCK_LEASE_S') ?? 60) * 1000;
  const t0 = Date.now();
  // every request of the wait is bounded by this too (not by the deadline): a server that does not answer costs at
  // most the wait's share of the time, never the push's
  const giveUpAt = o.deadline - Math.min(30_000, (o.deadline - t0) / 2);
  const waitEnd = o.deadline - t0 <= 60_000 ? "half this command's time" : "30 s before this command's deadline";
  // per lock seen held: when we first saw it
  const seen = new Map<string, number>();
  // how long one holder keeps it (the time between two holders seen), what the pause between two looks follows
  let turnMs: number | undefined;
  let lastChange = t0;
  let lastId: string | undefined;
  let told = false;
  /** the pause GitLab's rate limit asked for (429), doubled while it lasts */
  let throttled = 0;
  const fallBack = (why: string, level: 'info' | 'warn' = 'info') => {
    c.close();
    log[level](`${why}: racing for ${o.what} without a lock (correct, only slower under contention)`);
    return undefined;
  };
  for (let looks = 0; ; looks++) {
    let a: Answer;
    const asking = c.request('', { path, ref }, giveUpAt);
    // cancelled while the create is on its way: the server may have made the lock ours already, and nobody would give
    // it back (the next writers would wait out its lease). The exit waits (up to a second) for the answer, and gives
    // back the lock it names
    const unasked = atCancel(async () => {
      const late = await asking.catch(() => undefined);
      const lateId = late && late.status >= 200 && late.status < 300 ? idOf(late.body.lock) : undefined;
      if (lateId) await c.request(`/${encodeURIComponent(lateId)}/unlock`, { force: false, ref }, Date.now() + 1000).catch(() => undefined);
    });
    try {
      a = await asking;
    } catch (e) {
      return fallBack(`the write-back lock at ${url} could not be asked for (${(e as Error).message})`);
    } finally {
      unasked();
    }
    // the answer came while the process is being stopped: the exit gives back what it names; go no further (a clone
    // started now would outlive the exit)
    if (cancelling()) await new Promise<never>(() => undefined);
    if (a.status === 429) {
      // GitLab's rate limit (on gitlab.com, LFS requests count as authenticated web requests: 1,000 a minute per
      // user, https://docs.gitlab.com/administration/settings/git_lfs_rate_limits/): look less often, never race for it
      throttled = Math.min(10_000, Math.max(a.retryAfterMs ?? 0, throttled ? throttled * 2 : 1000));
      log.debug(`the locks API asks us to slow down (HTTP 429): next look in ${throttled} ms`);
      if (Date.now() + throttled > giveUpAt) return fallBack(`the locks API kept answering HTTP 429 (rate limited) until the end of the wait (${waitEnd})`, 'warn');
      await sleep(Math.round(throttled * (0.75 + Math.random() / 2)));
      continue;
    }
    throttled = Math.floor(throttled / 2);
    const lock = a.body.lock;
    let id = idOf(lock);
    if (a.status >= 200 && a.status < 300 && !id) {
      // created, but the answer names no lock (a proxy that rewrote it): ours is on the server all the same, and would
      // hold every other writer up until its lease ends. The server says which locks are the token user's (verify)
      try {
        const v = await c.request('/verify', { ref }, giveUpAt);
        const ours = Array.isArray(v.body.ours) ? (v.body.ours as Array<{ path?: unknown }>).filter((l) => l && l.path === path) : [];
        id = ours.length === 1 ? idOf(ours[0]) : undefined;
      } catch {
        /* id stays undefined */
      }
      if (!id) return fallBack(`the config repo's server took the write-back lock but named no lock to give back (Git LFS locks at ${url}: ${said(a)}); the next writers break it after ${leaseMs / 1000} s`, 'warn');
    }
    if (a.status >= 200 && a.status < 300 && id) {
      const waited = looks ? Math.max(1, Date.now() - t0) : 0;
      if (waited) log.info(`took the server's write-back lock for ${o.what} after ${waited} ms`);
      else log.debug(`took the server's write-back lock for ${o.what} (lock ${id})`);
      let released: Promise<void> | undefined;
      const release = (): Promise<void> =>
        (released ??= (async () => {
          unregister();
          try {
            const r = await c.request(`/${encodeURIComponent(id)}/unlock`, { force: false, ref }, Date.now() + 5_000);
            // 404: gone already (broken as stale by a waiter)
            if (r.status !== 200 && r.status !== 404) log.warn(`the server's write-back lock for ${o.what} was not released (${said(r)}); the next writer breaks it after ${leaseMs / 1000} s`);
          } catch (e) {
            log.warn(`the server's write-back lock for ${o.what} was not released (${(e as Error).message}); the next writer breaks it after ${leaseMs / 1000} s`);
          } finally {
            c.close();
          }
        })());
      const unregister = atCancel(release);
      return { waited, release };
    }
    if (a.status !== 409 || !id) {
      return fallBack(`the config repo's server offers no write-back lock (Git LFS locks at ${url}: ${said(a)})`);
    }
    const now = Date.now();
    if (!seen.has(id)) {
      seen.set(id, now);
      // another holder than at the last look: one turn went by
      if (lastId !== undefined) turnMs = turnMs === undefined ? now - lastChange : Math.round(0.7 * turnMs + 0.3 * (now - lastChange));
      lastChange = now;
      lastId = id;
    }
    if (now - seen.get(id)! > leaseMs) {
      // held by one writer for longer than any write-back takes: its holder is gone (killed without releasing it)
      const owner = typeof lock?.owner?.name === 'string' ? ` (held by ${clean(lock.owner.name)})` : '';
      log.warn(`the server's write-back lock for ${o.what}${owner} has been held for over ${leaseMs / 1000} s: breaking it`);
      let r: Answer | undefined;
      try {
        r = await c.request(`/${encodeURIComponent(id)}/unlock`, { force: true, ref }, giveUpAt);
      } catch {
        /* r stays undefined */
      }
      if (!r || (r.status !== 200 && r.status !== 404)) return fallBack(`the stale write-back lock could not be broken (${r ? said(r) : 'no answer'}; a Maintainer may break another user's lock)`, 'warn');
      seen.delete(id);
      continue;
    }
    if (!told) {
      told = true;
      log.info(`another writer holds the server's write-back lock for ${o.what}: waiting for its turn`);
    }
    // When to look again: every third of a turn (the time between two holders seen), 50 ms to 2 s, with jitter so that
    // the waiters spread; before a turn has been seen, from 50 ms doubling to 400 ms (the first holder may be near its
    // end). K waiters looking every P notice a release after about P/(K+1): over a burst of N writers the idle gaps
    // add up to about P(ln N - 0.4), a few percent of the N turns. Tried on bench/bump and not kept: a look just
    // before the holder is due (0.9 of a turn from when it was first seen), then every quarter turn (noisier turn
    // estimates, larger gaps: git small N = 5 1.28x against 1.16x). 20 writers waiting on turns of a few seconds (a
    // runner far from gitlab.com) ask about 20 times a second together, around GitLab.com's limit for LFS requests
    // (1,000 a minute per user): a 429 above makes them pause.
    const base = turnMs !== undefined ? turnMs / 3 : 50 * 2 ** Math.min(looks, 3);
    const pause = Math.round(Math.min(2000, Math.max(50, base)) * (0.5 + Math.random()) + throttled);
    // a look is worth making only with time left for its answer (a second): else the wait ends here, said as such, not
    // as a request cut short by the end of the wait
    if (Date.now() + pause + 1000 > giveUpAt) return fallBack(`waited ${Math.round((Date.now() - t0) / 1000)} s for the server's write-back lock (${waitEnd})`, 'warn');
    await sleep(pause);
  }
}
