/**
 * A hostile audit of failure paths and bad input (the cases no other file covers): each failure is a catalogued
 * error with what / where / what to do and the exit code of its class, and leaves files, branches, images and
 * remote state as they were.
 *
 * - GITOPS_RETRY_ATTEMPTS out of range: the registry client gave up before its first request with a transient
 *   75 ("after -1 attempts"), which the templates retry; GitLab's client took it silently. Now a usage error (2)
 *   before anything is read or written.
 * - a file that is not UTF-8 (a Latin-1 comment): read with replacement characters, it was written back with
 *   them by pin, set-image and the write-back (bump), changing bytes that no edit touched. Now refused (2),
 *   naming the file, line and column of the first bad byte.
 * - rollback --to 0: passed the flag checks, then failed (1) after the clone and Argo CD reads as "goes further
 *   back". Now a usage error up front.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { git, seedBare } from '../helpers/config-repo.js';
import { startGitServer, startRegistry, tmp, type GitServer, type Registry } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { configRepo, headOf, jobEnv, PROD } from '../bump/fixture.js';
import { IMAGE, layout, manifestDigest, pushTinyImage, STAGING } from '../promote/fixture.js';

/** a Latin-1 comment: é is the single byte 0xE9, which is not UTF-8 */
const LATIN1 = Buffer.from('# propri\xe9taire: ne pas modifier\n', 'latin1');

let srv: GitServer;
let reg: Registry;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();

beforeAll(async () => {
  srv = await startGitServer();
  reg = await startRegistry();
  srv.createRepo('group/retry.git');
  gl = await startGitlabDouble({
    git: srv,
    projects: [{ path: 'group/retry', repo: 'group/retry.git', id: 901 }],
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }],
    onResponse: recorder.onResponse,
  });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await reg?.stop();
  await srv?.stop();
});

const expectRefusal = (r: { code: number; stderr: string }, code: string, exit: number, where: string | RegExp) => {
  expect(r.code, r.stderr).toBe(exit);
  expect(r.stderr).toContain(`code: ${code} (exit ${exit})`);
  expect(r.stderr).toMatch(typeof where === 'string' ? new RegExp(`where: ${where.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) : where);
  expect(r.stderr).toMatch(/what to do: \S/);
  expect(r.stderr).not.toMatch(/internal error|    at /);
};

describe('GITOPS_RETRY_ATTEMPTS that no client can use is a usage error, before any request', () => {
  it('image copy: -1, 0, a fraction, a word or too many attempts exit 2 and push nothing; 1 copies', async () => {
    await pushTinyImage(reg, 'audit/app', '1');
    const env = (v: string) => ({ CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: reg.password, GITOPS_RETRY_ATTEMPTS: v });
    const args = ['image', 'copy', `${reg.host}/audit/app:1`, `${reg.host}/audit/app:prod`];
    for (const v of ['-1', '0', '2.5', 'three', '1e1', '21']) {
      const r = await runCli(args, { env: env(v) });
      expectRefusal(r, 'EENV_NUMBER', 2, 'environment variable GITOPS_RETRY_ATTEMPTS');
      expect(r.stderr).toContain(`GITOPS_RETRY_ATTEMPTS must be a whole number from 1 to 20 (got ${JSON.stringify(v)})`);
      expect(r.stderr).not.toContain('EREGISTRY_NETWORK');
      expect(await manifestDigest(reg, 'audit/app', 'prod')).toBeUndefined();
    }
    const ok = await runCli(args, { env: env('1') });
    expect(ok.code, ok.all).toBe(0);
    expect(await manifestDigest(reg, 'audit/app', 'prod')).toBe(await manifestDigest(reg, 'audit/app', '1'));
  });

  it('promote --via mr: exit 2 before GitLab is asked or a branch is pushed', async () => {
    const head = seedBare(srv.repoPath('group/retry.git'), layout(), { message: 'initial config' });
    const asked = gl.requests.length;
    const pushesBefore = srv.requests.filter((q) => q.method === 'POST' && q.path.endsWith('git-receive-pack')).length;
    const r = await runCli(['promote', '--repo', `${srv.url}/group/retry.git`, '--branch', 'main', '--from', STAGING, '--to', PROD, '--via', 'mr'], {
      env: { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, GITOPS_RETRY_ATTEMPTS: '-1' },
    });
    expectRefusal(r, 'EENV_NUMBER', 2, 'environment variable GITOPS_RETRY_ATTEMPTS');
    expect(gl.requests.length).toBe(asked);
    expect(srv.requests.filter((q) => q.method === 'POST' && q.path.endsWith('git-receive-pack')).length).toBe(pushesBefore);
    expect(gl.hooks.branchSha('group/retry', 'gitops-ci/promote/production')).toBeUndefined();
    expect(gl.hooks.branchSha('group/retry', 'main')).toBe(head);
    expect(gl.hooks.mergeRequests('group/retry')).toHaveLength(0);
    for (const s of [gl.token, srv.password]) expect(r.stderr).not.toContain(s);
  });
});
