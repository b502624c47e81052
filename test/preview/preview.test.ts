/**
 * gitops-ci preview through the CLI bundle, posting to the GitLab double (notes checked against the contract):
 * one note per MR edited in place on re-run; config-repo mode (overlays touched between base and head) and
 * app-repo mode (what bump would change, nothing pushed); a diff over the limit truncated; Secret values
 * never in the note; no MR and a bad token refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { git as gitIn, pushTree, seedLayout, writeTree, type Tree } from '../helpers/config-repo.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { gitlabClient } from '../../src/gitlab/client.js';
import { resolveGitlabConfig } from '../../src/gitlab/config.js';
import { upsertMergeRequest } from '../../src/gitlab/mr.js';
import { leakForms } from '../bump/fixture.js';
import { DIGEST, IMAGE, PROD, STAGING, layout } from '../promote/fixture.js';

let git: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
const PROJECT = 'group/app';

beforeAll(async () => {
  git = await startGitServer();
  git.createRepo('group/app.git');
  git.createRepo('group/config.git');
  pushTree(git.authUrl('group/app.git'), { 'README.md': '# app\n' });
  pushTree(git.authUrl('group/config.git'), seedLayout(IMAGE));
  git.createRepo('group/config-digest.git');
  pushTree(git.authUrl('group/config-digest.git'), layout());
  gl = await startGitlabDouble({ git, projects: [{ path: PROJECT, repo: 'group/app.git', id: 7 }], users: [{ username: 'gitops-bot', bot: true }, { username: 'alice' }], onResponse: recorder.onResponse });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await git?.stop();
});

let mrNo = 0;
/** a fresh MR in the double; returns its IID */
async function openMr(): Promise<number> {
  const env = { CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PROJECT_ID: '7' };
  const client = gitlabClient(resolveGitlabConfig(env, {}), { attempts: 1 });
  const branch = `feature-${++mrNo}`;
  gl.hooks.push(PROJECT, branch, { files: { [`f${mrNo}.txt`]: 'x\n' }, message: 'change' });
  const r = await upsertMergeRequest(client, { project: 7, sourceBranch: branch, targetBranch: 'main', title: `change ${mrNo}`, description: '' });
  client.close();
  return r.iid;
}

const notes = (iid: number) => gl.hooks.notes(PROJECT, iid).filter((n) => !n.system) as Array<Record<string, any>>;
const glEnv = (iid: number) => ({ CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PROJECT_ID: '7', CI_MERGE_REQUEST_IID: String(iid) });

/** a local config repo checkout (as in an MR pipeline); commit(tree) returns the new SHA */
function checkout(tree: Tree): { dir: string; commit(t: Tree, remove?: string[]): string; first: string } {
  const dir = tmp('gci-preview-');
  gitIn(dir, ['init', '-q', '-b', 'main']);
  const commit = (t: Tree) => {
    writeTree(dir, t);
    gitIn(dir, ['add', '-A']);
    gitIn(dir, ['commit', '-q', '--allow-empty', '-m', 'change']);
    return gitIn(dir, ['rev-parse', 'HEAD']);
  };
  return { dir, commit, first: commit(tree) };
}

const SECRET_LAYOUT = (password: string): Tree => ({
  [`${PROD}/secret.env`]: `PASSWORD=${password}\n`,
  [`${PROD}/kustomization.yaml`]: seedLayout(IMAGE)[`${PROD}/kustomization.yaml`]!.replace('patches:', `secretGenerator:\n  - name: db\n    envs:\n      - secret.env\n\npatches:`),
});

describe('preview: config repo MR', () => {
  it('renders every overlay the changes touch, base vs head, as one note edited in place on re-run', async () => {
    const iid = await openMr();
    const c = checkout(seedLayout(IMAGE));
    // the base is shared: both overlays are touched
    const head = c.commit({ '.kubernetes/base/deployment.yaml': seedLayout(IMAGE)['.kubernetes/base/deployment.yaml']!.replace('containerPort: 8080', 'containerPort: 9090') });
    const env = { ...glEnv(iid), CI_PROJECT_DIR: c.dir, CI_MERGE_REQUEST_DIFF_BASE_SHA: c.first, CI_COMMIT_SHA: head };
    const res = await runCli(['preview'], { env });
    expect(res.code, res.all).toBe(0);
    let ns = notes(iid);
    expect(ns).toHaveLength(1);
    const body = ns[0]!.body as string;
    expect(body).toContain('<!-- gitops-ci:preview:default -->');
    expect(body).toContain(`#### production &#40;${PROD}&#41;: 1 changed`);
    expect(body).toContain(`#### staging &#40;${STAGING}&#41;: 1 changed`);
    expect(body).toContain('<details><summary>Deployment <code>shovel-production/prod-shovel</code> (apps/v1, changed)</summary>');
    expect(body).toContain('+            - containerPort: 9090');
    const id = ns[0]!.id;

    // a new push to the MR: the same note, edited
    const head2 = c.commit({ [`${STAGING}/deployment_patch.yaml`]: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shovel\nspec:\n  replicas: 2\n' });
    const again = await runCli(['preview'], { env: { ...env, CI_COMMIT_SHA: head2 } });
    expect(again.code, again.all).toBe(0);
    ns = notes(iid);
    expect(ns).toHaveLength(1);
    expect(ns[0]!.id).toBe(id);
    expect(ns[0]!.body).toContain('+  replicas: 2');
    expect(again.stderr).toContain(`updated the preview note ${id}`);
  });

  it('never shows a Secret value: data replaced by a marker before diffing, a changed value marked as changed', async () => {
    const iid = await openMr();
    const c = checkout({ ...seedLayout(IMAGE), ...SECRET_LAYOUT('hunter2-before') });
    const head = c.commit(SECRET_LAYOUT('hunter2-after'));
    const res = await runCli(['preview'], { env: { ...glEnv(iid), CI_PROJECT_DIR: c.dir, CI_MERGE_REQUEST_DIFF_BASE_SHA: c.first, CI_COMMIT_SHA: head } });
    expect(res.code, res.all).toBe(0);
    const body = notes(iid)[0]!.body as string;
    expect(body).toContain('Secret <code>shovel-production/');
    expect(body).toContain('<redacted, changed>');
    for (const v of ['hunter2-before', 'hunter2-after']) for (const f of leakForms(v, [])) expect(body + res.all).not.toContain(f);
    // staging is not touched by a production-only change
    expect(body).not.toContain(`#### staging`);
  });

  it('only overlays whose closure holds a changed file; a change elsewhere touches none', async () => {
    const c = checkout(seedLayout(IMAGE));
    const readme = c.commit({ 'README.md': '# config\n' });
    const none = await runCli(['preview', '--dry-run', '--base', c.first, '--head', readme, '--repo-dir', c.dir]);
    expect(none.code, none.all).toBe(0);
    expect(none.stdout).toContain("This merge request changes no overlay's rendered manifests");
    expect(none.stderr).toContain('no overlay is touched by the changes');
    // a generator file of staging: staging only (its ConfigMap, renamed by its new hash, and the Deployment using it)
    const env = c.commit({ [`${STAGING}/.env`]: 'SPRING_PROFILES_ACTIVE=staging\nLOG_LEVEL=info\n' });
    const res = await runCli(['preview', '--dry-run', '--base', readme, '--head', env, '--repo-dir', c.dir]);
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain(`overlays touched: ${STAGING}`);
    expect(res.stdout).toContain(`#### staging &#40;${STAGING}&#41;: 2 changed`);
    expect(res.stdout).toMatch(/ConfigMap <code>shovel-staging\/staging-shovel-config-\w+<\/code> \(v1, changed, was <code>staging-shovel-config-\w+<\/code>\)/);
    expect(res.stdout).not.toContain('#### production');
    // --dir limits the preview
    const only = await runCli(['preview', '--dry-run', '--base', c.first, '--head', env, '--repo-dir', c.dir, '--dir', PROD]);
    expect(only.code, only.all).toBe(0);
    expect(only.stdout).not.toContain('#### staging');
  });

  it('a diff over the limit is truncated, with a note, under --max-chars', async () => {
    const c = checkout(seedLayout(IMAGE));
    const big = (n: number) => Array.from({ length: 2000 }, (_, i) => `KEY_${i}=value-${n}-${i}`).join('\n') + '\n';
    c.commit({ [`${PROD}/.env`]: big(1) });
    const base = gitIn(c.dir, ['rev-parse', 'HEAD']);
    const head = c.commit({ [`${PROD}/.env`]: big(2) });
    const res = await runCli(['preview', '--dry-run', '--max-chars', '20000', '--base', base, '--head', head, '--repo-dir', c.dir]);
    expect(res.code, res.all).toBe(0);
    expect(res.stdout.length).toBeLessThanOrEqual(20001);
    expect(res.stdout).toMatch(/_Diff truncated: \d+ of \d+ lines \(\d+ characters\) not shown\._|more resource diffs? not shown/);
  });
});

describe('preview: app repo MR', () => {
  it('shows what bump would change in each overlay; nothing is pushed', async () => {
    const iid = await openMr();
    const before = gitIn(git.repoPath('group/config.git'), ['rev-parse', 'main']);
    const digest = `sha256:${'9a'.repeat(32)}`;
    const res = await runCli(['preview', '--repo', `${git.url}/group/config.git`, '--branch', 'main', '--dir', STAGING, '--dir', PROD, '--image', `${IMAGE}@${digest}`], {
      env: { ...glEnv(iid), GITOPS_GIT_USER: git.user, GITOPS_GIT_TOKEN: git.password },
    });
    expect(res.code, res.all).toBe(0);
    const ns = notes(iid);
    expect(ns).toHaveLength(1);
    expect(ns[0]!.body).toContain(`+          image: ${IMAGE}@${digest}`);
    expect(ns[0]!.body).toContain('<details><summary>Deployment <code>shovel-staging/staging-shovel</code> (apps/v1, changed)</summary>');
    expect(ns[0]!.body).toContain('<details><summary>Deployment <code>shovel-production/prod-shovel</code> (apps/v1, changed)</summary>');
    expect(gitIn(git.repoPath('group/config.git'), ['rev-parse', 'main'])).toBe(before);
  });

  it('--from: what promote would move into each --dir (the source digests), nothing pushed', async () => {
    const bare = git.repoPath('group/config-digest.git');
    const before = gitIn(bare, ['rev-parse', 'main']);
    const res = await runCli(['preview', '--dry-run', '--repo', `${git.url}/group/config-digest.git`, '--branch', 'main', '--from', STAGING, '--dir', PROD], { env: { GITOPS_GIT_USER: git.user, GITOPS_GIT_TOKEN: git.password } });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`What this merge request deploys: what promoting \`staging\` (\`${IMAGE}@${DIGEST}\`) changes in \`production\``);
    expect(res.stdout).toContain(`+          image: ${IMAGE}@${DIGEST}`);
    expect(gitIn(bare, ['rev-parse', 'main'])).toBe(before);
    const both = await runCli(['preview', '--dry-run', '--repo', `${git.url}/group/config-digest.git`, '--from', STAGING, '--image', `${IMAGE}:1`, '--dir', PROD]);
    expect(both.code, both.all).toBe(2);
    expect(both.stderr).toContain('--image and --from do not go together');
  });

  it('refuses without an MR (exit 2), and a bad token (exit 3, masked) before any work', async () => {
    const none = await runCli(['preview', '--base', 'a'.repeat(40), '--head', 'b'.repeat(40)], { env: { CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PROJECT_ID: '7' } });
    expect(none.code, none.all).toBe(2);
    expect(none.stderr).toContain('EPREVIEW_NO_MR');
    const iid = await openMr();
    const bad = 'glpat-NotAValidToken999';
    const res = await runCli(['preview', '--base', 'a'.repeat(40), '--head', 'b'.repeat(40)], { env: { ...glEnv(iid), GITOPS_GITLAB_TOKEN: bad } });
    expect(res.code, res.all).toBe(3);
    for (const f of leakForms(bad, ['oauth2'])) expect(res.all).not.toContain(f);
    expect(notes(iid)).toHaveLength(0);
  });
});

describe('preview: forks, the MR project, what the note says', () => {
  it('a fork MR pipeline without a token: exit 0 with one "skipped" line, nothing posted', async () => {
    const iid = await openMr();
    const c = checkout(seedLayout(IMAGE));
    const head = c.commit({ 'README.md': '# fork change\n' });
    // https://docs.gitlab.com/ci/variables/predefined_variables/#predefined-variables-for-merge-request-pipelines
    const env = { CI_API_V4_URL: gl.apiUrl, CI_PROJECT_ID: '8', CI_MERGE_REQUEST_PROJECT_ID: '7', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '8', CI_MERGE_REQUEST_IID: String(iid), CI_JOB_TOKEN: 'job-token-of-the-fork', CI_PROJECT_DIR: c.dir, CI_MERGE_REQUEST_DIFF_BASE_SHA: c.first, CI_COMMIT_SHA: head };
    const res = await runCli(['preview'], { env });
    expect(res.code, res.all).toBe(0);
    expect(res.all.split('\n').filter((l) => l.includes('skipped'))).toHaveLength(1);
    expect(res.stderr).toMatch(/skipped: this merge request comes from a fork .* run the pipeline in the parent project/);
    expect(notes(iid)).toHaveLength(0);
  });

  it('with the read token, the note goes to the MR project (not the fork), and "updated" only when the body changed', async () => {
    const iid = await openMr();
    const c = checkout(seedLayout(IMAGE));
    const head = c.commit({ [`${STAGING}/deployment_patch.yaml`]: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shovel\nspec:\n  replicas: 3\n' });
    const env = { CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_READ_TOKEN: gl.token, CI_PROJECT_ID: '8', CI_MERGE_REQUEST_PROJECT_ID: '7', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '8', CI_MERGE_REQUEST_IID: String(iid), CI_PROJECT_DIR: c.dir, CI_MERGE_REQUEST_DIFF_BASE_SHA: c.first, CI_COMMIT_SHA: head };
    const first = await runCli(['preview'], { env });
    expect(first.code, first.all).toBe(0);
    expect(notes(iid)).toHaveLength(1);
    expect(first.stderr).toContain('posted the preview note');
    // the same pipeline again (a retry): the body is the same, nothing is written, and the log says so
    const again = await runCli(['preview'], { env });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).not.toContain('updated the preview note');
    expect(again.stderr).toMatch(/the preview note \d+ on merge request !\d+ is up to date/);
    expect(notes(iid)).toHaveLength(1);
  });

  it('the production preview names its source: the staging app, the config commit Argo CD verified, the digests', async () => {
    const digest = `sha256:${'5e'.repeat(32)}`;
    const commit = 'c0ffee'.repeat(6) + 'c0ff';
    const res = await runCli(['preview', '--dry-run', '--repo', `${git.url}/group/config.git`, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}@${digest}`, '--source-app', 'shovel-staging', '--source-commit', commit], {
      env: { GITOPS_GIT_USER: git.user, GITOPS_GIT_TOKEN: git.password },
    });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`promoting what the Argo CD app \`shovel-staging\` runs at the config commit \`${commit}\` it verified (\`${IMAGE}@${digest}\`) changes in \`production\``);
    const bad = await runCli(['preview', '--dry-run', '--repo', `${git.url}/group/config.git`, '--dir', PROD, '--image', `${IMAGE}@${digest}`, '--source-commit', 'not-a-sha']);
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('--source-commit must be a commit SHA');
  });
});
