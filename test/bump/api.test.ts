/**
 * bump --via api: the write-back through GitLab's repository and commits APIs, without a clone (issue 20). The
 * GitLab double answers from the real bare repos of the git server (its POST commits writes real blobs, trees and
 * commits and moves the branch with update-ref new old); every answer a test relies on is checked against
 * test/contracts/gitlab-api.json. What holds for the git path is checked here the same way: the change lands with
 * the same message and trailers, no-op means no commit, racing writers all land, the stale guard skips through
 * the API, conflicts are re-applied, every error class has its exit code and leaves the branch as it was, and the
 * token is nowhere in the output.
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
import { parseRemote } from '../../src/git/url.js';
import { decideVia } from '../../src/writeback/api.js';
import { configRepo, headOf, IMAGE, jobEnv, leakForms, logOf, PROD, show, STAGING } from './fixture.js';

let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
const FILE = `${PROD}/kustomization.yaml`;

beforeAll(async () => {
  srv = await startGitServer();
  srv.createRepo('shovel/app.git');
  gl = await startGitlabDouble({
    git: srv,
    projects: [{ path: 'shovel/app', repo: 'shovel/app.git', id: 42 }],
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }, { username: 'reporter', accessLevel: 20 }],
    onResponse: recorder.onResponse,
  });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await srv?.stop();
});

/** a config repo on the git server, known to the double as a project */
function repo(extra: Record<string, string> = {}) {
  const r = configRepo(srv, extra);
  const project = r.name.replace(/\.git$/, '');
  gl.hooks.addProject({ path: project, repo: r.name });
  return { ...r, project };
}

const apiEnv = (extra: NodeJS.ProcessEnv = {}) => jobEnv(srv, { CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PROJECT_PATH: 'shovel/app', ...extra });
const bump = (url: string, tag: string, env: NodeJS.ProcessEnv = apiEnv(), extra: string[] = []) =>
  runCli(['bump', '--via', 'api', '--repo', url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:${tag}`, ...extra], { env });
const commitsRequested = (project: string) => gl.requests.filter((q) => q.method === 'POST' && decodeURIComponent(q.path).includes(`/projects/${project}/repository/commits`));
const fmt = (bare: string, f: string, rev = 'main') => execFileSync('git', ['-C', bare, 'log', '-1', `--format=${f}`, rev]).toString().trim();

describe('bump --via api', () => {
  it('sets the image in one API commit: the git path\'s message, trailers and [skip ci]; author the pipeline user, committer the token user', async () => {
    const r = repo();
    const dotenv = join(tmp(), 'bump.env');
    const res = await bump(r.url, 'api1', apiEnv({ GITLAB_USER_NAME: 'Ada Lovelace', GITLAB_USER_EMAIL: 'ada@example.com', CI_PIPELINE_ID: '77', CI_COMMIT_SHA: 'a'.repeat(40) }), ['--dotenv', dotenv]);
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/write-back via api \(--via api: the config repo is on 127\.0\.0\.1:\d+ and GITOPS_GITLAB_TOKEN is set\)/);
    const text = show(r.path, FILE);
    expect(text).toContain('newTag: "api1" # set by gitops-ci');
    expect(text).toContain('# production overlay: CI bumps the image below; keep the comments');
    expect(fmt(r.path, '%an <%ae> | %cn <%ce>')).toBe('Ada Lovelace <ada@example.com> | GitOps Bot <gitops-bot@example.com>');
    const msg = fmt(r.path, '%B');
    expect(msg.split('\n')[0]).toContain('[skip ci]');
    expect(msg).toContain(`Gitops-Image: ${IMAGE}=${IMAGE}:api1`);
    expect(msg).toContain('Gitops-Pipeline-Id: 77');
    const env = readFileSync(dotenv, 'utf8');
    expect(env).toContain('GITOPS_CHANGED=true');
    expect(env).toContain(`GITOPS_COMMIT_SHA=${headOf(r.path)}`);
    // one commit, with the parent the branch had: nothing else moved
    expect(fmt(r.path, '%P')).toBe(r.head);
    expect(commitsRequested(r.project)).toHaveLength(1);
  });

  it('no change: no commit, exit 0', async () => {
    const r = repo();
    expect((await bump(r.url, 'same')).code).toBe(0);
    const head = headOf(r.path);
    const again = await bump(r.url, 'same');
    expect(again.code, again.all).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/no change: images already set/);
    expect(headOf(r.path)).toBe(head);
    expect(commitsRequested(r.project)).toHaveLength(1);
  });

  it('--dry-run prints the diff and commits nothing', async () => {
    const r = repo();
    const res = await bump(r.url, 'dry', apiEnv(), ['--dry-run']);
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain('+    newTag: "dry" # set by gitops-ci');
    expect(headOf(r.path)).toBe(r.head);
    expect(commitsRequested(r.project)).toHaveLength(0);
  });

  it('N writers at once on one branch, each its own image: every one lands, none lost', async () => {
    const r = repo();
    const N = 5;
    const runs = await Promise.all(
      Array.from({ length: N }, (_, i) => runCli(['bump', '--via', 'api', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `registry.example.com/team/svc-${i}:v${i}`], { env: apiEnv() })),
    );
    for (const x of runs) expect(x.code, x.all).toBe(0);
    const text = show(r.path, FILE);
    for (let i = 0; i < N; i++) expect(text).toContain(`registry.example.com/team/svc-${i}`);
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(N);
  });

  it('the branch moves between the read and the commit: refused by GitLab, re-read and re-applied on the new tip', async () => {
    const r = repo();
    // another writer lands on the same branch while our commit is being made: the update of the branch must refuse
    gl.hooks.interleaveNextCommit(r.project, () => {
      gl.hooks.push(r.project, 'main', { files: { [`${STAGING}/.env`]: 'SPRING_PROFILES_ACTIVE=staging\nLOG_LEVEL=info\n' }, message: 'staging: log level', author: 'dev' });
    });
    // with a pipeline id the stale guard reads the overlay's history on each attempt (the retry: only since..new tip)
    const res = await bump(r.url, 'moved', apiEnv({ CI_PIPELINE_ID: '9' }), ['-v']);
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/commit refused, main moved/);
    expect(res.stderr).toMatch(/repository\/commits\?ref_name=[0-9a-f]{40}\.\.[0-9a-f]{40}/);
    expect(show(r.path, FILE)).toContain('newTag: "moved"');
    expect(show(r.path, `${STAGING}/.env`)).toContain('LOG_LEVEL=info');
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(2);
  });

  it('the file changes after it was read: GitLab refuses the stale last_commit_id (400), the edit is re-applied on top', async () => {
    const r = repo();
    // our read gets the old file; just after it, someone else changes the same file (another image)
    gl.hooks.tamper({
      route: 'GET /projects/:id/repository/files/:file_path',
      times: 1,
      rewrite: (a) => {
        const now = show(r.path, FILE);
        gl.hooks.push(r.project, 'main', { files: { [FILE]: now.replace('images:\n', 'images:\n  - name: registry.example.com/team/other\n    newTag: "o1"\n') }, message: 'other image', author: 'dev' });
        return a;
      },
    });
    const before = gl.requests.length;
    const res = await bump(r.url, 'stale-lock', apiEnv(), ['-v']);
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/The file has changed since you started editing it: \.kubernetes\/overlays\/production\/kustomization\.yaml/);
    // the refusal is read back with the file at the branch (its answer names the branch's new commit), not the branch apart
    expect(res.stderr).toMatch(/repository\/files\/\S*kustomization\.yaml\?ref=main/);
    // the trace bench/bump reads: two attempts, every request the double answered counted by the client
    const timing = JSON.parse(/bump timing (\{.*\})/.exec(res.stderr)![1]!) as { via: string; attempts: Array<{ result: string }>; requests: number; cpu: number };
    expect(timing.via).toBe('api');
    expect(timing.attempts.map((x) => x.result)).toEqual(['race', 'ok']);
    expect(timing.requests).toBe(gl.requests.length - before);
    expect(timing.cpu).toBeGreaterThan(0);
    const text = show(r.path, FILE);
    expect(text).toContain('newTag: "stale-lock"');
    expect(text).toContain('registry.example.com/team/other');
  });

  it('--render reads what the overlay references through the API (the base, transitively) and builds it', async () => {
    const r = repo();
    const res = await bump(r.url, 'rendered', apiEnv(), ['--render']);
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "rendered"');
    // the base was read through the files API (no clone anywhere)
    expect(gl.requests.some((q) => decodeURIComponent(q.path).includes(`/projects/${r.project}/repository/files/.kubernetes/base/`))).toBe(true);
    const unused = await runCli(['bump', '--via', 'api', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', 'registry.example.com/nobody/uses-this:1', '--render'], { env: apiEnv() });
    expect(unused.code, unused.all).toBe(2);
    expect(unused.stderr).toContain('EKUSTOMIZE_IMAGE_UNUSED');
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
  });

  it('the stale-pipeline guard works through the API: an older pipeline is skipped, verified with the pipelines API', async () => {
    const r = repo();
    const older = gl.hooks.addPipeline('shovel/app', { sha: '3'.repeat(40) });
    const newer = gl.hooks.addPipeline('shovel/app', { sha: '4'.repeat(40) });
    expect((await bump(r.url, 'newer', apiEnv({ CI_PIPELINE_ID: String(newer), CI_COMMIT_SHA: '4'.repeat(40) }))).code).toBe(0);
    const head = headOf(r.path);
    const dotenv = join(tmp(), 'bump.env');
    const late = await bump(r.url, 'older', apiEnv({ CI_PIPELINE_ID: String(older), CI_COMMIT_SHA: '3'.repeat(40) }), ['--dotenv', dotenv]);
    expect(late.code, late.all).toBe(0);
    expect(headOf(r.path)).toBe(head);
    expect(readFileSync(dotenv, 'utf8')).toMatch(new RegExp(`GITOPS_SKIPPED_REASON=stale: .*pipeline ${older} is older than pipeline ${newer}.*verified with the GitLab API`));
  });

  it('a commit by someone else naming a huge pipeline in trailers is not trusted through the API either', async () => {
    const r = repo();
    const text = show(r.path, FILE).replace(/newTag: .*/, 'newTag: "evil"');
    pushTree(r.authUrl, { [FILE]: text }, { message: `tweak\n\nGitops-Image: ${IMAGE}=${IMAGE}:evil\nGitops-Source-Project: shovel/app\nGitops-Pipeline-Id: 999999999999\n`, committer: { name: 'Mallory', email: 'mallory@example.com' } });
    const res = await bump(r.url, 'next', apiEnv({ CI_PIPELINE_ID: '5' }));
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "next"');
    expect(res.stderr).toMatch(/committed by Mallory <mallory@example.com>, not the write-back identity .*: its trailers are ignored/);
  });
});

describe('bump --via api: failures leave the branch as it was', () => {
  it('a bad token: exit 3, nothing committed, the token in no output', async () => {
    const r = repo();
    const secret = 'glpat-not-a-real-token-4242';
    const res = await bump(r.url, 'x', apiEnv({ GITOPS_GITLAB_TOKEN: secret }));
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGITLAB_AUTH');
    expect(headOf(r.path)).toBe(r.head);
    for (const f of leakForms(secret, [])) expect(res.all).not.toContain(f);
  });

  it('a token whose user may not write (Reporter): 403 on the commit, exit 3, nothing committed', async () => {
    const r = repo();
    const res = await bump(r.url, 'x', apiEnv({ GITOPS_GITLAB_TOKEN: gl.tokenOf('reporter') }));
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toMatch(/403/);
    expect(res.stderr).toMatch(/nothing was committed/);
    expect(headOf(r.path)).toBe(r.head);
    for (const f of leakForms(gl.tokenOf('reporter'), [])) expect(res.all).not.toContain(f);
  });

  it('GitLab answers 5xx to the commit every time: exit 75, the branch did not move', async () => {
    const r = repo();
    gl.hooks.failNext({ method: 'POST', route: 'POST /projects/:id/repository/commits', status: 502, times: 2 });
    const res = await bump(r.url, 'x', apiEnv(), ['--max-attempts', '2']);
    expect(res.code, res.all).toBe(75);
    expect(res.stderr).toContain('EGITLAB_UNAVAILABLE');
    expect(res.stderr).toMatch(/did not move: nothing was committed/);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('one 5xx on the commit: the branch did not move, so it is tried again and lands once', async () => {
    const r = repo();
    gl.hooks.failNext({ method: 'POST', route: 'POST /projects/:id/repository/commits', status: 503, times: 1 });
    const res = await bump(r.url, 'again');
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, FILE)).toContain('newTag: "again"');
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
  });

  it('GitLab unreachable: exit 75, nothing committed, the token in no output', async () => {
    const r = repo();
    const secret = 'glpat-unreachable-api-0000';
    const res = await bump(r.url.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1'), 'x', apiEnv({ CI_API_V4_URL: 'http://127.0.0.1:1/api/v4', GITOPS_GITLAB_TOKEN: secret, GITOPS_RETRY_ATTEMPTS: '1' }));
    expect(res.code, res.all).toBe(75);
    expect(res.stderr).toContain('EGITLAB_UNAVAILABLE');
    expect(headOf(r.path)).toBe(r.head);
    for (const f of leakForms(secret, [])) expect(res.all).not.toContain(f);
  });

  it('the commit request stalls past --timeout: exit 4, the branch as it was, and the message says it may still land', async () => {
    const r = repo();
    gl.hooks.stallNext({ method: 'POST', route: 'POST /projects/:id/repository/commits', ms: 30_000 });
    // the reads before the commit take well under a second alone; the stalled commit request then holds until the
    // deadline, whatever it is (6 s; the message asserted below is only said when the deadline stopped the commit)
    const res = await bump(r.url, 'stalled', apiEnv(), ['--timeout', '6']);
    expect(res.code, res.all).toBe(4);
    expect(res.stderr).toContain('EGITLAB_TIMEOUT');
    expect(res.stderr).toMatch(/GitLab may still finish the commit/);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a branch that does not exist: exit 2, as the git path', async () => {
    const r = repo();
    const res = await runCli(['bump', '--via', 'api', '--repo', r.url, '--branch', 'nope', '--dir', PROD, '--image', `${IMAGE}:x`], { env: apiEnv() });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EGIT_BRANCH_NOT_FOUND');
  });

  it('an overlay that is not there: exit 2, as the git path', async () => {
    const r = repo();
    const res = await runCli(['bump', '--via', 'api', '--repo', r.url, '--branch', 'main', '--dir', 'envs/nope', '--image', `${IMAGE}:x`], { env: apiEnv() });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EBUMP_OVERLAY_NOT_FOUND');
  });

  it('an overlay with a symlink out of the repo: refused (EKUSTOMIZE_OUTSIDE), as in a clone', async () => {
    const r = repo();
    const work = tmp('gci-sym-');
    execFileSync('git', ['clone', '-q', r.authUrl, work]);
    execFileSync('ln', ['-s', '/etc', join(work, PROD, 'etc')]);
    execFileSync('git', ['-C', work, 'add', '-A']);
    execFileSync('git', ['-C', work, '-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-qm', 'link']);
    execFileSync('git', ['-C', work, 'push', '-q', 'origin', 'HEAD:main']);
    const head = headOf(r.path);
    const res = await bump(r.url, 'x');
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EKUSTOMIZE_OUTSIDE');
    expect(headOf(r.path)).toBe(head);
  });
});

describe('which path: --via auto|git|api', () => {
  it('--via api where the API cannot be used (no write token; a local path; --skip-ci push-option): exit 2, naming why', async () => {
    const r = repo();
    const noToken = await bump(r.url, 'x', jobEnv(srv, { CI_API_V4_URL: gl.apiUrl }));
    expect(noToken.code, noToken.all).toBe(2);
    expect(noToken.stderr).toMatch(/EWRITEBACK_API_UNAVAILABLE.*no GitLab token/s);
    const local = await bump(r.path, 'x');
    expect(local.code, local.all).toBe(2);
    expect(local.stderr).toMatch(/a local path, not an https URL/);
    const opt = await bump(r.url, 'x', apiEnv(), ['--skip-ci', 'push-option']);
    expect(opt.code, opt.all).toBe(2);
    expect(opt.stderr).toMatch(/push-option needs a git push/);
    expect(headOf(r.path)).toBe(r.head);
  });

  it('auto falls back to git and says why (here: the config repo is served on another port than the API)', async () => {
    const r = repo();
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:auto`], { env: apiEnv({ GITOPS_WRITE_VIA: 'auto' }) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/write-back via git \(auto: the config repo \(127\.0\.0\.1:\d+\) is not on the pipeline's GitLab \(127\.0\.0\.1:\d+\)\)/);
    expect(show(r.path, FILE)).toContain('newTag: "auto"');
    expect(commitsRequested(r.project)).toHaveLength(0);
  });

  it('GITOPS_WRITE_VIA=api (the components\' input write-via) selects the API like the flag', async () => {
    const r = repo();
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:envvar`], { env: apiEnv({ GITOPS_WRITE_VIA: 'api' }) });
    expect(res.code, res.all).toBe(0);
    expect(commitsRequested(r.project)).toHaveLength(1);
  });
});

describe('decideVia: when auto takes the API', () => {
  const remote = (url: string) => parseRemote(url, '/');
  const env = { CI_API_V4_URL: 'https://gitlab.example.com/api/v4', GITOPS_GITLAB_TOKEN: 'glpat-decide-0000' };
  it('an https repo on the pipeline\'s GitLab (same host and port) with a write token: the API, the project from the URL', async () => {
    const d = await decideVia('auto', { remote: remote('https://gitlab.example.com/group/sub/config.git'), env, skipCi: 'message' });
    expect(d.via).toBe('api');
    expect(d.gitlab?.project).toBe('group/sub/config');
    expect(d.why).toMatch(/^auto: the config repo is on gitlab\.example\.com and GITOPS_GITLAB_TOKEN is set$/);
  });
  it('git otherwise, saying why: another host, another port, ssh, a read token only, push options, a work tree', async () => {
    const cases: Array<[string, NodeJS.ProcessEnv, string, RegExp]> = [
      ['https://git.other.example/group/config.git', env, 'message', /not on the pipeline's GitLab/],
      ['https://gitlab.example.com:8443/group/config.git', env, 'message', /not on the pipeline's GitLab/],
      ['git@gitlab.example.com:group/config.git', env, 'message', /ssh URL/],
      ['https://gitlab.example.com/group/config.git', { CI_API_V4_URL: env.CI_API_V4_URL, GITOPS_GITLAB_READ_TOKEN: 'glpat-read-0000' }, 'message', /no GitLab token/],
      ['https://gitlab.example.com/group/config.git', env, 'push-option', /push-option needs a git push/],
    ];
    for (const [url, e, skipCi, why] of cases) {
      const d = await decideVia('auto', { remote: remote(url), env: e, skipCi: skipCi as 'message' });
      expect(d.via, url).toBe('git');
      expect(d.why, url).toMatch(why);
    }
    const wd = await decideVia('auto', { remote: remote('https://gitlab.example.com/group/config.git'), env, skipCi: 'message', workdir: '/tmp/x' });
    expect(wd.why).toMatch(/--workdir asks for a clone/);
  });
});
