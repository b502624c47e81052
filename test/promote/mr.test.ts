/**
 * gitops-ci promote --via mr through the CLI bundle, against the GitLab double in front of the harness's real
 * git server (branches, MR heads and merges are real git): one MR per target environment, idempotent re-runs,
 * a newer promotion updating the open MR, a closed MR giving a new one, a 409 on create adopted, auto-merge,
 * dry run, and a bad token (exit 3, masked, nothing pushed). Every double response is checked against the
 * contract file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { parseDotenv } from '../../src/core/dotenv.js';
import { pushTree, seedBare } from '../helpers/config-repo.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { leakForms } from '../bump/fixture.js';
import { DIGEST, IMAGE, PROD, STAGING, layout, withImages } from './fixture.js';

let git: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
let seq = 0;

beforeAll(async () => {
  git = await startGitServer();
  // projects are registered up front: one repo per test
  for (let i = 1; i <= 10; i++) git.createRepo(`group/config${i}.git`);
  gl = await startGitlabDouble({
    git,
    projects: Array.from({ length: 10 }, (_, i) => ({ path: `group/config${i + 1}`, repo: `group/config${i + 1}.git`, id: 100 + i + 1 })),
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }, { username: 'alice' }, { username: 'bob' }],
    onResponse: recorder.onResponse,
  });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await git?.stop();
});

const CI = { CI_PIPELINE_ID: '3001', CI_PIPELINE_URL: 'https://gitlab.example.com/group/config/-/pipelines/3001', CI_JOB_URL: 'https://gitlab.example.com/group/config/-/jobs/7001' };

/** a fresh project whose staging pins DIGEST; env for the CLI (git token + GitLab token) */
function project(staging = `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`) {
  const n = ++seq;
  const path = `group/config${n}`;
  const head = seedBare(git.repoPath(`${path}.git`), layout(staging), { message: 'initial config' }); // written in place, not pushed
  const env = { GITOPS_GIT_USER: git.user, GITOPS_GIT_TOKEN: git.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, ...CI };
  return { path, url: `${git.url}/${path}.git`, head, env, bare: git.repoPath(`${path}.git`) };
}

const BRANCH = 'gitops-ci/promote/production';
const args = (url: string, ...more: string[]) => ['promote', '--repo', url, '--branch', 'main', '--from', STAGING, '--to', PROD, '--via', 'mr', ...more];
const mrs = (path: string) => gl.hooks.mergeRequests(path) as Array<Record<string, any>>;
const show = (bare: string, ref: string, file: string) => execFileSync('git', ['-C', bare, 'show', `${ref}:${file}`]).toString();

describe('promote --via mr', () => {
  it('pushes our own branch and opens one MR with the change list, provenance and rendered diff; main untouched; a re-run changes nothing', async () => {
    const p = project();
    const dotenv = join(tmp(), 'p.env');
    const res = await runCli(args(p.url, '--label', 'promotion,env::production', '--assignee', 'alice', '--reviewer', 'bob', '--dotenv', dotenv), { env: { ...p.env, GITOPS_VERIFY_JOB_URL: 'https://gitlab.example.com/group/config/-/jobs/6999' } });
    expect(res.code, res.all).toBe(0);
    expect(gl.hooks.branchSha(p.path, 'main')).toBe(p.head);
    const sha = gl.hooks.branchSha(p.path, BRANCH)!;
    expect(sha).toBeTruthy();
    expect(show(p.bare, BRANCH, `${PROD}/kustomization.yaml`)).toContain(`digest: ${DIGEST}`);
    // the MR pipeline must run: no [skip ci] by default with --via mr
    expect(execFileSync('git', ['-C', p.bare, 'log', '-1', '--format=%s', BRANCH]).toString().trim()).toBe(`promote shovel-gitops:${DIGEST.slice(0, 19)} from staging to production`);
    const all = mrs(p.path);
    expect(all).toHaveLength(1);
    const mr = all[0]!;
    expect(mr).toMatchObject({ source_branch: BRANCH, target_branch: 'main', state: 'opened', sha, labels: ['promotion', 'env::production'] });
    expect(mr.title).toBe(`Promote shovel-gitops@${DIGEST.slice(7, 19)} from staging to production`);
    expect(mr.assignees.map((u: any) => u.username)).toEqual(['alice']);
    expect(mr.reviewers.map((u: any) => u.username)).toEqual(['bob']);
    const d = mr.description as string;
    expect(d).toContain(`| \`${IMAGE}\` | \`3f2a9c1\` | \`${DIGEST}\` |`);
    expect(d).toContain(`config commit of staging: \`${p.head}\``);
    expect(d).toContain(`[this job](${CI.CI_JOB_URL})`);
    expect(d).toContain('- staging verified by [this job](https://gitlab.example.com/group/config/-/jobs/6999)');
    expect(execFileSync('git', ['-C', p.bare, 'log', '-1', '--format=%B', BRANCH]).toString()).toContain('Gitops-Verified-By: https://gitlab.example.com/group/config/-/jobs/6999');
    expect(d).toMatch(/<details><summary>Deployment <code>shovel\\?-production\/prod\\?-shovel<\/code> \(apps\/v1, changed\)<\/summary>/);
    expect(d).toContain(`+          image: ${IMAGE}@${DIGEST}`);
    expect(d).toContain(`-          image: ${IMAGE}:3f2a9c1`);
    expect(d).toContain('<!-- gitops-ci:promote -->');
    const out = parseDotenv(readFileSync(dotenv, 'utf8'));
    expect(out.GITOPS_MR_IID).toBe(String(mr.iid));
    expect(out.GITOPS_MR_URL).toBe(mr.web_url);
    expect(out.GITOPS_COMMIT_SHA).toBe(sha);
    expect(out.GITOPS_PROMOTED).toBe(`${IMAGE}=${IMAGE}@${DIGEST}`);

    const pushesBefore = git.requests.filter((q) => q.path.includes(`${p.path}.git`) && q.method === 'POST' && q.path.endsWith('git-receive-pack')).length;
    const again = await runCli(args(p.url, '--label', 'promotion,env::production', '--assignee', 'alice', '--reviewer', 'bob'), { env: { ...p.env, GITOPS_VERIFY_JOB_URL: 'https://gitlab.example.com/group/config/-/jobs/6999' } });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toContain('already holds this promotion');
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBe(sha);
    expect(git.requests.filter((q) => q.path.includes(`${p.path}.git`) && q.method === 'POST' && q.path.endsWith('git-receive-pack')).length).toBe(pushesBefore);
    expect(mrs(p.path)).toHaveLength(1);
    expect(again.stderr).toMatch(/merge request !\d+ unchanged/);
  });

  it('a newer promotion updates the open MR (our branch force-pushed); a closed, unmerged MR gives a new one', async () => {
    const p = project();
    expect((await runCli(args(p.url), { env: p.env })).code).toBe(0);
    const first = mrs(p.path)[0]!;
    const newer = `sha256:${'ef56'.repeat(16)}`;
    pushTree(git.authUrl(`${p.path}.git`), withImages(layout(), STAGING, `  - name: ${IMAGE}\n    digest: ${newer}\n`));
    const res = await runCli(args(p.url), { env: p.env });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/merge request !\d+ updated/);
    const all = mrs(p.path);
    expect(all).toHaveLength(1);
    expect(all[0]!.iid).toBe(first.iid);
    expect(all[0]!.description).toContain(newer);
    expect(all[0]!.description).not.toContain(DIGEST);
    expect(all[0]!.sha).not.toBe(first.sha);
    expect(show(p.bare, BRANCH, `${PROD}/kustomization.yaml`)).toContain(newer);

    gl.hooks.setState(p.path, first.iid, 'close');
    const again = await runCli(args(p.url), { env: p.env });
    expect(again.code, again.all).toBe(0);
    const after = mrs(p.path);
    expect(after).toHaveLength(2);
    const open = after.filter((m) => m.state === 'opened');
    expect(open).toHaveLength(1);
    expect(open[0]!.iid).not.toBe(first.iid);
  });

  it('adopts the MR when create answers 409 (another runner was faster)', async () => {
    const p = project();
    gl.hooks.raceNextCreate();
    const res = await runCli(args(p.url), { env: p.env });
    expect(res.code, res.all).toBe(0);
    const open = mrs(p.path).filter((m) => m.state === 'opened');
    expect(open).toHaveLength(1);
    expect(open[0]!.description).toContain('<!-- gitops-ci:promote -->');
  });

  it('already there: no commit, no branch, no MR, exit 0', async () => {
    const p = project();
    pushTree(git.authUrl(`${p.path}.git`), withImages(layout(), PROD, `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`));
    const res = await runCli(args(p.url), { env: p.env });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('no change: production already runs what staging runs');
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBeUndefined();
    expect(mrs(p.path)).toHaveLength(0);
  });

  it('--draft and --auto-merge: a draft MR set to merge when the pipeline succeeds', async () => {
    const p = project();
    const res = await runCli(args(p.url, '--auto-merge', '--auto-merge-timeout', '30'), { env: p.env });
    expect(res.code, res.all).toBe(0);
    const mr = mrs(p.path)[0]!;
    expect(mr.merge_when_pipeline_succeeds || mr.state === 'merged', JSON.stringify(mr)).toBe(true);
    if (mr.state !== 'merged') {
      gl.hooks.setPipeline(p.path, mr.iid, 'success');
      expect(gl.hooks.mergeRequest(p.path, mr.iid).state).toBe('merged');
      expect(show(p.bare, 'main', `${PROD}/kustomization.yaml`)).toContain(`digest: ${DIGEST}`);
    }
    const q = project();
    const d = await runCli(args(q.url, '--draft'), { env: q.env });
    expect(d.code, d.all).toBe(0);
    expect(mrs(q.path)[0]).toMatchObject({ draft: true });
    expect(mrs(q.path)[0]!.title).toMatch(/^Draft: Promote /);
  });

  it('--dry-run prints the diff and the rendered diff; pushes and opens nothing', async () => {
    const p = project();
    const res = await runCli(args(p.url, '--dry-run'), { env: p.env });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`+    digest: ${DIGEST}`);
    expect(res.stdout).toMatch(/<details><summary>Deployment <code>shovel\\?-production\/prod\\?-shovel<\/code> \(apps\/v1, changed\)<\/summary>/);
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBeUndefined();
    expect(mrs(p.path)).toHaveLength(0);
  });

  it('a bad GitLab token: exit 3, the token masked, nothing pushed; CI_JOB_TOKEN alone is refused clearly', async () => {
    const p = project();
    const bad = 'glpat-BadToken0123456789';
    const res = await runCli(args(p.url), { env: { ...p.env, GITOPS_GITLAB_TOKEN: bad } });
    expect(res.code, res.all).toBe(3);
    for (const f of leakForms(bad, ['oauth2'])) expect(res.all).not.toContain(f);
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBeUndefined();
    const job = await runCli(args(p.url), { env: { ...p.env, GITOPS_GITLAB_TOKEN: '', CI_JOB_TOKEN: 'job-token-xyz-123' } });
    expect(job.code, job.all).toBe(3);
    expect(job.stderr).toContain('CI_JOB_TOKEN');
    expect(job.all).not.toContain('job-token-xyz-123');
    expect(gl.hooks.branchSha(p.path, BRANCH)).toBeUndefined();
  });
});
