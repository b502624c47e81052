/**
 * Credentials of bump: tokens in the URL or the environment, a deploy key over ssh. Each secret path makes a
 * real call fail and asserts the secret is absent from stdout and stderr (raw, URL-encoded, base64), from the
 * clone's config and from the commit; ssh never trusts an unknown host key unless told to.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { startGitServer, startSshd, tmp, type GitServer, type SshServer } from '../helpers/services.js';
import { configRepo, headOf, IMAGE, installHook, leakForms, PROD, show } from './fixture.js';

// characters that URL-encoding and base64 both change
const TOKEN = `glpat-Zx9+/tok=en%${Math.random().toString(36).slice(2, 10)}`;
const USER = 'project_42_bot';

let srv: GitServer;
beforeAll(async () => {
  srv = await startGitServer({ user: USER, password: TOKEN, users: { 'gitlab-ci-token': `${TOKEN}-job`, reporter_bot: `${TOKEN}-ro` }, readOnlyUsers: ['reporter_bot'] });
});
afterAll(() => srv?.stop());

function expectNoLeak(text: string, secret: string, users: string[]): void {
  for (const f of leakForms(secret, users)) expect(text.includes(f), `leaked as ${JSON.stringify(f)}`).toBe(false);
}

describe('https tokens', () => {
  it('credentials in the URL: a refused push shows no trace of the token, and the clone keeps none', async () => {
    const r = configRepo(srv);
    installHook(r.path, 'pre-receive', `echo "rejected by policy" >&2; exit 1`);
    const work = join(tmp(), 'clone');
    const res = await runCli(['bump', '--repo', r.authUrl, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:leak`, '--workdir', work, '-v'], { env: {} });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EGIT_PUSH_REJECTED');
    expectNoLeak(res.all, TOKEN, [USER]);
    expect(readFileSync(join(work, '.git/config'), 'utf8')).not.toContain(TOKEN.slice(0, 12));
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a token that may read but not push (GitLab answers 403): exit 3 with what to do, remote untouched, token hidden', async () => {
    const r = configRepo(srv);
    const ro = `${TOKEN}-ro`;
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:ro`], { env: { GITOPS_GIT_USER: 'reporter_bot', GITOPS_GIT_TOKEN: ro } });
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGIT_AUTH');
    expect(res.stderr).toContain('not allowed to push');
    expect(res.stderr).toMatch(/what to do: .*write_repository/);
    expectNoLeak(res.all, ro, ['reporter_bot']);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a token from the environment (GITOPS_GIT_TOKEN): a failed push and a failed auth leak nothing', async () => {
    const r = configRepo(srv);
    installHook(r.path, 'pre-receive', 'exit 1');
    const env = { GITOPS_GIT_USER: USER, GITOPS_GIT_TOKEN: TOKEN, GIT_TRACE: '1', GIT_CURL_VERBOSE: '1', GIT_TRACE_CURL: '1' };
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:leak`, '-v'], { env });
    expect(res.code, res.all).toBe(1);
    expectNoLeak(res.all, TOKEN, [USER]);
    const bad = `${TOKEN}-wrong`;
    const res2 = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:leak`, '-v'], { env: { ...env, GITOPS_GIT_TOKEN: bad } });
    expect(res2.code, res2.all).toBe(3);
    expectNoLeak(res2.all, bad, [USER]);
  });

  it('CI_JOB_TOKEN goes as gitlab-ci-token, only to the GitLab that issued it, and lands nowhere', async () => {
    const r = configRepo(srv);
    const job = `${TOKEN}-job`;
    const ok = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:jobtoken`, '-v'], { env: { CI_JOB_TOKEN: job, CI_SERVER_HOST: '127.0.0.1' } });
    expect(ok.code, ok.all).toBe(0);
    expectNoLeak(ok.all, job, ['gitlab-ci-token']);
    const msg = execFileSync('git', ['-C', r.path, 'log', '-1', '--format=%B', 'main']).toString();
    expectNoLeak(msg, job, ['gitlab-ci-token']);
    // another host: the job token is not offered, so the clone is refused (exit 3), token unseen
    const other = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`], { env: { CI_JOB_TOKEN: job, CI_SERVER_HOST: 'gitlab.example.com' } });
    expect(other.code, other.all).toBe(3);
    expectNoLeak(other.all, job, ['gitlab-ci-token']);
  });

  it('in a GitLab job: repo from CI_REPOSITORY_URL (job token inside), branch from CI_DEFAULT_BRANCH', async () => {
    const r = configRepo(srv);
    const job = `${TOKEN}-job`;
    const repoUrl = r.url.replace('http://', `http://gitlab-ci-token:${encodeURIComponent(job)}@`);
    const res = await runCli(['bump', '--dir', PROD, '--image', `${IMAGE}:ci-defaults`], { env: { CI_REPOSITORY_URL: repoUrl, CI_DEFAULT_BRANCH: 'main', CI_JOB_TOKEN: job, GITLAB_CI: 'true' } });
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "ci-defaults"');
    expect(res.stderr).toContain('section_start:'); // git's output folded in a collapsible section
    expectNoLeak(res.all, job, ['gitlab-ci-token']);
  });

  it('the token never appears on a child process command line', async () => {
    // the credential helper's text names env vars only; check the argv git sees via a wrapper on PATH
    const bin = tmp();
    const argvLog = join(bin, 'argv.log');
    const realGit = execFileSync('sh', ['-c', 'command -v git']).toString().trim();
    execFileSync('sh', ['-c', `printf '#!/bin/sh\\nprintf "%%s\\\\n" "$*" >> ${argvLog}\\nenv | grep ^GIT_CONFIG_VALUE >> ${argvLog}\\nexec ${realGit} "$@"\\n' > ${bin}/git && chmod +x ${bin}/git`]);
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.authUrl, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:argv`], { env: { PATH: `${bin}:${process.env.PATH}` } });
    expect(res.code, res.all).toBe(0);
    const seen = readFileSync(argvLog, 'utf8');
    expect(seen).toContain('clone');
    expectNoLeak(seen, TOKEN, [USER]);
  });
});

describe('ssh deploy key', () => {
  let ssh: SshServer;
  beforeAll(async () => {
    ssh = await startSshd();
  });
  afterAll(() => ssh?.stop());

  it('pushes with SSH_PRIVATE_KEY and SSH_KNOWN_HOSTS; the key file is gone afterwards and the key never shown', async () => {
    const bare = bareRepo(seedLayout(IMAGE));
    const before = headOf(bare);
    const tmpBefore = execFileSync('sh', ['-c', 'ls -d /tmp/gitops-ci-ssh-* 2>/dev/null | wc -l']).toString().trim();
    const res = await runCli(['bump', '--repo', ssh.url(bare), '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:ssh1`, '-v'], {
      env: { SSH_PRIVATE_KEY: ssh.privateKey.trim(), SSH_KNOWN_HOSTS: ssh.knownHosts },
    });
    expect(res.code, res.all).toBe(0);
    expect(headOf(bare)).not.toBe(before);
    expect(show(bare, `${PROD}/kustomization.yaml`)).toContain('newTag: "ssh1"');
    const keyBody = ssh.privateKey.split('\n')[1]!;
    expect(res.all).not.toContain(keyBody);
    expect(execFileSync('sh', ['-c', 'ls -d /tmp/gitops-ci-ssh-* 2>/dev/null | wc -l']).toString().trim()).toBe(tmpBefore);
  });

  it('refuses an unknown host key (exit 3) unless --ssh-accept-new', async () => {
    const bare = bareRepo(seedLayout(IMAGE));
    const home = tmp(); // an empty HOME: no known_hosts of the user
    const res = await runCli(['bump', '--repo', ssh.url(bare), '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:ssh2`], { env: { HOME: home, SSH_PRIVATE_KEY: ssh.privateKey } });
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGIT_HOST_KEY');
    const ok = await runCli(['bump', '--repo', ssh.url(bare), '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:ssh2`, '--ssh-accept-new'], { env: { HOME: home, SSH_PRIVATE_KEY: ssh.privateKey } });
    expect(ok.code, ok.all).toBe(0);
    expect(show(bare, `${PROD}/kustomization.yaml`)).toContain('newTag: "ssh2"');
  });
});
