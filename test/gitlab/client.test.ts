/**
 * The GitLab connection and client: config resolution (flags over CI_* variables, empty = unset, project
 * from the repo URL, job-token-only refusal), error mapping of real failing calls against the double
 * (401/403/404/5xx), the token absent from errors (message, hint, cause, the whole object graph), and
 * retries that never repeat a POST.
 */
import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GitopsError } from '../../src/core/errors.js';
import { clearSecrets, mask } from '../../src/core/mask.js';
import { gitlabClient } from '../../src/gitlab/client.js';
import { gitlabConnectionOptions, normalizeApiUrl, projectPathFromRepoUrl, resolveGitlabConfig } from '../../src/gitlab/config.js';
import { upsertMergeRequest } from '../../src/gitlab/mr.js';
import { startGitlabDouble } from '../doubles/gitlab/server.js';
import { PROJECT, useGitlab } from './fixture.js';
import { rejected, thrown } from '../helpers/failure.js';


/** the secret in none of its forms anywhere in the error's object graph */
function expectNoSecret(e: unknown, secret: string) {
  const text = inspect(e, { depth: Infinity, showHidden: true }) + JSON.stringify(e) + String((e as Error).message) + String((e as GitopsError).hint) + String((e as GitopsError).where);
  for (const form of [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')]) expect(text).not.toContain(form);
}

describe('resolveGitlabConfig', () => {
  const TOKEN = 'glpat-config-test-0123456789';
  it('takes the server from CI_API_V4_URL or CI_SERVER_URL; the flag wins; empty values are unset', () => {
    expect(resolveGitlabConfig({ CI_SERVER_URL: 'https://gl.example.com/', GITOPS_GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '7' }, {})).toMatchObject({ apiUrl: 'https://gl.example.com/api/v4', project: 7, token: TOKEN, tokenSource: 'GITOPS_GITLAB_TOKEN' });
    expect(resolveGitlabConfig({ CI_API_V4_URL: 'https://gl.example.com/gitlab/api/v4', CI_SERVER_URL: 'https://other', GITOPS_GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '7' }, {}).apiUrl).toBe('https://gl.example.com/gitlab/api/v4');
    expect(resolveGitlabConfig({ CI_API_V4_URL: 'https://a.example.com/api/v4', GITOPS_GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '7' }, { 'gitlab-url': 'https://b.example.com', project: 'g/p' })).toMatchObject({ apiUrl: 'https://b.example.com/api/v4', project: 'g/p' });
    expect(resolveGitlabConfig({ CI_API_V4_URL: '', CI_SERVER_URL: 'https://c.example.com', GITOPS_GITLAB_TOKEN: '  ', GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '9' }, { project: '' })).toMatchObject({ apiUrl: 'https://c.example.com/api/v4', project: 9, tokenSource: 'GITLAB_TOKEN' });
  });

  it('derives the project from the config repo URL, credentials never shown; CI_PROJECT_ID when it is the same project', () => {
    const env = { CI_SERVER_URL: 'https://gl.example.com', GITOPS_GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '5', CI_PROJECT_PATH: 'app/web' };
    expect(resolveGitlabConfig(env, {}, { repoUrl: 'https://oauth2:s3cr3t-pw@gl.example.com/platform/config.git' }).project).toBe('platform/config');
    expect(resolveGitlabConfig(env, {}, { repoUrl: 'https://gl.example.com/app/web.git' }).project).toBe(5);
    expect(resolveGitlabConfig(env, { project: '12' }, { repoUrl: 'https://gl.example.com/platform/config.git' }).project).toBe(12);
    expect(projectPathFromRepoUrl('git@gl.example.com:group/sub/config.git')).toBe('group/sub/config');
    expect(projectPathFromRepoUrl('ssh://git@gl.example.com:2222/group/config.git')).toBe('group/sub/config'.replace('/sub', ''));
    expect(projectPathFromRepoUrl('https://gl.example.com/gitlab/group/config.git', 'https://gl.example.com/gitlab/api/v4')).toBe('group/config');
    expect(projectPathFromRepoUrl('/srv/git/config.git')).toBeUndefined();
    const e = thrown(() => resolveGitlabConfig({ CI_SERVER_URL: 'https://gl.example.com', GITOPS_GITLAB_TOKEN: TOKEN }, {}, { repoUrl: 'https://user:hunter2-secret@gl.example.com/config.git' }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('--project');
    expect(e.message).not.toContain('hunter2-secret');
  });

  it('refuses a job token alone with what to do (exit 3), and reports every problem at once (exit 2)', () => {
    const e = thrown(() => resolveGitlabConfig({ CI_SERVER_URL: 'https://gl.example.com', CI_PROJECT_ID: '1', CI_JOB_TOKEN: 'glcbt-job-token-value' }, {}));
    expect(e.code).toBe('EGITLAB_JOB_TOKEN');
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/CI_JOB_TOKEN|job token/);
    expect(e.message).toMatch(/merge requests/);
    expect(e.hint).toMatch(/GITOPS_GITLAB_TOKEN/);
    expect(e.hint).toMatch(/api/);
    expect(mask('x glcbt-job-token-value y')).not.toContain('glcbt-job-token-value');

    const all = thrown(() => resolveGitlabConfig({}, { 'gitlab-ca-file': '/nonexistent/ca.pem' }));
    expect(all.code).toBe('EGITLAB_CONFIG');
    expect(all.exitCode).toBe(2);
    expect(all.details?.join('\n')).toMatch(/server[\s\S]*project[\s\S]*CA file[\s\S]*GITOPS_GITLAB_TOKEN/);
    expect(thrown(() => normalizeApiUrl('https://u:p@gl.example.com')).message).toMatch(/credentials/);
  });

  it('can take the project from another flag (for commands whose --project is Argo CD\'s)', () => {
    expect(Object.keys(gitlabConnectionOptions('gitlab-project'))).toEqual(['gitlab-url', 'gitlab-ca-file', 'gitlab-insecure', 'gitlab-project']);
    const c = resolveGitlabConfig({ CI_SERVER_URL: 'https://gl.example.com', GITOPS_GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '1' }, { project: 'argo-proj', 'gitlab-project': 'platform/config' }, { projectKey: 'gitlab-project' });
    expect(c.project).toBe('platform/config');
  });

  it('reads TLS options like the other commands', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gl-ca-'));
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    const c = resolveGitlabConfig({ CI_SERVER_URL: 'https://gl.example.com', GITOPS_GITLAB_TOKEN: TOKEN, CI_PROJECT_ID: '1', CI_SERVER_TLS_CA_FILE: join(dir, 'ca.pem'), GITOPS_GITLAB_INSECURE: 'true' }, {});
    expect(c.caFile).toBe(join(dir, 'ca.pem'));
    expect(c.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(c.insecure).toBe(true);
  });
});

describe('client against the double', () => {
  const fx = useGitlab();

  it('401 for a bad token: exit 3, and the token is nowhere in the error (raw, url-encoded, base64)', async () => {
    const bad = 'glpat-this-is-a-wrong-token-42';
    clearSecrets();
    const gl = gitlabClient(resolveGitlabConfig({ ...fx.env, GITOPS_GITLAB_TOKEN: bad }, {}), { attempts: 1 });
    const e = await rejected(gl.approvals(PROJECT, 1));
    expect(e.code).toBe('EGITLAB_AUTH');
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/401/);
    expect(e.hint).toMatch(/GITOPS_GITLAB_TOKEN/);
    expectNoSecret(e, bad);
    // a revoked token too
    fx.gl.hooks.revoke(fx.gl.tokenOf('erin'));
    const r = await rejected(fx.client('erin', { attempts: 1 }).currentUser());
    expect(r.exitCode).toBe(3);
    expect(r.message).toMatch(/revoked/);
    expectNoSecret(r, fx.gl.tokenOf('erin'));
  });

  it('403 for a token without scope api, with the scope in the hint', async () => {
    const gl = gitlabClient(resolveGitlabConfig({ ...fx.env, GITOPS_GITLAB_TOKEN: fx.gl.readApiToken }, {}), { attempts: 1 });
    fx.gl.hooks.push(PROJECT, 'feature/scope', { files: { 'a.txt': 'a\n' } });
    const e = await rejected(upsertMergeRequest(gl, { project: PROJECT, sourceBranch: 'feature/scope', targetBranch: 'main', title: 't', description: 'd' }));
    expect(e.code).toBe('EGITLAB_AUTH');
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/insufficient_scope/);
    expect(e.hint).toMatch(/scope `api`/);
    expectNoSecret(e, fx.gl.readApiToken);
    // a Reporter may read but not write
    const rita = await rejected(fx.client('rita', { attempts: 1 }).createMergeRequest(PROJECT, { sourceBranch: 'feature/scope', targetBranch: 'main', title: 't' }));
    expect(rita.exitCode).toBe(3);
    expect(rita.hint).toMatch(/Developer/);
  });

  it('404 names the project or the MR', async () => {
    const gl = fx.client();
    const p = await rejected(gl.getMergeRequest('group/nope', 1));
    expect(p.code).toBe('EGITLAB_NOT_FOUND');
    expect(p.exitCode).toBe(1);
    expect(p.message).toContain('!1 of project group/nope');
    expect(p.message).toContain('404 Project Not Found');
    const m = await rejected(gl.getMergeRequest(PROJECT, 999));
    expect(m.message).toContain('merge request !999 of project group/config not found');
  });

  it('retries a GET after a 5xx, but never repeats a POST that may have been applied (502 → exit 75, no duplicate)', async () => {
    const gl = fx.client(undefined, { attempts: 3, backoffMs: 5 });
    fx.gl.hooks.failNext({ method: 'GET', route: 'GET /projects/:id', status: 503, times: 2 });
    expect((await gl.getProject(PROJECT)).pathWithNamespace).toBe(PROJECT);

    fx.gl.hooks.push(PROJECT, 'feature/retry', { files: { 'r.txt': 'r\n' } });
    const before = fx.gl.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/merge_requests')).length;
    fx.gl.hooks.failNext({ route: 'POST /projects/:id/merge_requests', status: 502 });
    const e = await rejected(gl.createMergeRequest(PROJECT, { sourceBranch: 'feature/retry', targetBranch: 'main', title: 't' }));
    expect(e.code).toBe('EGITLAB_UNAVAILABLE');
    expect(e.exitCode).toBe(75);
    expect(fx.gl.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/merge_requests')).length).toBe(before + 1);

    // 429 is refused before processing: retried, exactly one MR
    fx.gl.hooks.failNext({ route: 'POST /projects/:id/merge_requests', status: 429 });
    const mr = await gl.createMergeRequest(PROJECT, { sourceBranch: 'feature/retry', targetBranch: 'main', title: 't' });
    expect(fx.gl.hooks.mergeRequests(PROJECT).filter((m) => m.source_branch === 'feature/retry')).toHaveLength(1);
    expect(mr.sourceBranch).toBe('feature/retry');
  });

  it("stock gitbeaker would leak the token through its error's cause; ours carries none (same failing call)", async () => {
    const bad = 'glpat-stock-gitbeaker-leak-test';
    const { Gitlab } = await import('@gitbeaker/rest');
    const stock = new Gitlab({ host: fx.gl.url, token: bad });
    let stockErr: unknown;
    try {
      await stock.MergeRequestApprovals.showConfiguration(PROJECT, { mergerequestIId: 1 });
    } catch (e) {
      stockErr = e;
    }
    // the reason for our own transport: the Request in `cause` holds the PRIVATE-TOKEN header
    expect((stockErr as { cause?: { request?: Request } }).cause?.request?.headers.get('private-token')).toBe(bad);
    const ours = await rejected(gitlabClient(resolveGitlabConfig({ ...fx.env, GITOPS_GITLAB_TOKEN: bad }, {}), { attempts: 1 }).approvals(PROJECT, 1));
    expect(ours.exitCode).toBe(3);
    expectNoSecret(ours, bad);
  });

  it('TLS: a CA file verifies the server; without it EGITLAB_TLS (exit 2); --gitlab-insecure skips verification', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gl-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
    const tls = await startGitlabDouble({ git: fx.git, projects: [{ path: PROJECT, repo: 'group/config.git', id: 42 }], tls: { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') }, onResponse: fx.recorder.onResponse });
    try {
      const env = { CI_API_V4_URL: tls.apiUrl, GITOPS_GITLAB_TOKEN: tls.token, CI_PROJECT_ID: '42' };
      expect((await gitlabClient(resolveGitlabConfig(env, { 'gitlab-ca-file': join(dir, 'c.pem') }), { attempts: 1 }).currentUser()).username).toBe('gitops-bot');
      const e = await rejected(gitlabClient(resolveGitlabConfig(env, {}), { attempts: 1 }).currentUser());
      expect(e.code).toBe('EGITLAB_TLS');
      expect(e.exitCode).toBe(2);
      expect(e.hint).toMatch(/--gitlab-ca-file/);
      expect((await gitlabClient(resolveGitlabConfig({ ...env, GITOPS_GITLAB_INSECURE: 'true' }, {}), { attempts: 1 }).currentUser()).username).toBe('gitops-bot');
    } finally {
      await tls.stop();
    }
  });

  it('an unreachable server is transient (75) and names the URL without credentials', async () => {
    const gl = gitlabClient(resolveGitlabConfig({ CI_API_V4_URL: 'http://127.0.0.1:9/api/v4', GITOPS_GITLAB_TOKEN: 'glpat-unreachable-token-1', CI_PROJECT_ID: '1' }, {}), { attempts: 1 });
    const e = await rejected(gl.currentUser());
    expect(e.exitCode).toBe(75);
    expect(e.where).toContain('127.0.0.1:9');
    expectNoSecret(e, 'glpat-unreachable-token-1');
  });

  it("an administrator's search is matched whole: the user with the email is found past 20 other hits", async () => {
    // GitLab's search also matches names; an administrator's answer carries every user's email, so the exact match
    // can come after many name hits (it was cut at 20 before matching, so a committer went unrecognised)
    const decoys = Array.from({ length: 25 }, (_, i) => ({ username: `decoy${i}`, name: `Mail target@example.com ${i}`, publicEmail: null }));
    const gl = await startGitlabDouble({ git: fx.git, projects: [], onResponse: fx.recorder.onResponse, users: [{ username: 'admin-bot', admin: true }, ...decoys, { username: 'target', publicEmail: null }] });
    try {
      const client = gitlabClient({ apiUrl: gl.apiUrl, token: gl.tokenOf('admin-bot'), tokenSource: 'test', project: 1 }, {});
      const found = await client.usersByEmail('target@example.com');
      expect(found.map((u) => u.username)).toEqual(['target']);
      client.close();
    } finally {
      await gl.stop();
    }
  });
});
