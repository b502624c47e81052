/**
 * The stale guard trusts provenance only when it is verified (issue 18, Deliver 3). Before, one merged commit
 * whose `Gitops-Pipeline-Id` trailer carried a huge id made every later bump "skipped, stale" (exit 0, nothing
 * deployed). Now:
 *  - trailers count only in commits made by the write-back identity (committer gitops-ci, or
 *    GITOPS_WRITEBACK_NAME/EMAIL): a commit by anyone else is ignored, with a warning, and the bump goes ahead;
 *  - with a GitLab token, the recorded pipeline is asked for (GET /projects/:id/pipelines/:pipeline_id on the
 *    GitLab double, every answer checked against test/contracts/gitlab-api.json): one GitLab does not know, or
 *    that ran another commit, is not trusted even from our identity;
 *  - a skip says what it trusted: the commit, the pipeline, and whether the API confirmed it.
 * Real git server, the CLI bundle, the GitLab double.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { pushTree } from '../helpers/config-repo.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { configRepo, IMAGE, jobEnv, PROD, show } from './fixture.js';

let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
const WRITEBACK = { name: 'gitops-ci', email: 'gitops-ci@noreply.invalid' };
const FILE = `${PROD}/kustomization.yaml`;
const HUGE = '999999999999';

beforeAll(async () => {
  srv = await startGitServer();
  srv.createRepo('shovel/app.git');
  gl = await startGitlabDouble({ git: srv, projects: [{ path: 'shovel/app', repo: 'shovel/app.git', id: 42 }], users: [{ username: 'gitops-reader', bot: true }], onResponse: recorder.onResponse });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await srv?.stop();
});

const sha = (c: string) => c.repeat(40);
const bump = (url: string, tag: string, env: NodeJS.ProcessEnv, extra: string[] = []) => runCli(['bump', '--repo', url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:${tag}`, ...extra], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', ...env }) });

/** a merged commit that sets the image to `tag` and claims it came from pipeline `pipeline` at `commit` */
function forge(r: { authUrl: string; path: string }, tag: string, o: { pipeline: string; commit: string; committer?: { name: string; email: string } }) {
  const text = show(r.path, FILE).replace(/newTag: .*/, `newTag: "${tag}"`);
  const msg = [
    'Merge branch tweak',
    '',
    `Gitops-Image: ${IMAGE}=${IMAGE}:${tag}`,
    'Gitops-Source-Project: shovel/app',
    `Gitops-Source-Commit: ${o.commit}`,
    `Gitops-Pipeline: https://gitlab.example.com/shovel/app/-/pipelines/${o.pipeline}`,
    `Gitops-Pipeline-Id: ${o.pipeline}`,
    '',
  ].join('\n');
  return pushTree(r.authUrl, { [FILE]: text }, { message: msg, committer: o.committer ?? { name: 'Mallory', email: 'mallory@example.com' } });
}

const committerOf = (bare: string, rev = 'main') => execFileSync('git', ['-C', bare, 'log', '-1', '--format=%an <%ae> | %cn <%ce>', rev]).toString().trim();

describe('trailers count only from the write-back identity', () => {
  it('bump commits as the write-back identity (author: the pipeline user), configurable', async () => {
    const r = configRepo(srv);
    const res = await bump(r.url, 'one', { CI_PIPELINE_ID: '10', GITLAB_USER_NAME: 'Ada Lovelace', GITLAB_USER_EMAIL: 'ada@example.com' });
    expect(res.code, res.all).toBe(0);
    expect(committerOf(r.path)).toBe('Ada Lovelace <ada@example.com> | gitops-ci <gitops-ci@noreply.invalid>');
    const own = await bump(r.url, 'two', { CI_PIPELINE_ID: '11', GITOPS_WRITEBACK_NAME: 'Deploy Bot', GITOPS_WRITEBACK_EMAIL: 'deploy@example.com' });
    expect(own.code, own.all).toBe(0);
    expect(committerOf(r.path)).toMatch(/\| Deploy Bot <deploy@example.com>$/);
    const bad = await bump(r.url, 'three', { GITOPS_WRITEBACK_EMAIL: 'a b@example.com' });
    expect(bad.code, bad.all).toBe(2);
  });

  it('a merged commit by someone else with a huge Gitops-Pipeline-Id does not make later bumps skip', async () => {
    const r = configRepo(srv);
    expect((await bump(r.url, 'good', { CI_PIPELINE_ID: '200' })).code).toBe(0);
    forge(r, 'evil', { pipeline: HUGE, commit: sha('e') });
    const dotenv = join(tmp(), 'bump.env');
    const next = await bump(r.url, 'next', { CI_PIPELINE_ID: '300' }, ['--dotenv', dotenv]);
    expect(next.code, next.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "next"');
    expect(next.stderr).toMatch(/committed by Mallory <mallory@example.com>, not the write-back identity gitops-ci <gitops-ci@noreply.invalid>: its trailers are ignored/);
    expect(readFileSync(dotenv, 'utf8')).toContain('GITOPS_CHANGED=true');
  });

  it('the same commit made as the write-back identity, no token: trusted, and the skip says so', async () => {
    const r = configRepo(srv);
    forge(r, 'claimed', { pipeline: HUGE, commit: sha('e'), committer: WRITEBACK });
    const dotenv = join(tmp(), 'bump.env');
    const res = await bump(r.url, 'next', { CI_PIPELINE_ID: '300' }, ['--dotenv', dotenv]);
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "claimed"');
    const reason = readFileSync(dotenv, 'utf8');
    expect(reason).toMatch(/GITOPS_SKIPPED_REASON=stale: .*pipeline 300 is older than pipeline 999999999999.*trusted: pipeline 999999999999 of shovel\/app at eeeeeeeeeeee, recorded by write-back commit [0-9a-f]{12}; not checked against the GitLab API \(no token\)/);
  });
});

describe('with a GitLab token, the recorded pipeline is checked against the API', () => {
  const withApi = (pipeline: string, commit: string) => ({ CI_PIPELINE_ID: pipeline, CI_COMMIT_SHA: commit, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_READ_TOKEN: gl.token });

  it('a forged commit by our identity naming a pipeline GitLab does not know: not trusted, the bump goes ahead', async () => {
    const r = configRepo(srv);
    forge(r, 'claimed', { pipeline: HUGE, commit: sha('e'), committer: WRITEBACK });
    const mine = gl.hooks.addPipeline('shovel/app', { sha: sha('1') });
    const res = await bump(r.url, 'next', withApi(String(mine), sha('1')));
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "next"');
    expect(res.stderr).toMatch(/the GitLab API does not confirm pipeline 999999999999 of shovel\/app .*not trusted/);
    expect(gl.requests.some((q) => q.path.endsWith(`/pipelines/${HUGE}`) && q.status === 404)).toBe(true);
  });

  it('a real pipeline that ran another commit than recorded: not trusted', async () => {
    const r = configRepo(srv);
    const mine = gl.hooks.addPipeline('shovel/app', { sha: sha('b') });
    const later = gl.hooks.addPipeline('shovel/app', { sha: sha('c') });
    // the trailer names a real, newer pipeline, but records another commit than it ran
    forge(r, 'claimed', { pipeline: String(later), commit: sha('d'), committer: WRITEBACK });
    const res = await bump(r.url, 'next', withApi(String(mine), sha('b')));
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "next"');
    expect(res.stderr).toMatch(new RegExp(`pipeline ${later} of shovel/app recorded by commit [0-9a-f]{12} ran cccccccccccc, not the recorded source commit dddddddddddd`));
  });

  it('a genuine newer bump, confirmed by the API: an older pipeline is skipped, and the skip says it was verified', async () => {
    const r = configRepo(srv);
    const older = gl.hooks.addPipeline('shovel/app', { sha: sha('3') });
    const newer = gl.hooks.addPipeline('shovel/app', { sha: sha('4') });
    expect((await bump(r.url, 'newer', withApi(String(newer), sha('4')))).code).toBe(0);
    const dotenv = join(tmp(), 'bump.env');
    const late = await bump(r.url, 'older', withApi(String(older), sha('3')), ['--dotenv', dotenv]);
    expect(late.code, late.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "newer"');
    expect(readFileSync(dotenv, 'utf8')).toMatch(new RegExp(`GITOPS_SKIPPED_REASON=stale: .*trusted: pipeline ${newer} of shovel/app at 444444444444, recorded by write-back commit [0-9a-f]{12}, verified with the GitLab API`));
  });

  it('GitLab unreachable while a recorded pipeline must be checked: exit 75, nothing pushed', async () => {
    const r = configRepo(srv);
    forge(r, 'claimed', { pipeline: '12', commit: sha('e'), committer: WRITEBACK });
    const head = execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim();
    const res = await bump(r.url, 'next', { CI_PIPELINE_ID: '13', CI_API_V4_URL: 'http://127.0.0.1:1/api/v4', GITOPS_GITLAB_TOKEN: 'glpat-unreachable-0000', GITOPS_RETRY_ATTEMPTS: '1' });
    expect(res.code, res.all).toBe(75);
    expect(res.stderr).toContain('EGITLAB_UNAVAILABLE');
    expect(execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim()).toBe(head);
    expect(res.all).not.toContain('glpat-unreachable-0000');
  });
});
