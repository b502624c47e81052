/**
 * `--lock-file` (GITOPS_LOCK_FILE, src/writeback/lock.ts): writers on one host take turns from the read of the
 * branch to the push, through git and through GitLab's commits API, instead of racing for it. Real git server,
 * the GitLab double (answers checked against test/contracts/gitlab-api.json), real processes holding the lock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli } from '../helpers/cli.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { readImages } from '../../src/kustomize/edit.js';
import { configRepo, headOf, IMAGE, installHook, jobEnv, logOf, PROD, show, STAGING } from './fixture.js';
import { DIGEST, repoWithDigest } from '../promote/fixture.js';

let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();

beforeAll(async () => {
  srv = await startGitServer();
  gl = await startGitlabDouble({ git: srv, projects: [], onResponse: recorder.onResponse });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await srv?.stop();
});

/** the `bump timing {json}` line of a --verbose run */
const timingOf = (stderr: string) => JSON.parse(/bump timing (\{.*\})/.exec(stderr)?.[1] ?? 'null') as { attempts: Array<{ result: string }>; wait?: number } | null;
const svc = (i: number) => `registry.example.com/team/svc-${String(i).padStart(2, '0')}`;

/** a pid that ran on this host and is gone */
function deadPid(): number {
  const p = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(p.stdout.toString());
}

describe('bump --lock-file', () => {
  for (const via of ['git', 'api'] as const) {
    it(`${via}: 6 bumps at once on one branch take turns: 6 commits, every image in the file, no writer that waited refused (git: none refused), no backoff sleep, the lock removed`, async () => {
      const r = configRepo(srv);
      gl.hooks.addProject({ path: r.name.replace(/\.git$/, ''), repo: r.name });
      const lock = join(tmp('gci-lock-'), 'config.lock');
      const before = gl.requests.length;
      const N = 6;
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          runCli(['bump', '-v', '--via', via, '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${svc(i)}:build-${i}`], {
            // as a job sets it: the variable, not the flag
            env: jobEnv(srv, { GITOPS_LOCK_FILE: lock, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PIPELINE_ID: String(700 + i), CI_COMMIT_SHA: String(i).padStart(40, 'b') }),
            timeoutMs: 120_000,
          }),
        ),
      );
      expect(results.filter((x) => x.code !== 0).map((f) => f.all).join('\n----\n')).toBe('');
      const images = readImages(show(r.path, `${PROD}/kustomization.yaml`), 'kustomization.yaml');
      for (let i = 0; i < N; i++) expect(images.find((e) => e.name === svc(i))?.newTag).toBe(`build-${i}`);
      expect(logOf(r.path, `${r.head}..main`)).toHaveLength(N);
      // they took turns. git: each turn is a whole bump, from the clone to the push, so every writer read the branch
      // as the one before it had left it: every first push landed. api: the turn starts after the first read; a
      // writer that waited read the branch again after the one before it had written, so its first commit landed;
      // only a writer that found the lock free at its first look can be refused, once (its read came before a
      // neighbour's commit), and it then goes again at once: the writers behind it wait for it, so no backoff sleep.
      const timings = results.map((x) => timingOf(x.stderr)!);
      for (const t of timings) {
        expect(t.attempts.at(-1)!.result).toBe('ok');
        if (t.wait || via === 'git') expect(t.attempts.map((a) => a.result)).toEqual(['ok']);
        else expect(t.attempts.length).toBeLessThanOrEqual(2);
      }
      expect(timings.filter((t) => (t.wait ?? 0) > 0).length).toBeGreaterThanOrEqual(1);
      expect(results.filter((x) => /holds the write-back lock/.test(x.stderr)).length).toBeGreaterThanOrEqual(1);
      for (const x of results) expect(x.stderr).not.toMatch(via === 'git' ? /re-applying on the new tip in \d+ ms/ : /reading main again in \d+ ms/);
      if (via === 'api') {
        const commits = gl.requests.slice(before).filter((q) => q.method === 'POST' && q.path.includes('/repository/commits'));
        expect(commits.filter((q) => q.status === 201)).toHaveLength(N);
        expect(commits.filter((q) => q.status !== 201).length).toBeLessThanOrEqual(timings.filter((t) => !t.wait).length);
      }
      expect(existsSync(lock)).toBe(false);
    }, 150_000);
  }

  it('a lock left by a process of this host that is gone is broken (with a warning), and the bump lands', async () => {
    const r = configRepo(srv);
    const lock = join(tmp('gci-lock-'), 'config.lock');
    writeFileSync(lock, `${deadPid()} ${hostname()} leftover ${Date.now()}\n`);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:after-stale`, '--lock-file', lock], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain(`the write-back lock ${lock} was left by a writer that is gone: removing it`);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "after-stale"');
    expect(existsSync(lock)).toBe(false);
  });

  it("another host's lock is broken only once it is older than --timeout", async () => {
    const r = configRepo(srv);
    const lock = join(tmp('gci-lock-'), 'config.lock');
    writeFileSync(lock, `4242 runner-elsewhere tok ${Date.now()}\n`);
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(lock, old, old);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:after-old`, '--lock-file', lock, '--timeout', '120'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('was left by a writer that is gone');
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "after-old"');
    expect(existsSync(lock)).toBe(false);
  });

  it('a lock held by a live writer to the end of --timeout: exit 4, EWRITEBACK_LOCK_TIMEOUT, the branch and the holder\'s lock untouched', async () => {
    const r = configRepo(srv);
    const lock = join(tmp('gci-lock-'), 'config.lock');
    // a live process of this host holds it (a fresh lock: too young to be taken for stale)
    const holder = spawn('sleep', ['60']);
    try {
      const held = `${holder.pid} ${hostname()} holder ${Date.now()}\n`;
      writeFileSync(lock, held);
      const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:never`, '--lock-file', lock, '--timeout', '3'], { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(4);
      expect(res.stderr).toContain('EWRITEBACK_LOCK_TIMEOUT');
      expect(res.stderr).toContain(`out of time waiting for the write-back lock ${lock}`);
      expect(res.stderr).toContain('nothing was changed');
      // the turn begins before the clone: nothing was cloned while waiting
      expect(res.stderr).not.toMatch(/config repo .* at [0-9a-f]{12}/);
      expect(headOf(r.path)).toBe(r.head);
      expect(readFileSync(lock, 'utf8')).toBe(held);
    } finally {
      holder.kill();
    }
  });

  it('promote --via push takes the same lock: held by a live writer, exit 4 with nothing pushed; left by a dead one, it lands', async () => {
    const r = repoWithDigest(srv);
    const lock = join(tmp('gci-lock-'), 'config.lock');
    const promote = (timeout: string) =>
      runCli(['promote', '--repo', r.url, '--branch', 'main', '--from', STAGING, '--to', PROD, '--timeout', timeout], { env: jobEnv(srv, { GITOPS_LOCK_FILE: lock, CI_PIPELINE_ID: '2001' }) });
    const holder = spawn('sleep', ['60']);
    try {
      writeFileSync(lock, `${holder.pid} ${hostname()} holder ${Date.now()}\n`);
      const held = await promote('3');
      expect(held.code, held.all).toBe(4);
      expect(held.stderr).toContain('EWRITEBACK_LOCK_TIMEOUT');
      expect(headOf(r.path)).toBe(r.head);
    } finally {
      holder.kill();
    }
    writeFileSync(lock, `${deadPid()} ${hostname()} gone ${Date.now()}\n`);
    const res = await promote('120');
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('was left by a writer that is gone');
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(`digest: ${DIGEST}`);
    expect(existsSync(lock)).toBe(false);
  });

  it('--lock-file in a directory that does not exist: exit 2 before anything is cloned', async () => {
    const r = configRepo(srv);
    const missing = join(tmp('gci-lock-'), 'no', 'such', 'dir', 'config.lock');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`, '--lock-file', missing], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain(`--lock-file ${missing}: the directory ${join(missing, '..')} does not exist`);
    expect(res.stderr).not.toMatch(/git clone|config repo .* at [0-9a-f]{12}/);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a job cancelled while it holds the lock removes it (SIGTERM, as GitLab cancels a job); the branch stays as it was', async () => {
    const r = configRepo(srv);
    const dir = tmp('gci-lock-');
    const lock = join(dir, 'config.lock');
    // the server's pre-receive hook holds the push until the gate opens: the bump holds the lock meanwhile
    const gate = join(dir, 'gate');
    installHook(r.path, 'pre-receive', `while [ ! -e ${gate} ]; do sleep 0.05; done\nexit 1`);
    const run = startCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:cancelled`, '--lock-file', lock], { env: jobEnv(srv) });
    try {
      await run.waitForStderr(/config repo .* at [0-9a-f]{12}/);
      for (let i = 0; i < 200 && !existsSync(lock); i++) await new Promise((res) => setTimeout(res, 25));
      expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^\\d+ ${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\S+ \\d+\n$`));
      // the push is under way (held by the hook)
      await new Promise((res) => setTimeout(res, 300));
      run.kill('SIGTERM');
      const res = await run.done;
      expect(res.code, res.all).toBe(143);
      expect(existsSync(lock)).toBe(false);
      expect(headOf(r.path)).toBe(r.head);
    } finally {
      writeFileSync(gate, '');
    }
  });
});
