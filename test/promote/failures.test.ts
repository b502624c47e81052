/**
 * promote --via mr when GitLab fails part-way (review of issue #8): a failure after our branch was pushed
 * restores the branch as it was (deleted when we created it, reset to the previous promotion when we
 * replaced it), so that no half-done promotion is left and an open MR keeps describing what its branch holds;
 * an unreachable GitLab, a 5xx and an unknown project stop before anything is pushed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { pushTree, seedBare } from '../helpers/config-repo.js';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { leakForms } from '../bump/fixture.js';
import { DIGEST, IMAGE, PROD, STAGING, layout, withImages } from './fixture.js';

let git: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
let seq = 0;
const N = 8;

beforeAll(async () => {
  git = await startGitServer();
  for (let i = 1; i <= N; i++) git.createRepo(`group/fail${i}.git`);
  gl = await startGitlabDouble({
    git,
    projects: Array.from({ length: N }, (_, i) => ({ path: `group/fail${i + 1}`, repo: `group/fail${i + 1}.git`, id: 300 + i + 1 })),
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }, { username: 'alice' }],
    onResponse: recorder.onResponse,
  });
});
afterAll(async () => {
  // injected faults are not GitLab's contract; everything else is
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await git?.stop();
});

function project() {
  const n = ++seq;
  const path = `group/fail${n}`;
  const head = seedBare(git.repoPath(`${path}.git`), layout(), { message: 'initial config' }); // written in place, not pushed
  const env = { GITOPS_GIT_USER: git.user, GITOPS_GIT_TOKEN: git.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, GITOPS_RETRY_ATTEMPTS: '1' };
  return { path, url: `${git.url}/${path}.git`, head, env };
}

const BRANCH = 'gitops-ci/promote/production';
const args = (url: string, ...more: string[]) => ['promote', '--repo', url, '--branch', 'main', '--from', STAGING, '--to', PROD, '--via', 'mr', ...more];
const mrs = (path: string) => gl.hooks.mergeRequests(path) as Array<Record<string, any>>;

describe('promote --via mr: GitLab failing part-way leaves nothing behind', () => {
  it('the MR create fails after the push: our new branch is deleted again; a re-run then succeeds', async () => {
    const p = project();
    gl.hooks.failNext({ method: 'POST', route: 'POST /projects/:id/merge_requests', status: 422, body: { message: ['Validation failed'] } });
    const res = await runCli(args(p.url), { env: p.env });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EGITLAB_REJECTED');
    expect(res.stderr).toContain(`${BRANCH} removed again`);
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBeUndefined();
    expect(gl.hooks.branchSha(p.path, 'main')).toBe(p.head);
    expect(mrs(p.path)).toHaveLength(0);
    for (const f of leakForms(gl.token, [])) expect(res.all).not.toContain(f);
    for (const f of leakForms(git.password, [git.user])) expect(res.all).not.toContain(f);

    const again = await runCli(args(p.url), { env: p.env });
    expect(again.code, again.all).toBe(0);
    expect(mrs(p.path)).toHaveLength(1);
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBe(mrs(p.path)[0]!.sha);
  });

  it('the MR update fails (GitLab 500) for a newer promotion: our branch goes back to what the open MR describes', async () => {
    const p = project();
    const first = await runCli(args(p.url), { env: p.env });
    expect(first.code, first.all).toBe(0);
    const before = gl.hooks.branchSha(p.path, BRANCH)!;
    const mr = mrs(p.path)[0]!;
    const newer = `sha256:${'ef56'.repeat(16)}`;
    pushTree(git.authUrl(`${p.path}.git`), withImages(layout(), STAGING, `  - name: ${IMAGE}\n    digest: ${newer}\n`));
    gl.hooks.failNext({ method: 'PUT', route: 'PUT /projects/:id/merge_requests/:iid', status: 500, body: { message: '500 Internal Server Error' }, times: 1 });
    const res = await runCli(args(p.url), { env: p.env });
    expect(res.code, res.all).toBe(75);
    expect(res.stderr).toContain(`${BRANCH} reset to ${before.slice(0, 12)}`);
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBe(before);
    const now = gl.hooks.mergeRequest(p.path, mr.iid as number) as Record<string, any>;
    expect(now.sha).toBe(before);
    expect(now.description).toContain(DIGEST);
    expect(now.description).not.toContain(newer);
  });

  it('GitLab unreachable (75), answering 5xx (75), or the project unknown (1): nothing pushed, no MR', async () => {
    const p = project();
    const refused = await runCli(args(p.url), { env: { ...p.env, CI_API_V4_URL: 'http://127.0.0.1:1/api/v4' } });
    expect(refused.code, refused.all).toBe(75);
    expect(refused.stderr).toContain('EGITLAB_UNAVAILABLE');
    gl.hooks.failNext({ method: 'GET', route: 'GET /projects/:id', status: 503, times: 1 });
    const down = await runCli(args(p.url), { env: p.env });
    expect(down.code, down.all).toBe(75);
    const unknown = await runCli(args(p.url, '--project', 'group/nope'), { env: p.env });
    expect(unknown.code, unknown.all).toBe(1);
    expect(unknown.stderr).toContain('EGITLAB_NOT_FOUND');
    for (const r of [refused, down, unknown]) for (const f of leakForms(gl.token, [])) expect(r.all).not.toContain(f);
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBeUndefined();
    expect(gl.hooks.branchSha(p.path, 'main')).toBe(p.head);
    expect(mrs(p.path)).toHaveLength(0);
  });
});

describe('promote --via mr: an open promotion MR that the source no longer runs', () => {
  it('staging rolled back to what production runs: no commit, and the open MR proposing the newer digest is closed as superseded', async () => {
    const p = project();
    // production runs DIGEST; staging moves on to a newer digest: MR proposing it
    pushTree(git.authUrl(`${p.path}.git`), withImages(withImages(layout(), PROD, `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`), STAGING, `  - name: ${IMAGE}\n    digest: sha256:${'ef56'.repeat(16)}\n`));
    expect((await runCli(args(p.url), { env: p.env })).code).toBe(0);
    const open = mrs(p.path).filter((m) => m.state === 'opened');
    expect(open).toHaveLength(1);
    // the newer digest is rolled back in staging: staging runs what production runs again
    const main = pushTree(git.authUrl(`${p.path}.git`), withImages(layout(), PROD, `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`));
    const res = await runCli(args(p.url), { env: p.env });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('no change: production already runs what staging runs');
    expect(res.stderr).toContain(`closed !${open[0]!.iid}`);
    expect(gl.hooks.mergeRequest(p.path, open[0]!.iid as number).state).toBe('closed');
    expect(gl.hooks.branchSha(p.path, 'main')).toBe(main);
    expect(mrs(p.path)).toHaveLength(1);
  }, 150_000);

  it('--dry-run closes nothing', async () => {
    const q = project();
    pushTree(git.authUrl(`${q.path}.git`), withImages(withImages(layout(), PROD, `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`), STAGING, `  - name: ${IMAGE}\n    digest: sha256:${'ef56'.repeat(16)}\n`));
    expect((await runCli(args(q.url), { env: q.env })).code).toBe(0);
    pushTree(git.authUrl(`${q.path}.git`), withImages(layout(), PROD, `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`));
    const dry = await runCli(args(q.url, '--dry-run'), { env: q.env });
    expect(dry.code, dry.all).toBe(0);
    expect(mrs(q.path).filter((m) => m.state === 'opened')).toHaveLength(1);
  }, 150_000);
});

describe('promote: credentials in flags', () => {
  it('--verify-job with credentials in the URL is refused (it would go into the commit trailer and the MR), and never echoed', async () => {
    const secret = 'glpat-VerifyJobSecret42';
    const res = await runCli(['promote', '--repo', '/nonexistent', '--branch', 'main', '--from', STAGING, '--to', PROD, '--verify-job', `https://bot:${secret}@gitlab.example.com/g/p/-/jobs/1`]);
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('--verify-job must not carry credentials');
    for (const f of leakForms(secret, ['bot'])) expect(res.all).not.toContain(f);
  });
});
