/**
 * Hostile audit of promotion, the stale-pipeline guard and rollback (docs/commands/promote.md, bump.md
 * "Stale-pipeline guard" and "Which provenance is trusted", rollback.md): cases no other test covers, through the
 * CLI bundle against the real git server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { pushTree, seedBare } from '../helpers/config-repo.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { configRepo, jobEnv, show } from '../bump/fixture.js';
import { DIGEST, IMAGE, PROD, STAGING, layout, messageOf } from '../promote/fixture.js';

let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
beforeAll(async () => {
  srv = await startGitServer();
  srv.createRepo('group/mr1.git');
  srv.createRepo('group/mr2.git');
  srv.createRepo('shovel/app.git');
  srv.createRepo('shovel/other.git');
  gl = await startGitlabDouble({
    git: srv,
    projects: [
      { path: 'group/mr1', repo: 'group/mr1.git', id: 501 },
      { path: 'group/mr2', repo: 'group/mr2.git', id: 502 },
      { path: 'shovel/app', repo: 'shovel/app.git', id: 601 },
      { path: 'shovel/other', repo: 'shovel/other.git', id: 602 },
    ], users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }], onResponse: recorder.onResponse });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  srv?.stop();
});

const WRITEBACK = { name: 'gitops-ci', email: 'gitops-ci@noreply.invalid' };
const API = 'registry.example.com/shovel/api';
const dg = (c: string) => `sha256:${c.repeat(64)}`;
const sha = (c: string) => c.repeat(40);

/** `kubectl kustomize` of an overlay at the tip of main: what Argo CD would deploy */
async function kustomize(url: string, overlay: string): Promise<string> {
  const dir = join(tmp(), 'render');
  execFileSync('git', ['clone', '-q', '--depth=1', url, dir]);
  return execFileSync('kubectl', ['kustomize', join(dir, overlay)], { timeout: 60_000 }).toString();
}

/** a bump commit as bump writes it (write-back identity, trailers in the last paragraph) */
function bumpMessage(image: string, ref: string, project: string, commit: string, pipeline: number): string {
  return [
    `[skip ci] bump ${image} in staging`,
    '',
    'staging:',
    '- x',
    '',
    `Gitops-Overlay: ${STAGING}`,
    `Gitops-Image: ${image}=${ref}`,
    `Gitops-Source-Project: ${project}`,
    `Gitops-Source-Commit: ${commit}`,
    `Gitops-Pipeline-Id: ${pipeline}`,
    '',
  ].join('\n');
}

describe('promote: provenance of several images', () => {
  it('a promotion of two images built by different pipelines does not give the second the first one\'s pipeline, so a newer bump of it is not refused as stale', async () => {
    const r = configRepo(srv);
    const file = `${STAGING}/kustomization.yaml`;
    const one = `  - name: ${IMAGE}\n    digest: ${dg('a')}\n`;
    const two = `${one}  - name: ${API}\n    digest: ${dg('b')}\n`;
    // staging: the app image built by pipeline 900 of shovel/app, the api image by pipeline 500 of shovel/api
    pushTree(r.authUrl, { [file]: layout(one)[file]! }, { message: bumpMessage(IMAGE, `${IMAGE}@${dg('a')}`, 'shovel/app', sha('a'), 900), committer: WRITEBACK });
    pushTree(r.authUrl, { [file]: layout(two)[file]! }, { message: bumpMessage(API, `${API}@${dg('b')}`, 'shovel/api', sha('b'), 500), committer: WRITEBACK });

    const promoted = await runCli(['promote', '--repo', r.url, '--branch', 'main', '--from', STAGING, '--to', PROD], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/config', CI_PIPELINE_ID: '2001' }) });
    expect(promoted.code, promoted.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(dg('b'));
    const msg = messageOf(r.path);
    expect(msg).toContain(`Gitops-Image: ${API}=${API}@${dg('b')}`);
    // one set of Gitops-Source-* trailers cannot speak for two builds: pipeline 900 is not the api image's
    expect(msg).not.toContain('Gitops-Pipeline-Id: 900');

    // pipeline 600 of shovel/api built a newer api image: production must take it (500 < 600)
    const bumped = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${API}@${dg('c')}`], {
      env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/api', CI_COMMIT_SHA: sha('c'), CI_PIPELINE_ID: '600' }),
    });
    expect(bumped.code, bumped.all).toBe(0);
    expect(bumped.all).not.toMatch(/stale/i);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(dg('c'));
  });
});

describe('promote: the source names an image twice', () => {
  it('moves the digest kustomize deploys in the source (the last entry of a name wins there), as one entry in the target', async () => {
    const r = configRepo(srv);
    const file = `${STAGING}/kustomization.yaml`;
    const two = `  - name: ${IMAGE}\n    digest: ${dg('a')}\n  - name: ${IMAGE}\n    digest: ${dg('b')}\n`;
    pushTree(r.authUrl, { [file]: layout(two)[file]! }, { message: 'staging lists the image twice', committer: WRITEBACK });
    // what staging really runs: kustomize applies the images entries in order, so the second one wins
    const rendered = await kustomize(r.authUrl, STAGING);
    expect(rendered).toContain(`image: ${IMAGE}@${dg('b')}`);
    expect(rendered).not.toContain(dg('a'));
    const res = await runCli(['promote', '--repo', r.url, '--branch', 'main', '--from', STAGING, '--to', PROD], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/config', CI_PIPELINE_ID: '2001' }) });
    expect(res.code, res.all).toBe(0);
    const prod = show(r.path, `${PROD}/kustomization.yaml`);
    expect(prod).toContain(`digest: ${dg('b')}`);
    expect(prod).not.toContain(dg('a'));
    expect(prod.match(new RegExp(`name: ${IMAGE}$`, 'gm'))).toHaveLength(1);
  });
});

describe('promote --via mr: the promotion branch', () => {
  it('a commit someone else put on gitops-ci/promote/<env> with the same tree and parent but their own message and committer is replaced, not reused', async () => {
    const bare = srv.repoPath('group/mr1.git');
    seedBare(bare, layout(), { message: 'initial config' });
    const url = `${srv.url}/group/mr1.git`;
    const env = { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PIPELINE_ID: '3001', CI_JOB_URL: 'https://gitlab.example.com/group/mr1/-/jobs/7001' };
    const args = ['promote', '--repo', url, '--branch', 'main', '--from', STAGING, '--to', PROD, '--via', 'mr'];
    const first = await runCli(args, { env });
    expect(first.code, first.all).toBe(0);
    const BRANCH = 'gitops-ci/promote/production';
    const g = (...a: string[]) => execFileSync('git', ['-C', bare, ...a]).toString().trim();
    const ours = g('rev-parse', BRANCH);
    // the same change, re-made by hand: same tree, same parent, a message claiming a huge pipeline, another committer
    const forged = execFileSync('git', ['-C', bare, 'commit-tree', `${ours}^{tree}`, '-p', `${ours}^`, '-m', `promote by hand\n\nGitops-Image: ${IMAGE}=${IMAGE}@${DIGEST}\nGitops-Pipeline-Id: 999999999`], {
      env: { ...process.env, GIT_AUTHOR_NAME: 'mallory', GIT_AUTHOR_EMAIL: 'm@example.com', GIT_COMMITTER_NAME: 'mallory', GIT_COMMITTER_EMAIL: 'm@example.com' },
    }).toString().trim();
    g('update-ref', `refs/heads/${BRANCH}`, forged);

    const again = await runCli(args, { env });
    expect(again.code, again.all).toBe(0);
    const now = g('rev-parse', BRANCH);
    expect(now).not.toBe(forged);
    expect(g('log', '-1', '--format=%cn <%ce>', BRANCH)).toBe('gitops-ci <gitops-ci@noreply.invalid>');
    expect(g('log', '-1', '--format=%B', BRANCH)).toContain(`Gitops-Promoted-From: ${STAGING}`);
    expect(g('log', '-1', '--format=%B', BRANCH)).not.toContain('999999999');
    // the MR merges what the branch holds now
    expect((gl.hooks.mergeRequests('group/mr1') as Array<Record<string, unknown>>).find((m) => m.state === 'opened')?.sha).toBe(now);

    // and a plain re-run with nothing changed still reuses our own commit (idempotent)
    const third = await runCli(args, { env: { ...env, CI_JOB_URL: 'https://gitlab.example.com/group/mr1/-/jobs/7002' } });
    expect(third.code, third.all).toBe(0);
    expect(g('rev-parse', BRANCH)).toBe(now);
    expect(third.all).toContain('already holds this promotion');
  });
});

describe('rollback --to: only earlier states of the branch', () => {
  it('a config commit or a digest that only another branch pins is refused (EROLLBACK_NO_TARGET, exit 1), nothing pushed, even with --allow-unverified', async () => {
    const r = configRepo(srv);
    const file = `${STAGING}/kustomization.yaml`;
    const pin = (c: string) => layout(`  - name: ${IMAGE}\n    digest: ${dg(c)}\n`)[file]!;
    pushTree(r.authUrl, { [file]: pin('1') }, { message: 'staging at 1', committer: WRITEBACK });
    pushTree(r.authUrl, { [file]: pin('2') }, { message: 'staging at 2', committer: WRITEBACK });
    // a side branch pins a digest main never ran
    const side = pushTree(r.authUrl, { [file]: pin('9') }, { message: 'side branch', committer: WRITEBACK, branch: 'side' });
    const tip = execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim();
    const run = (to: string) => runCli(['rollback', '--repo', r.url, '--branch', 'main', '--env', 'staging', '--to', to, '--allow-unverified'], { env: jobEnv(srv) });
    for (const to of [side, dg('9')]) {
      const res = await run(to);
      expect(res.code, res.all).toBe(1);
      expect(res.stderr).toContain('EROLLBACK_NO_TARGET');
      expect(execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim()).toBe(tip);
    }
    // the state main did run before is a target (--allow-unverified: no Argo CD here)
    const ok = await run(dg('1'));
    expect(ok.code, ok.all).toBe(0);
    expect(show(r.path, file)).toContain(`digest: ${dg('1')}`);
  });
});

describe('stale guard: --history-depth reached', () => {
  it('when the last bump of the image is beyond --history-depth, the guard stands aside with a warning naming the limit, not silently', async () => {
    const r = configRepo(srv);
    const file = `${PROD}/kustomization.yaml`;
    const base = show(r.path, file);
    const p900 = base.replace(/newTag: .*/, 'newTag: "p900"');
    const msg = [`[skip ci] bump shovel-gitops to p900 in production`, '', 'production:', '- x', '', `Gitops-Overlay: ${PROD}`, `Gitops-Image: ${IMAGE}=${IMAGE}:p900`, 'Gitops-Source-Project: shovel/app', `Gitops-Source-Commit: ${sha('9')}`, 'Gitops-Pipeline-Id: 900', ''].join('\n');
    pushTree(r.authUrl, { [file]: p900 }, { message: msg, committer: WRITEBACK });
    // four hand edits of the same file (comments) after it, by a person
    for (let i = 1; i <= 4; i++) pushTree(r.authUrl, { [file]: `${p900}# note ${i}\n` }, { message: `note ${i}`, committer: { name: 'alice', email: 'alice@example.com' } });
    const tip = execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim();
    const bump = (...more: string[]) => runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:p100`, '--dry-run', ...more], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_COMMIT_SHA: sha('1'), CI_PIPELINE_ID: '100' }) });
    // within the default depth: pipeline 100 is older than 900, skipped
    const deep = await bump();
    expect(deep.code, deep.all).toBe(0);
    expect(deep.stderr).toMatch(/pipeline 100 is older than pipeline 900/);
    // beyond --history-depth 3: nothing known, the guard stands aside, and says so at the default log level
    const shallow = await bump('--history-depth', '3');
    expect(shallow.code, shallow.all).toBe(0);
    expect(shallow.stderr).toMatch(/stale guard.*--history-depth 3.*not guarded/);
    expect(execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim()).toBe(tip);
  });
});

describe('rollback --via mr and promote --via mr', () => {
  it('a promotion run does not close (or take over) an open rollback merge request of the same environment', async () => {
    const bare = srv.repoPath('group/mr2.git');
    const both = (c: string) => {
      const t = layout(`  - name: ${IMAGE}\n    digest: ${dg(c)}\n`);
      const k = `${PROD}/kustomization.yaml`;
      return { ...t, [k]: t[k]!.replace(/images:\n[\s\S]*$/, `images:\n  - name: ${IMAGE}\n    digest: ${dg(c)}\n`) };
    };
    seedBare(bare, both('1'), { message: 'release 1' });
    pushTree(srv.authUrl('group/mr2.git'), both('2'), { message: 'release 2', committer: WRITEBACK });
    const g = (...a: string[]) => execFileSync('git', ['-C', bare, ...a]).toString().trim();
    const first = g('rev-parse', 'main~1');
    const url = `${srv.url}/group/mr2.git`;
    const env = { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, CI_PIPELINE_ID: '3001' };
    const rb = await runCli(['rollback', '--repo', url, '--branch', 'main', '--env', 'production', '--to', first, '--allow-unverified', '--via', 'mr', '--gitlab-project', 'group/mr2'], { env });
    expect(rb.code, rb.all).toBe(0);
    const open = () => (gl.hooks.mergeRequests('group/mr2') as Array<Record<string, any>>).filter((m) => m.state === 'opened');
    expect(open()).toHaveLength(1);
    const rollbackMr = open()[0]!;
    expect(rollbackMr.title).toMatch(/^Rollback production to /);
    const rollbackSha = rollbackMr.sha;

    // staging and production both run release 2: a promotion has nothing to do, and must leave the rollback MR alone
    const pr = await runCli(['promote', '--repo', url, '--branch', 'main', '--from', STAGING, '--to', PROD, '--via', 'mr'], { env });
    expect(pr.code, pr.all).toBe(0);
    expect(open().map((m) => m.iid)).toEqual([rollbackMr.iid]);
    expect(open()[0]!.sha).toBe(rollbackSha);
    expect(open()[0]!.title).toBe(rollbackMr.title);
  });
});

describe('stale guard: a pipeline of another project', () => {
  it('a write-back commit recording shovel/app with the id of a newer pipeline that belongs to shovel/other is not trusted: the newer bump goes ahead', async () => {
    const r = configRepo(srv);
    const file = `${PROD}/kustomization.yaml`;
    const mine = gl.hooks.addPipeline('shovel/app', { sha: sha('1') });
    const theirs = gl.hooks.addPipeline('shovel/other', { sha: sha('e') });
    expect(theirs).toBeGreaterThan(mine);
    const text = show(r.path, file).replace(/newTag: .*/, 'newTag: "claimed"');
    const msg = ['bump', '', `Gitops-Image: ${IMAGE}=${IMAGE}:claimed`, 'Gitops-Source-Project: shovel/app', `Gitops-Source-Commit: ${sha('e')}`, `Gitops-Pipeline-Id: ${theirs}`, ''].join('\n');
    pushTree(r.authUrl, { [file]: text }, { message: msg, committer: WRITEBACK });
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:next`], {
      env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: String(mine), CI_COMMIT_SHA: sha('1'), CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_READ_TOKEN: gl.token }),
    });
    expect(res.code, res.all).toBe(0);
    expect(show(r.path, file)).toContain('newTag: "next"');
    expect(res.stderr).toMatch(new RegExp(`pipeline ${theirs} of shovel/app .*not trusted`));
  });
});

describe('a re-run after a rollback', () => {
  it('a re-run of the deploy job a rollback went back from is refused (EROLLBACK_RERUN_REFUSED), not a silent undo; a new pipeline, or GITOPS_ON_RERUN=rollback, deploys', async () => {
    const r = configRepo(srv);
    const file = `${PROD}/kustomization.yaml`;
    const bump = (n: string, pipeline: string, extra: NodeJS.ProcessEnv = {}) =>
      runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}@${dg(n)}`], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: pipeline, CI_COMMIT_SHA: sha(n), ...extra }) });
    expect((await bump('1', '101')).code).toBe(0);
    expect((await bump('2', '102')).code).toBe(0);
    const rb = await runCli(['rollback', '--repo', r.url, '--branch', 'main', '--env', 'production', '--to', dg('1'), '--allow-unverified'], { env: jobEnv(srv) });
    expect(rb.code, rb.all).toBe(0);
    const tip = execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim();
    expect(show(r.path, file)).toContain(dg('1'));

    // pipeline 102's deploy job retried: before, it pushed 2 again (exit 0), undoing the rollback without a word
    const rerun = await bump('2', '102');
    expect(rerun.code, rerun.all).toBe(1);
    expect(rerun.stderr).toContain('EROLLBACK_RERUN_REFUSED');
    expect(rerun.stderr).toContain("re-runs pipeline 102's deploy to production");
    expect(execFileSync('git', ['-C', r.path, 'rev-parse', 'main']).toString().trim()).toBe(tip);

    // on purpose: GITOPS_ON_RERUN=rollback lets the re-run set what it deploys
    const allowed = await bump('2', '102', { GITOPS_ON_RERUN: 'rollback' });
    expect(allowed.code, allowed.all).toBe(0);
    expect(show(r.path, file)).toContain(dg('2'));
  });

  it('a new pipeline after a rollback is not a re-run: it deploys', async () => {
    const r = configRepo(srv);
    const bump = (n: string, pipeline: string) => runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}@${dg(n)}`], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: pipeline, CI_COMMIT_SHA: sha(n) }) });
    expect((await bump('1', '101')).code).toBe(0);
    expect((await bump('2', '102')).code).toBe(0);
    expect((await runCli(['rollback', '--repo', r.url, '--branch', 'main', '--env', 'production', '--to', dg('1'), '--allow-unverified'], { env: jobEnv(srv) })).code).toBe(0);
    const next = await bump('3', '103');
    expect(next.code, next.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain(dg('3'));
  });
});
