/**
 * `--server-lock auto` (the default, src/writeback/server-lock.ts): every writer of a branch takes turns through a
 * lock on the config repo's server, GitLab's Git LFS locks API (test/helpers/lfs-locks.mjs beside the real git
 * server; its answers checked against test/contracts/git-lfs-locks.json by test/harness/lfs-locks.test.ts and here),
 * instead of racing for the branch; wherever the lock is not offered or stuck, the writer races, as without it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { runCli, startCli } from '../helpers/cli.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { lfsLogProblems } from '../helpers/lfs-contract.js';
import { readImages } from '../../src/kustomize/edit.js';
import { configRepo, headOf, IMAGE, installHook, jobEnv, leakForms, logOf, PROD, show } from './fixture.js';
import { DIGEST, repoWithDigest } from '../promote/fixture.js';

let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
const OTHER = { user: 'other-bot', password: `other-${Math.random().toString(36).slice(2, 10)}` };
// the git server takes a job token as GitLab does for git (user gitlab-ci-token)
const JOB_TOKEN = `jobtok-${Math.random().toString(36).slice(2, 10)}`;

beforeAll(async () => {
  // other-bot may push but is no Maintainer: it cannot break another user's lock
  srv = await startGitServer({ users: { [OTHER.user]: OTHER.password, 'gitlab-ci-token': JOB_TOKEN }, developers: [OTHER.user] });
  gl = await startGitlabDouble({ git: srv, projects: [], onResponse: recorder.onResponse });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  // every answer of the locks API these writers relied on, against test/contracts/git-lfs-locks.json
  expect(lfsLogProblems(srv.requests)).toEqual([]);
  await gl?.stop();
  await srv?.stop();
});

const timingOf = (stderr: string) => JSON.parse(/bump timing (\{.*\})/.exec(stderr)?.[1] ?? 'null') as { attempts: Array<{ result: string }>; wait?: number } | null;
const svc = (i: number) => `registry.example.com/team/svc-${String(i).padStart(2, '0')}`;
const LOCK_PATH = '.gitops-ci/write-back/main';

/** the locks API of a repo of the server, as a client (another writer, the test) calls it */
async function lfs(repoName: string, suffix: string, body: unknown, who: { user: string; password: string }): Promise<{ status: number; json: any }> {
  const r = await fetch(`${srv.url}/${repoName}/info/lfs/locks${suffix}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Accept: 'application/vnd.git-lfs+json', 'Content-Type': 'application/vnd.git-lfs+json', Authorization: `Basic ${Buffer.from(`${who.user}:${who.password}`).toString('base64')}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}
const me = () => ({ user: srv.user, password: srv.password });
/** the locks API's requests to one repo since `from` (the log holds their answers) */
const lockCalls = (repoName: string, from: number, server: GitServer = srv) => server.requests.slice(from).filter((q) => q.path.startsWith(`/${repoName}/info/lfs/locks`));

describe('bump --server-lock auto (the default)', () => {
  for (const via of ['git', 'api'] as const) {
    it(`${via}: 4 bumps at once from "different hosts" (no shared lock file) take turns through the server: 4 commits, each writer's one lock and unlock, no lock left`, async () => {
      const r = configRepo(srv);
      gl.hooks.addProject({ path: r.name.replace(/\.git$/, ''), repo: r.name });
      const from = srv.requests.length;
      const N = 4;
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          runCli(['bump', '-v', '--via', via, '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${svc(i)}:build-${i}`], {
            env: jobEnv(srv, { CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PIPELINE_ID: String(900 + i), CI_COMMIT_SHA: String(i).padStart(40, 'c') }),
            timeoutMs: 120_000,
          }),
        ),
      );
      expect(results.filter((x) => x.code !== 0).map((f) => f.all).join('\n----\n')).toBe('');
      const images = readImages(show(r.path, `${PROD}/kustomization.yaml`), 'kustomization.yaml');
      for (let i = 0; i < N; i++) expect(images.find((e) => e.name === svc(i))?.newTag).toBe(`build-${i}`);
      expect(logOf(r.path, `${r.head}..main`)).toHaveLength(N);
      const calls = lockCalls(r.name, from);
      // every writer took the lock once (201) and gave it back once (200); the others were told 409 meanwhile
      expect(calls.filter((q) => q.path.endsWith('/locks') && q.status === 201)).toHaveLength(N);
      expect(calls.filter((q) => q.path.endsWith('/unlock') && q.status === 200)).toHaveLength(N);
      expect(calls.filter((q) => q.status === 409).length).toBeGreaterThan(0);
      for (const q of calls.filter((c) => c.status === 201)) expect((q.response as { lock: { path: string } }).lock.path).toBe(LOCK_PATH);
      // the turns: git holds the lock from the clone to the push, so every push landed at once; the API holds it from
      // after the first read, and a writer that waited reads the branch again, so only one that found it free may be refused
      const timings = results.map((x) => timingOf(x.stderr)!);
      for (const t of timings) {
        expect(t.attempts.at(-1)!.result).toBe('ok');
        if (t.wait || via === 'git') expect(t.attempts.map((a) => a.result)).toEqual(['ok']);
      }
      expect(results.filter((x) => /another writer holds the server's write-back lock for main of .*: waiting for its turn/.test(x.stderr)).length).toBeGreaterThan(0);
      for (const x of results) expect(x.stderr).not.toMatch(/re-applying on the new tip in \d+ ms|reading main again in \d+ ms/);
      expect((await lfs(r.name, '', undefined, me())).json.locks).toEqual([]);
      for (const x of results) for (const f of leakForms(srv.password, [srv.user])) expect(x.all).not.toContain(f);
    }, 150_000);
  }

  it('promote --via push takes the same lock (and gives it back)', async () => {
    const r = repoWithDigest(srv);
    const from = srv.requests.length;
    const res = await runCli(['promote', '--repo', r.url, '--branch', 'main', '--from', '.kubernetes/overlays/staging', '--to', PROD], { env: jobEnv(srv, { CI_PIPELINE_ID: '2101' }) });
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(`digest: ${DIGEST}`);
    const calls = lockCalls(r.name, from);
    expect(calls.map((q) => [q.path.replace(/.*\/locks/, ''), q.status])).toEqual([
      ['', 201],
      [expect.stringMatching(/^\/\d+\/unlock$/), 200],
    ]);
  });

  it('a lock its holder never gave back (killed) is broken after GITOPS_SERVER_LOCK_LEASE_S, with a warning, and the bump lands', async () => {
    const r = configRepo(srv);
    const left = await lfs(r.name, '', { path: LOCK_PATH }, me());
    expect(left.status).toBe(201);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:after-stale`], { env: jobEnv(srv, { GITOPS_SERVER_LOCK_LEASE_S: '1' }) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/the server's write-back lock for main of .* \(held by gituser\) has been held for over 1 s: breaking it/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "after-stale"');
    expect((await lfs(r.name, '', undefined, me())).json.locks).toEqual([]);
  });

  it("another user's stuck lock that this token may not break: the bump goes on without it (a race, correct) and leaves that lock alone", async () => {
    const r = configRepo(srv);
    const theirs = await lfs(r.name, '', { path: LOCK_PATH }, me());
    expect(theirs.status).toBe(201);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:without-lock`], {
      env: { GITOPS_GIT_USER: OTHER.user, GITOPS_GIT_TOKEN: OTHER.password, GITOPS_SERVER_LOCK_LEASE_S: '1' },
    });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('the stale write-back lock could not be broken (HTTP 403: You must have maintainer access to force delete a lock');
    expect(res.stderr).toMatch(/racing for main of .* without a lock/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "without-lock"');
    expect((await lfs(r.name, '', undefined, me())).json.locks.map((l: { id: string }) => l.id)).toEqual([theirs.json.lock.id]);
    for (const f of leakForms(OTHER.password, [OTHER.user])) expect(res.all).not.toContain(f);
  });

  it('a lock held past half of --timeout: the writer goes on without it rather than time out', async () => {
    const r = configRepo(srv);
    await lfs(r.name, '', { path: LOCK_PATH }, me());
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:half`, '--timeout', '4'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/waited \d+ s for the server's write-back lock \(half this command's time\): racing for main/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "half"');
  });

  it("GitLab's rate limit (429 with Retry-After): the writer looks again after the pause it was given, takes the lock, lands", async () => {
    const limited = await startGitServer({ lfsThrottle: 2 });
    try {
      const r = configRepo(limited);
      const res = await runCli(['bump', '-v', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:throttled`], { env: jobEnv(limited) });
      expect(res.code, res.all).toBe(0);
      expect(res.stderr).toMatch(/the locks API asks us to slow down \(HTTP 429\): next look in 1000 ms/);
      expect(res.stderr).not.toMatch(/without a lock/);
      const calls = lockCalls(r.name, 0, limited);
      expect(calls.map((q) => q.status)).toEqual([429, 429, 201, 200]);
      expect(lfsLogProblems(limited.requests)).toEqual([]);
      expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "throttled"');
    } finally {
      await limited.stop();
    }
  });

  it('with CI_JOB_TOKEN alone no lock is asked for (GitLab refuses a job token the locks API): the bump races, and lands', async () => {
    const r = configRepo(srv);
    const from = srv.requests.length;
    const res = await runCli(['bump', '-v', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:job-token`], { env: { CI_JOB_TOKEN: JOB_TOKEN } });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('GitLab lets no CI_JOB_TOKEN take an LFS lock (set GITOPS_GIT_TOKEN to take turns)');
    expect(lockCalls(r.name, from)).toEqual([]);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "job-token"');
    expect(res.all).not.toContain(JOB_TOKEN);
  });

  it('--server-lock off: no request to the locks API', async () => {
    const r = configRepo(srv);
    const from = srv.requests.length;
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:off`, '--server-lock', 'off'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(lockCalls(r.name, from)).toEqual([]);
  });

  it('--server-lock maybe: exit 2 before anything is cloned', async () => {
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`, '--server-lock', 'maybe'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('--server-lock must be auto or off (got "maybe")');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('GITOPS_SERVER_LOCK_LEASE_S=0: exit 2, naming the variable and its range', async () => {
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`], { env: jobEnv(srv, { GITOPS_SERVER_LOCK_LEASE_S: '0' }) });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('GITOPS_SERVER_LOCK_LEASE_S must be a whole number from 1 to 86400 (got "0")');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a job cancelled while it holds the lock gives it back (SIGTERM, as GitLab cancels a job)', async () => {
    const r = configRepo(srv);
    const gate = join(tmp('gci-slock-'), 'gate');
    // the server's pre-receive hook holds the push until the gate opens: the bump holds the lock meanwhile
    installHook(r.path, 'pre-receive', `while [ ! -e ${gate} ]; do sleep 0.05; done\nexit 1`);
    const from = srv.requests.length;
    const run = startCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:cancelled`], { env: jobEnv(srv) });
    try {
      await run.waitForStderr(/config repo .* at [0-9a-f]{12}/);
      expect((await lfs(r.name, '', undefined, me())).json.locks.map((l: { path: string }) => l.path)).toEqual([LOCK_PATH]);
      await new Promise((res) => setTimeout(res, 300));
      run.kill('SIGTERM');
      const res = await run.done;
      expect(res.code, res.all).toBe(143);
      expect(lockCalls(r.name, from).filter((q) => q.path.endsWith('/unlock')).map((q) => q.status)).toEqual([200]);
      expect((await lfs(r.name, '', undefined, me())).json.locks).toEqual([]);
      expect(headOf(r.path)).toBe(r.head);
    } finally {
      writeFileSync(gate, '');
    }
  });
});

describe('where the server offers no lock, the writer races (one line says why), and no secret is shown', () => {
  for (const mode of ['project-off', 'server-off'] as const) {
    it(`LFS ${mode === 'project-off' ? 'off for the project (403)' : 'off on the server (501)'}: 2 bumps at once both land`, async () => {
      const off = await startGitServer({ lfs: mode });
      try {
        const r = configRepo(off);
        const results = await Promise.all(
          Array.from({ length: 2 }, (_, i) =>
            runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${svc(i)}:race-${i}`], { env: jobEnv(off, { CI_PIPELINE_ID: String(950 + i) }), timeoutMs: 120_000 }),
          ),
        );
        expect(results.filter((x) => x.code !== 0).map((f) => f.all).join('\n----\n')).toBe('');
        expect(logOf(r.path, `${r.head}..main`)).toHaveLength(2);
        const why = mode === 'project-off' ? 'HTTP 403: Access forbidden. Check your access level.' : 'HTTP 501: Git LFS is not enabled on this GitLab server, contact your admin.';
        for (const x of results) {
          expect(x.stderr).toContain(`the config repo's server offers no write-back lock (Git LFS locks at ${r.url}/info/lfs/locks: ${why}): racing for main of ${r.url} without a lock`);
          for (const f of leakForms(off.password, [off.user])) expect(x.all).not.toContain(f);
        }
        expect(lfsLogProblems(off.requests)).toEqual([]);
      } finally {
        await off.stop();
      }
    }, 150_000);
  }

});
