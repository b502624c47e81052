/**
 * gitops-ci promote --via api: the promotion committed to BRANCH through GitLab's commits API (src/writeback/api.ts,
 * through bump's plan), against the real git server behind the GitLab double (every answer checked against
 * test/contracts/gitlab-api.json). The same commit as --via push: message, source trailers, one commit, a re-run
 * is a no-op; a token that may not write fails with exit 3 and the branch as it was.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { pushTree } from '../helpers/config-repo.js';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { configRepo, headOf, jobEnv, leakForms, logOf, show } from '../bump/fixture.js';
import { DIGEST, IMAGE, PROD, STAGING, layout, messageOf, withImages, repoWithDigest as sharedRepoWithDigest } from './fixture.js';
import { setup, stopFixtures } from '../argocd/fixture.js';

let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
beforeAll(async () => {
  srv = await startGitServer();
  gl = await startGitlabDouble({ git: srv, projects: [], users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }, { username: 'reporter', accessLevel: 20 }], onResponse: recorder.onResponse });
});
afterEach(() => stopFixtures());
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await srv?.stop();
});

const CI = { CI_PROJECT_PATH: 'shovel/config', CI_PIPELINE_ID: '2001', CI_JOB_URL: 'https://gitlab.example.com/shovel/config/-/jobs/9001' };

function repoWithDigest() {
  const r = sharedRepoWithDigest(srv);
  gl.hooks.addProject({ path: r.name.replace(/\.git$/, ''), repo: r.name });
  return r;
}

const args = (url: string, ...more: string[]) => ['promote', '--repo', url, '--branch', 'main', '--from', STAGING, '--to', PROD, ...more];
const env = (extra: NodeJS.ProcessEnv = {}) => jobEnv(srv, { ...CI, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, ...extra });

describe('promote --via api', () => {
  it('commits the staging digest to production through the API, with the source trailers; a re-run is a no-op', async () => {
    const r = repoWithDigest();
    const res = await runCli(args(r.url, '--via', 'api'), { env: env() });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/write-back via api/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(`digest: ${DIGEST}`);
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
    const msg = messageOf(r.path);
    expect(msg.split('\n')[0]).toBe(`[skip ci] promote shovel-gitops:${DIGEST.slice(0, 19)} from staging to production`);
    expect(msg).toContain(`Gitops-Promoted-From: ${STAGING}`);
    expect(msg).toContain(`Gitops-Promoted-From-Commit: ${r.head}`);
    // the staging commit's pipeline is not one the GitLab double knows: with a token, its provenance is not trusted
    // (src/bump/guard.ts verifyProvenance), so the promote job's own pipeline is recorded
    expect(msg).toContain('Gitops-Pipeline-Id: 2001');
    const head = headOf(r.path);
    const again = await runCli(args(r.url, '--via', 'api'), { env: env() });
    expect(again.code, again.all).toBe(0);
    expect(headOf(r.path)).toBe(head);
  });

  it('reads the source through the API as well: no clone, no git request at all; its provenance trusted from the token user\'s API commits', async () => {
    const r = repoWithDigest();
    // a bump through the API: GitLab commits it as the token's user, which the source read trusts beside the write-back identity
    const bumped = `${IMAGE}@sha256:${'9a'.repeat(32)}`;
    const b = await runCli(['bump', '--via', 'api', '--repo', r.url, '--branch', 'main', '--dir', STAGING, '--image', bumped], { env: env({ CI_PIPELINE_ID: '1990', CI_PROJECT_PATH: 'shovel/app', CI_COMMIT_SHA: 'd'.repeat(40) }) });
    expect(b.code, b.all).toBe(0);
    const before = srv.requests.length;
    const glBefore = gl.requests.length;
    const res = await runCli(args(r.url, '--via', 'api', '--dry-run'), { env: env() });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`digest: sha256:${'9a'.repeat(32)}`);
    // a dry run takes no write-back lock either: not one request to the git host
    expect(srv.requests.slice(before), 'git requests during promote --via api').toEqual([]);
    const asked = gl.requests.slice(glBefore).map((q) => `${q.method} ${q.path.split('?')[0]}`);
    expect(asked.some((q) => /\/repository\/tree$/.test(q))).toBe(true);
    expect(asked.some((q) => /\/repository\/commits$/.test(q))).toBe(true);
    // the bump's commit is found in history through the commits API (committer: the token's user) and its pipeline
    // (1990, unknown to the double) is then checked against the pipelines API: not trusted, so it is said so
    expect(res.stderr).toMatch(/provenance of .* not trusted/);
  });

  it('--from-app: the source read through the API at the commit Argo CD runs, not at the branch tip; still no git request', async () => {
    const r = repoWithDigest();
    // the Argo CD double deploys the config repo over the git server (its repoURL shown without credentials); it
    // polls once a minute and promote asks no refresh, so every git request below would be promote's
    const fx = await setup({ repoURL: r.authUrl });
    await fx.argo.waitFor('shovel-staging', (a) => a.status?.sync?.status === 'Synced' && a.status?.health?.status === 'Healthy' && a.status?.sync?.revision === r.head);
    const newer = `sha256:${'ef56'.repeat(16)}`;
    pushTree(r.authUrl, withImages(layout(), STAGING, `  - name: ${IMAGE}\n    digest: ${newer}\n`));
    const before = srv.requests.length;
    const res = await fx.cli([...args(r.url, '--via', 'api', '--from-app', 'shovel-staging', '--argocd-plaintext')], env());
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain(`runs config commit ${r.head.slice(0, 12)}: Synced, Healthy`);
    const after = show(r.path, `${PROD}/kustomization.yaml`);
    expect(after).toContain(`digest: ${DIGEST}`);
    expect(after).not.toContain(newer);
    expect(messageOf(r.path)).toContain(`Gitops-Promoted-From-Commit: ${r.head}`);
    // no git request: only the server's write-back lock (its locks API beside the repo: take it, give it back)
    const seen = srv.requests.slice(before);
    expect(seen.filter((q) => !q.path.includes('/info/lfs/locks')), 'git requests during promote --via api').toEqual([]);
    expect(seen.map((q) => q.status)).toEqual([201, 200]);
  });

  it('--via push keeps git unless GITOPS_WRITE_VIA says otherwise; GITOPS_WRITE_VIA=api sends it through the API', async () => {
    const r = repoWithDigest();
    const git = await runCli(args(r.url, '--dry-run'), { env: env() });
    expect(git.code, git.all).toBe(0);
    expect(git.stderr).toMatch(/write-back via git \(--via push writes through git unless GITOPS_WRITE_VIA=auto\|api\)/);
    const api = await runCli(args(r.url), { env: env({ GITOPS_WRITE_VIA: 'api' }) });
    expect(api.code, api.all).toBe(0);
    expect(api.stderr).toMatch(/write-back via api/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(`digest: ${DIGEST}`);
  });

  it('a token whose user may not write: exit 3, production unchanged, the token in no output', async () => {
    const r = repoWithDigest();
    const token = gl.tokenOf('reporter');
    const res = await runCli(args(r.url, '--via', 'api'), { env: env({ GITOPS_GITLAB_TOKEN: token }) });
    expect(res.code, res.all).toBe(3);
    expect(headOf(r.path)).toBe(r.head);
    for (const f of leakForms(token, [])) expect(res.all).not.toContain(f);
  });
});
