/**
 * gitops-ci bump end to end, against the smart-HTTP git server with basic auth: the commit it makes, no-op,
 * dry run, the sparse/shallow clone, the stale guard, races resolved by re-applying, and every failure's exit
 * code with the remote left untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { bareRepo, git, pushTree, pushTrees, seedLayout } from '../helpers/config-repo.js';
import { freePort, startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { configRepo, headOf, IMAGE, installHook, jobEnv, logOf, PROD, show, STAGING, sourceRepo } from './fixture.js';

let srv: GitServer;
beforeAll(async () => {
  srv = await startGitServer();
});
afterAll(() => srv?.stop());

/** receive-pack POSTs (pushes) the server saw for a repo */
const pushes = (name: string) => srv.requests.filter((q) => q.path.includes(name) && q.method === 'POST' && q.path.endsWith('git-receive-pack')).length;

const CI = {
  CI_PROJECT_PATH: 'shovel/app',
  CI_COMMIT_SHA: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  CI_COMMIT_REF_NAME: 'main',
  CI_PIPELINE_ID: '1042',
  CI_PIPELINE_URL: 'https://gitlab.example.com/shovel/app/-/pipelines/1042',
  CI_JOB_URL: 'https://gitlab.example.com/shovel/app/-/jobs/77',
  GITLAB_USER_NAME: 'Ada Lovelace',
  GITLAB_USER_EMAIL: 'ada@example.com',
};

/** tests that run many bumps or deepen a long history: minutes on a busy 2-core machine, not seconds (no timing is asserted) */
const SLOW = 180_000;

describe('bump: the commit', () => {
  it('sets the image, commits once with the environment, change list and trailers, and pushes', async () => {
    const r = configRepo(srv);
    const dotenv = join(tmp(), 'bump.env');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:1a2b3c4`, '--dotenv', dotenv], { env: jobEnv(srv, CI) });
    expect(res.code, res.all).toBe(0);
    const head = headOf(r.path);
    expect(head).not.toBe(r.head);
    expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
    // the edit keeps the file as written: only the tag line changes
    const after = show(r.path, `${PROD}/kustomization.yaml`);
    expect(after).toContain('newTag: "1a2b3c4" # set by gitops-ci');
    expect(after).toContain('# production overlay: CI bumps the image below; keep the comments');
    expect(show(r.path, `${STAGING}/kustomization.yaml`)).toContain('newTag: "3f2a9c1"');
    const msg = execFileSync('git', ['-C', r.path, 'log', '-1', '--format=%B', 'main']).toString();
    expect(msg.split('\n')[0]).toBe('[skip ci] bump shovel-gitops to 1a2b3c4 in production');
    expect(msg).toContain(`- ${IMAGE}: 3f2a9c1 → 1a2b3c4`);
    expect(msg).toContain(`Gitops-Image: ${IMAGE}=${IMAGE}:1a2b3c4`);
    expect(msg).toContain('Gitops-Source-Project: shovel/app');
    expect(msg).toContain(`Gitops-Source-Commit: ${CI.CI_COMMIT_SHA}`);
    expect(msg).toContain(`Gitops-Pipeline: ${CI.CI_PIPELINE_URL}`);
    expect(msg).toContain('Gitops-Pipeline-Id: 1042');
    expect(msg).toContain(`Gitops-Job: ${CI.CI_JOB_URL}`);
    expect(msg).toContain(`Gitops-Overlay: ${PROD}`);
    // git itself reads them as trailers
    const trailers = execFileSync('git', ['-C', r.path, 'log', '-1', '--format=%(trailers:key=Gitops-Pipeline-Id,valueonly)', 'main']).toString().trim();
    expect(trailers).toBe('1042');
    expect(execFileSync('git', ['-C', r.path, 'log', '-1', '--format=%an <%ae>', 'main']).toString().trim()).toBe('Ada Lovelace <ada@example.com>');
    const env = readFileSync(dotenv, 'utf8');
    expect(env).toContain('GITOPS_CHANGED=true');
    expect(env).toContain(`GITOPS_COMMIT_SHA=${head}`);
    expect(env).toContain(`GITOPS_CONFIG_HEAD=${head}`);
    expect(env).not.toContain('GITOPS_SKIPPED_REASON');
    expect(res.stderr).toContain(`pushed ${head}`);
  });

  it('names every environment, takes a --message template, and sends -o ci.skip instead of [skip ci] on request', async () => {
    const r = configRepo(srv);
    const opts = join(tmp(), 'push-options');
    installHook(r.path, 'pre-receive', `env | grep '^GIT_PUSH_OPTION_' > ${opts}; exit 0`);
    const res = await runCli(
      ['bump', '--repo', r.url, '--branch', 'main', '--dir', STAGING, '--dir', PROD, '--image', `${IMAGE}:v2`, '--skip-ci', 'push-option', '--message', 'deploy {image}:{tag} to {envs} from {project}@{short_sha}', '--author-name', 'Bot', '--author-email', 'bot@example.com'],
      { env: jobEnv(srv, CI) },
    );
    expect(res.code, res.all).toBe(0);
    const subject = execFileSync('git', ['-C', r.path, 'log', '-1', '--format=%s', 'main']).toString().trim();
    expect(subject).toBe('deploy shovel-gitops:v2 to staging, production from shovel/app@aaaaaaaa');
    expect(readFileSync(opts, 'utf8')).toContain('GIT_PUSH_OPTION_0=ci.skip');
    expect(execFileSync('git', ['-C', r.path, 'log', '-1', '--format=%an <%ae>', 'main']).toString().trim()).toBe('Bot <bot@example.com>');
  });

  it('is a no-op when the overlays already have the images: no commit, no push, exit 0', async () => {
    const r = configRepo(srv);
    const dotenv = join(tmp(), 'bump.env');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:3f2a9c1`, '--dotenv', dotenv], { env: jobEnv(srv, CI) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/no change/);
    expect(headOf(r.path)).toBe(r.head);
    expect(pushes(r.name)).toBe(0); // none at all (configRepo writes the seed without a push)
    const env = readFileSync(dotenv, 'utf8');
    expect(env).toContain('GITOPS_CHANGED=false');
    expect(env).toContain(`GITOPS_CONFIG_HEAD=${r.head}`);
    expect(env).not.toContain('GITOPS_COMMIT_SHA');
  });

  it('--dry-run prints the diff and pushes nothing', async () => {
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:9.9.9`, '--dry-run'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`--- a/${PROD}/kustomization.yaml`);
    expect(res.stdout).toContain('-    newTag: "3f2a9c1" # set by gitops-ci');
    expect(res.stdout).toContain('+    newTag: "9.9.9" # set by gitops-ci');
    expect(headOf(r.path)).toBe(r.head);
    expect(pushes(r.name)).toBe(0); // none at all (configRepo writes the seed without a push)
  });

  it('checks out what the overlay references, transitively (components, a base of the base), so --render builds', async () => {
    const seed = seedLayout(IMAGE);
    const prodK = seed[`${PROD}/kustomization.yaml`]!.replace('resources:\n  - ../../base\n', 'resources:\n  - ../../base\ncomponents:\n  - ../../components/labels\n');
    const r = configRepo(srv, {
      [`${PROD}/kustomization.yaml`]: prodK,
      '.kubernetes/base/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - service.yaml\n  - ../common\n',
      '.kubernetes/common/kustomization.yaml': 'resources:\n  - sa.yaml\n',
      '.kubernetes/common/sa.yaml': 'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: shovel\n',
      '.kubernetes/components/labels/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels:\n  team: shovel\n',
      '.kubernetes/components/unused/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n',
    });
    const work = join(tmp(), 'clone');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:closure`, '--render', '--workdir', work], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    for (const d of ['.kubernetes/base', '.kubernetes/common', '.kubernetes/components/labels']) expect(existsSync(join(work, d, 'kustomization.yaml')), d).toBe(true);
    expect(existsSync(join(work, '.kubernetes/components/unused'))).toBe(false);
    expect(existsSync(join(work, STAGING))).toBe(false);
  });

  it('takes a local path as the config repo', async () => {
    const bare = bareRepo(seedLayout(IMAGE));
    const res = await runCli(['bump', '--repo', bare, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:local`], { env: {} });
    expect(res.code, res.all).toBe(0);
    expect(show(bare, `${PROD}/kustomization.yaml`)).toContain('newTag: "local"');
  });

  it('clones only what it needs: depth 1, no blobs outside the overlays and their bases', async () => {
    const big: Record<string, string> = {};
    for (let i = 0; i < 50; i++) big[`apps/other-${i}/data.txt`] = `${i}`.repeat(5000);
    const r = configRepo(srv, big);
    pushTree(r.authUrl, { 'apps/other-0/more.txt': 'history' }); // more history
    const work = join(tmp(), 'clone');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:sparse`, '--workdir', work, '--render'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    // sparse: the overlay and the base it references, nothing else
    expect(existsSync(join(work, PROD, 'kustomization.yaml'))).toBe(true);
    expect(existsSync(join(work, '.kubernetes/base/deployment.yaml'))).toBe(true);
    expect(existsSync(join(work, STAGING))).toBe(false);
    expect(existsSync(join(work, 'apps'))).toBe(false);
    // shallow: one commit of history (plus ours)
    expect(git(work, ['rev-parse', '--is-shallow-repository'])).toBe('true');
    expect(Number(git(work, ['rev-list', '--count', 'HEAD']))).toBeLessThanOrEqual(2);
    // blob-filtered: the other apps' blobs were never fetched
    const missing = git(work, ['rev-list', '--objects', '--missing=print', 'HEAD~1']).split('\n').filter((l) => l.startsWith('?'));
    expect(missing.length).toBeGreaterThanOrEqual(50);
    // the token is nowhere in the clone's config
    expect(readFileSync(join(work, '.git/config'), 'utf8')).not.toContain(srv.password);
  });
});

describe('bump: stale-pipeline guard', () => {
  it('skips an image from an older pipeline (exit 0, says why), and --allow-downgrade rolls back on purpose', async () => {
    const r = configRepo(srv);
    const run = (tag: string, pipeline: string, extra: string[] = [], dotenv?: string) =>
      runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:${tag}`, ...extra, ...(dotenv ? ['--dotenv', dotenv] : [])], {
        env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: pipeline, CI_COMMIT_SHA: `${pipeline.padStart(4, '0')}`.repeat(10) }),
      });
    expect((await run('new', '200')).code).toBe(0);
    const head = headOf(r.path);
    const dotenv = join(tmp(), 'bump.env');
    const stale = await run('old', '100', [], dotenv);
    expect(stale.code, stale.all).toBe(0);
    expect(stale.stderr).toMatch(/skipped .*shovel-gitops.*pipeline 100 is older than pipeline 200/);
    expect(headOf(r.path)).toBe(head);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "new"');
    const env = readFileSync(dotenv, 'utf8');
    expect(env).toContain('GITOPS_CHANGED=false');
    expect(env).toMatch(/GITOPS_SKIPPED_REASON=stale: .*shovel-gitops/);
    const back = await run('old', '100', ['--allow-downgrade']);
    expect(back.code, back.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "old"');
  });

  it('concurrent bumps of one image finishing out of order: the newest pipeline wins', async () => {
    const r = configRepo(srv);
    const ids = [305, 301, 309, 303, 307, 302, 308, 304];
    const results = await Promise.all(
      ids.map((id) => runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:p${id}`], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: String(id) }) })),
    );
    for (const x of results) expect(x.code, x.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "p309"');
    // and an older one arriving after is refused
    const late = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:p306`], { env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: '306' }) });
    expect(late.code).toBe(0);
    expect(late.stderr).toMatch(/skipped/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "p309"');
  }, SLOW);

  it('with the source repo at hand, git ancestry decides, not pipeline ids', async () => {
    const r = configRepo(srv);
    const src = sourceRepo(5);
    // pipeline ids in the opposite order of the commits (e.g. re-run pipelines): ancestry must win
    const jobs = src.commits.map((sha, i) => ({ sha, pipeline: String(900 - i), tag: `c${i + 1}` }));
    const results = await Promise.all(
      [jobs[3]!, jobs[0]!, jobs[4]!, jobs[1]!, jobs[2]!].map((j) =>
        runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:${j.tag}`, '--source-repo', src.dir], {
          env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: j.pipeline, CI_COMMIT_SHA: j.sha }),
        }),
      ),
    );
    for (const x of results) expect(x.code, x.all).toBe(0);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "c5"');
    // an ancestor arriving late is skipped, by ancestry; CI_PROJECT_DIR is the default source repo
    const late = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:c2`], {
      env: jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: '999', CI_COMMIT_SHA: src.commits[1]!, CI_PROJECT_DIR: src.dir }),
    });
    expect(late.code, late.all).toBe(0);
    expect(late.stderr).toMatch(/skipped .*is an ancestor of/);
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "c5"');
  }, SLOW);
});

describe('bump: stale guard history', () => {
  it('finds the last bump of an image behind other commits to the same file (deepening the shallow clone), within --history-depth', async () => {
    const r = configRepo(srv);
    const env = (pipeline: string) => jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: pipeline });
    expect((await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:deep`], { env: env('500') })).code).toBe(0);
    // 25 later commits touch the same kustomization (hand edits), and others elsewhere
    const file = `${PROD}/kustomization.yaml`;
    let text = show(r.path, file);
    const edits = [];
    for (let i = 0; i < 25; i++) {
      text += `# note ${i}\n`;
      edits.push({ [file]: text, [`docs/n${i}.md`]: `${i}\n` });
    }
    pushTrees(r.authUrl, edits); // 25 commits, one push
    const stale = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:older`], { env: env('400') });
    expect(stale.code, stale.all).toBe(0);
    expect(stale.stderr).toMatch(/skipped .*pipeline 400 is older than pipeline 500/);
    // a shorter look-back does not reach it: the value's provenance is unknown and the guard stands aside
    const blind = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:older`, '--history-depth', '10', '-v'], { env: env('400') });
    expect(blind.code, blind.all).toBe(0);
    expect(blind.stderr).toMatch(/no bump commit records .* within 10 commits; not guarded/);
    expect(show(r.path, file)).toContain('newTag: "older"');
  }, SLOW);

  it('a retry on a new tip re-runs the guard on what was already read: the history is not deepened again', async () => {
    const r = configRepo(srv);
    const env = (pipeline: string) => jobEnv(srv, { CI_PROJECT_PATH: 'shovel/app', CI_PIPELINE_ID: pipeline });
    expect((await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:deep`], { env: env('500') })).code).toBe(0);
    const file = `${PROD}/kustomization.yaml`;
    let text = show(r.path, file);
    const edits = [];
    for (let i = 0; i < 25; i++) {
      text += `# note ${i}\n`;
      edits.push({ [file]: text });
    }
    const head = pushTrees(r.authUrl, edits).at(-1)!; // 25 commits, one push
    // someone else's commit lands on main during our first push
    const other = pushTree(r.authUrl, { 'README.md': 'someone else\n' });
    execFileSync('git', ['-C', r.path, 'update-ref', 'refs/heads/main', head]);
    const marker = join(tmp(), 'moved');
    installHook(r.path, 'pre-receive', `if [ ! -e ${marker} ]; then touch ${marker}; env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main ${other}; fi; exit 0`);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:newer`, '-v'], { env: env('600') });
    expect(res.code, res.all).toBe(0);
    const [first, retry] = res.stderr.split(/push rejected, main moved/);
    expect(retry, res.all).toBeDefined();
    // the first attempt had to deepen to find pipeline 500's bump; the retry found it in what it had read
    expect(first).toMatch(/git fetch .*--deepen=/);
    expect(retry).not.toMatch(/--deepen=/);
    expect(retry).toMatch(/stale guard .*pipeline 600 is not older than pipeline 500/);
    expect(logOf(r.path, 'main', '%P')[0]).toBe(other);
    expect(show(r.path, file)).toContain('newTag: "newer"');
  }, SLOW);
});

describe('bump: races', () => {
  it('re-applies on the new tip when the branch moved between fetch and push (cannot lock ref), losing nothing', async () => {
    const r = configRepo(srv);
    // another change, prepared on a side branch; the hook moves main to it during our first push
    const other = pushTree(r.authUrl, { 'README.md': 'someone else\n' }, { branch: 'main' });
    execFileSync('git', ['-C', r.path, 'update-ref', 'refs/heads/main', r.head]);
    const marker = join(tmp(), 'moved');
    installHook(r.path, 'pre-receive', `if [ ! -e ${marker} ]; then touch ${marker}; env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main ${other}; fi; exit 0`);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:raced`, '-v'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/push rejected, main moved \(attempt 1\/20\)/);
    expect(logOf(r.path, 'main', '%P')[0]).toBe(other); // our commit sits on top of the other change
    expect(show(r.path, 'README.md')).toBe('someone else\n');
    expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "raced"');
  });

  it('with --render, a retry on a tip whose overlay references a new directory checks that one out too', async () => {
    const r = configRepo(srv);
    const file = `${PROD}/kustomization.yaml`;
    // the other change adds a component to the overlay; the hook lands it during our first push
    const text = show(r.path, file).replace(/^resources:\n/m, 'components:\n  - ../../components/extra\nresources:\n');
    expect(text).toContain('../../components/extra');
    const other = pushTree(r.authUrl, {
      [file]: text,
      '.kubernetes/components/extra/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels:\n  extra: "yes"\n',
    });
    execFileSync('git', ['-C', r.path, 'update-ref', 'refs/heads/main', r.head]);
    const marker = join(tmp(), 'moved');
    installHook(r.path, 'pre-receive', `if [ ! -e ${marker} ]; then touch ${marker}; env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main ${other}; fi; exit 0`);
    const work = join(tmp(), 'clone');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:rendered`, '--render', '--workdir', work, '-v'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(0);
    const [first, retry] = res.stderr.split(/push rejected, main moved/);
    expect(retry, res.all).toBeDefined();
    expect(first).not.toMatch(/sparse-checkout add .*components\/extra/);
    // only the new reference is added; the base already checked out is not asked about again
    expect(retry).toMatch(/git sparse-checkout add -- \.kubernetes\/components\/extra\n/);
    expect(retry).not.toMatch(/sparse-checkout add .*\.kubernetes\/base/);
    expect(existsSync(join(work, '.kubernetes/components/extra/kustomization.yaml'))).toBe(true);
    expect(logOf(r.path, 'main', '%P')[0]).toBe(other);
    expect(show(r.path, file)).toContain('newTag: "rendered"');
  });

  it('gives up after --max-attempts with a clear error (exit 1), nothing pushed', async () => {
    const r = configRepo(srv);
    const other = pushTree(r.authUrl, { 'README.md': 'someone else\n' });
    execFileSync('git', ['-C', r.path, 'update-ref', 'refs/heads/main', r.head]);
    const marker = join(tmp(), 'moved');
    installHook(r.path, 'pre-receive', `if [ ! -e ${marker} ]; then touch ${marker}; env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main ${other}; fi; exit 0`);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:once`, '--max-attempts', '1'], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EBUMP_RACE_EXHAUSTED');
    expect(res.stderr).toMatch(/resource_group/);
    expect(headOf(r.path)).toBe(other);
  });

  it('fails with a conflict (exit 1) when the overlay is gone at the new tip, and pushes nothing', async () => {
    const r = configRepo(srv);
    const other = pushTree(r.authUrl, {}, { remove: [PROD], message: 'drop production' });
    execFileSync('git', ['-C', r.path, 'update-ref', 'refs/heads/main', r.head]);
    const marker = join(tmp(), 'moved');
    installHook(r.path, 'pre-receive', `if [ ! -e ${marker} ]; then touch ${marker}; env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main ${other}; fi; exit 0`);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:conflict`], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EBUMP_CONFLICT');
    expect(res.stderr).toMatch(/no longer holds a kustomization/);
    expect(headOf(r.path)).toBe(other);
  });
});

/** an HTTP proxy to the git server that answers the first push with 502, after forwarding it or not */
async function flakyProxy(mode: 'landed' | 'lost'): Promise<{ url: string; close(): void }> {
  let failed = false;
  const target = new URL(srv.url);
  const proxy = http.createServer((req, res) => {
    const push = req.method === 'POST' && req.url?.endsWith('/git-receive-pack');
    if (push && !failed && mode === 'lost') {
      failed = true;
      req.resume();
      req.on('end', () => {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end('Bad Gateway');
      });
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      if (push && !failed) {
        failed = true;
        ur.resume();
        ur.on('end', () => {
          res.writeHead(502, { 'Content-Type': 'text/plain' });
          res.end('Bad Gateway');
        });
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, close: () => proxy.close() };
}

describe('bump: a push that fails in transit (HTTP 502)', () => {
  it('landed anyway: recognised as pushed, once', async () => {
    const r = configRepo(srv);
    const px = await flakyProxy('landed');
    try {
      const dotenv = join(tmp(), 'bump.env');
      const res = await runCli(['bump', '--repo', `${px.url}/${r.name}`, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:transit`, '--dotenv', dotenv], { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(0);
      expect(res.stderr).toMatch(/checking whether it landed/);
      expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
      expect(readFileSync(dotenv, 'utf8')).toContain(`GITOPS_COMMIT_SHA=${headOf(r.path)}`);
    } finally {
      px.close();
    }
  });

  it('lost: re-applied and pushed again', async () => {
    const r = configRepo(srv);
    const px = await flakyProxy('lost');
    try {
      const res = await runCli(['bump', '--repo', `${px.url}/${r.name}`, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:transit`], { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(0);
      expect(res.stderr).toMatch(/it did not; re-applying/);
      expect(logOf(r.path, `${r.head}..main`)).toHaveLength(1);
      expect(show(r.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "transit"');
    } finally {
      px.close();
    }
  });
});

describe('bump: failures leave the remote untouched, each with its exit code', () => {
  it('a pre-receive hook / protected branch refusal: exit 1, with the server message', async () => {
    const r = configRepo(srv);
    installHook(r.path, 'pre-receive', 'echo "GitLab: You are not allowed to push code to protected branches on this project." >&2; exit 1');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:nope`], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EGIT_PUSH_REJECTED');
    expect(res.stderr).toContain('remote: GitLab: You are not allowed to push code to protected branches on this project.');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a missing branch: exit 2', async () => {
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'release', '--dir', PROD, '--image', `${IMAGE}:x`], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EGIT_BRANCH_NOT_FOUND');
    expect(res.stderr).toContain('"release"');
  });

  it('a missing overlay: exit 2, naming all of them, nothing pushed', async () => {
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--dir', '.kubernetes/overlays/qa', '--dir', 'nope', '--image', `${IMAGE}:x`], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EBUMP_OVERLAY_NOT_FOUND');
    expect(res.stderr).toContain('.kubernetes/overlays/qa, nope');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('an unreachable remote: exit 75', async () => {
    const port = await freePort();
    const res = await runCli(['bump', '--repo', `http://127.0.0.1:${port}/group/config.git`, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`], { env: jobEnv(srv) });
    expect(res.code, res.all).toBe(75);
    expect(res.stderr).toContain('EGIT_UNREACHABLE');
  });

  it('a server error (HTTP 502): exit 75', async () => {
    const bad = http.createServer((_q, res) => {
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end('Bad Gateway');
    });
    await new Promise<void>((ok) => bad.listen(0, '127.0.0.1', ok));
    try {
      const port = (bad.address() as { port: number }).port;
      const res = await runCli(['bump', '--repo', `http://127.0.0.1:${port}/group/config.git`, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`], { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(75);
      expect(res.stderr).toMatch(/502/);
    } finally {
      bad.close();
    }
  });

  it('a server that never answers: stopped at --timeout, exit 4', async () => {
    const socks: net.Socket[] = [];
    const mute = net.createServer((s) => void socks.push(s));
    await new Promise<void>((ok) => mute.listen(0, '127.0.0.1', ok));
    try {
      const port = (mute.address() as { port: number }).port;
      const res = await runCli(['bump', '--repo', `http://127.0.0.1:${port}/group/config.git`, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`, '--timeout', '2'], { env: jobEnv(srv) });
      expect(res.code, res.all).toBe(4);
      expect(res.stderr).toContain('EGIT_TIMEOUT');
    } finally {
      for (const x of socks) x.destroy();
      mute.close();
    }
  });

  it('bad credentials: exit 3', async () => {
    const r = configRepo(srv);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`], { env: { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: 'wrong-token-value' } });
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGIT_AUTH');
    const none = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:x`], { env: {} });
    expect(none.code, none.all).toBe(3);
  });

  it('bad configuration is reported all at once before anything is cloned: exit 2', async () => {
    const res = await runCli(['bump', '--dir', '../escape', '--image', 'no tag here', '--skip-ci', 'maybe', '--message', '{nope}'], { env: {} });
    expect(res.code, res.all).toBe(2);
    for (const s of ['no config repo', 'no branch', '--dir "../escape"', 'invalid image expression', '--skip-ci must be', 'unknown placeholder']) expect(res.stderr).toContain(s);
  });
});
