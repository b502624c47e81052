/**
 * Review apps (issue #19 item 1): `review up` writes a merge request's overlay under review/ through bump's
 * race-safe write-back, the Argo CD double's ApplicationSet (git directories generator `review/*`) generates the
 * app, `argocd wait --wait-created` waits until it runs the commit healthy; `review down` removes the directory and
 * `argocd wait --gone` waits until Argo CD deleted the app (404). Real git (a bare repo, the smart-HTTP server),
 * real kustomize (the double renders with `kubectl kustomize`); every double response is validated against
 * Argo CD's swagger (test/argocd/contract.ts, in stopFixtures).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { bareRepo, git, seedLayout } from '../helpers/config-repo.js';
import { runCli } from '../helpers/cli.js';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { runAbused } from '../security/abuse.js';
import { readDotenv, setup, stopFixtures, tmpFile, type Fixture } from '../argocd/fixture.js';
import { configRepo, headOf, IMAGE, installHook, logOf, show, STAGING } from '../bump/fixture.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const SHA = (c: string) => c.repeat(40);
const APPSET = { name: 'shovel-review', directories: 'review/*', template: { name: 'shovel-review-{{path.basename}}', path: '{{path}}', targetRevision: 'main', destinationNamespace: 'review-{{path.basename}}', labels: { env: 'review' } } };

/** the environment of an MR pipeline's job (GitLab's predefined variables) */
const mrJob = (iid: string, pipeline: string, commit: string): NodeJS.ProcessEnv => ({ CI_MERGE_REQUEST_IID: iid, CI_PIPELINE_ID: pipeline, CI_COMMIT_SHA: commit, CI_PROJECT_PATH: 'shovel/shovel-gitops' });

const up = (repo: string, env: string, d: string, extra: string[] = []) => ['review', 'up', '--repo', repo, '--branch', 'main', '--env', env, '--base', STAGING, '--image', `${IMAGE}@${d}`, ...extra];
const down = (repo: string, env: string, extra: string[] = []) => ['review', 'down', '--repo', repo, '--branch', 'main', '--env', env, ...extra];
const tree = (bare: string) => execFileSync('git', ['-C', bare, 'ls-tree', '-r', '--name-only', 'main']).toString().split('\n').filter((f) => f.startsWith('review/'));

/** a config repo without Argo CD (the write-back alone): the same shape as the fixture's */
function plain(): Pick<Fixture, 'repo' | 'tip' | 'cli'> {
  const repo = bareRepo(seedLayout(IMAGE));
  return { repo, tip: () => headOf(repo), cli: (args, env = {}) => runCli(args, { env, timeoutMs: 60_000 }) };
}

let fx: Fixture;
afterEach(() => stopFixtures({ checked: true }));

describe('review up / review down with Argo CD', () => {
  it('up: the ApplicationSet generates the app and it runs the digest healthy; down: the app is deleted (404)', async () => {
    fx = await setup({ apps: [], appsets: [APPSET], pollIntervalMs: 200 });
    const env = mrJob('7', '1007', SHA('a'));
    const dot = tmpFile('up.env');
    let r = await fx.cli(up(fx.repo, 'review/mr-7', digest('a'), ['--dotenv', dot]), env);
    expect(r.code, r.all).toBe(0);
    const out = readDotenv(dot);
    expect(out).toMatchObject({ GITOPS_CHANGED: 'true', GITOPS_REVIEW_DIR: 'review/mr-7', GITOPS_REVIEW_SLUG: 'mr-7', GITOPS_CONFIG_HEAD: fx.tip() });
    const file = show(fx.repo, 'review/mr-7/kustomization.yaml');
    expect(file).toContain('  - ../../.kubernetes/overlays/staging\nnamespace: review-mr-7\nnameSuffix: -mr-7\n');
    expect(file).toContain(`digest: "${digest('a')}"`);
    // the commit: [skip ci], the trailers of a write-back plus the review's own
    const msg = logOf(fx.repo, '-1', '%B')[0]!;
    expect(msg).toMatch(/^\[skip ci\] review app mr-7: /);
    expect(msg).toContain('Gitops-Overlay: review/mr-7');
    expect(msg).toContain('Gitops-Pipeline-Id: 1007');
    expect(msg).toContain('Gitops-Merge-Request: 7');
    expect(msg).toContain('Gitops-Review: up review/mr-7');

    // the app does not exist until the ApplicationSet controller reads the branch: --wait-created waits for it
    const wdot = tmpFile('wait.env');
    r = await fx.cli(['argocd', 'wait', '--app', 'shovel-review-mr-7', '--project', 'default', '--wait-created', '--revision', out.GITOPS_CONFIG_HEAD!, '--poll-interval', '200ms', '--timeout', '60s', '--dotenv', wdot]);
    expect(r.code, r.all).toBe(0);
    expect(readDotenv(wdot)).toMatchObject({ ARGOCD_APP: 'shovel-review-mr-7', ARGOCD_SYNC_STATUS: 'Synced', ARGOCD_HEALTH: 'Healthy', ARGOCD_IMAGES: `${IMAGE}@${digest('a')}` });
    expect(fx.argo.app('shovel-review-mr-7').metadata.ownerReferences[0]).toMatchObject({ kind: 'ApplicationSet', name: 'shovel-review' });

    // the same again: no commit, exit 0
    const before = fx.tip();
    r = await fx.cli(up(fx.repo, 'review/mr-7', digest('a')), env);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('no change: review/mr-7 already holds this review app');
    expect(fx.tip()).toBe(before);

    // down: the directory goes in one [skip ci] commit, Argo CD deletes the app
    r = await fx.cli(down(fx.repo, 'review/mr-7'), env);
    expect(r.code, r.all).toBe(0);
    expect(tree(fx.repo)).toEqual([]);
    expect(logOf(fx.repo, '-1', '%B')[0]).toMatch(/^\[skip ci\] stop review app mr-7\n[\s\S]*Gitops-Review: down review\/mr-7/);
    r = await fx.cli(['argocd', 'wait', '--app', 'shovel-review-mr-7', '--project', 'default', '--gone', '--poll-interval', '100ms', '--timeout', '60s']);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('shovel-review-mr-7 deleted (404)');
    expect(fx.argo.app('shovel-review-mr-7')).toBeUndefined();
    // already gone: no commit, exit 0
    const tip = fx.tip();
    r = await fx.cli(down(fx.repo, 'review/mr-7'), env);
    expect([r.code, fx.tip()]).toEqual([0, tip]);
    expect(r.stderr).toContain('no change: review/mr-7 is not there');
  });

  it('argocd wait --gone: an app that stays is a timeout (exit 4) naming it; without --project a usage error (exit 2)', async () => {
    fx = await setup({ apps: [], appsets: [APPSET], pollIntervalMs: 200 });
    await fx.cli(up(fx.repo, 'review/mr-8', digest('b')), mrJob('8', '1008', SHA('b')));
    await fx.cli(['argocd', 'wait', '--app', 'shovel-review-mr-8', '--project', 'default', '--wait-created', '--revision', fx.tip(), '--poll-interval', '200ms', '--timeout', '60s']);
    let r = await fx.cli(['argocd', 'wait', '--app', 'shovel-review-mr-8', '--project', 'default', '--gone', '--poll-interval', '100ms', '--timeout', '1s']);
    expect(r.code, r.all).toBe(4);
    expect(r.stderr).toContain('EARGOCD_TIMEOUT');
    expect(r.stderr).toContain('shovel-review-mr-8 still exists after 1.0s');
    r = await fx.cli(['argocd', 'wait', '--app', 'shovel-review-mr-8', '--gone']);
    expect(r.code, r.all).toBe(2);
    expect(r.stderr).toContain('--gone needs --project');
  });
});

describe('review up / down: concurrency and the stale guard', () => {
  it('two MRs at once both land, each in a commit of its own', async () => {
    const fx = plain();
    const start = fx.tip();
    const [a, b] = await Promise.all([fx.cli(up(fx.repo, 'review/mr-1', digest('1')), mrJob('1', '2001', SHA('1'))), fx.cli(up(fx.repo, 'review/mr-2', digest('2')), mrJob('2', '2002', SHA('2')))]);
    expect([a.code, b.code], a.all + b.all).toEqual([0, 0]);
    expect(tree(fx.repo).sort()).toEqual(['review/mr-1/kustomization.yaml', 'review/mr-2/kustomization.yaml']);
    expect(logOf(fx.repo, `${start}..main`)).toHaveLength(2);
    // and both stop at once
    const [c, d] = await Promise.all([fx.cli(down(fx.repo, 'review/mr-1'), mrJob('1', '2001', SHA('1'))), fx.cli(down(fx.repo, 'review/mr-2'), mrJob('2', '2002', SHA('2')))]);
    expect([c.code, d.code], c.all + d.all).toEqual([0, 0]);
    expect(tree(fx.repo)).toEqual([]);
  });

  it('an MR updated while its previous deploy runs: the older pipeline never overwrites or removes the newer deploy', async () => {
    const fx = plain();
    const older = mrJob('3', '3001', SHA('c'));
    const newer = mrJob('3', '3002', SHA('d'));
    // both at once: whichever lands first, the newer pipeline's digest is what stays
    const [o, n] = await Promise.all([fx.cli(up(fx.repo, 'review/mr-3', digest('c')), older), fx.cli(up(fx.repo, 'review/mr-3', digest('d')), newer)]);
    expect([o.code, n.code], o.all + n.all).toEqual([0, 0]);
    expect(show(fx.repo, 'review/mr-3/kustomization.yaml')).toContain(digest('d'));
    // the older one again (a retried job): skipped, exit 0, the remote as it was
    const tip = fx.tip();
    const r = await fx.cli(up(fx.repo, 'review/mr-3', digest('c')), older);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('skipped, stale pipeline: a newer pipeline deployed review/mr-3');
    expect(r.stderr).toContain('pipeline 3001 is older than pipeline 3002');
    expect(fx.tip()).toBe(tip);
    // the older pipeline's stop job does not remove the newer deploy; the newer one's does
    const s = await fx.cli(down(fx.repo, 'review/mr-3'), older);
    expect([s.code, fx.tip()], s.all).toEqual([0, tip]);
    expect(s.stderr).toContain('skipped, stale pipeline');
    const t = await fx.cli(down(fx.repo, 'review/mr-3'), newer);
    expect(t.code, t.all).toBe(0);
    expect(tree(fx.repo)).toEqual([]);
  });
});

describe('review up / down: bad input and failures leave the repo as it was', () => {
  it('a name that could leave the review root, a missing base, an image without digest: exit 2, nothing pushed', async () => {
    const fx = plain();
    const tip = fx.tip();
    const env = mrJob('4', '4001', SHA('e'));
    for (const [args, code] of [
      [up(fx.repo, 'review/..', digest('e')), 'EREVIEW_NAME'],
      [up(fx.repo, 'review/../../etc', digest('e')), 'EREVIEW_NAME'],
      [up(fx.repo, 'mr-4', digest('e')), 'EREVIEW_NAME'],
      [down(fx.repo, 'review/a\nb'), 'EREVIEW_NAME'],
      [['review', 'up', '--repo', fx.repo, '--branch', 'main', '--env', 'review/mr-4', '--base', 'nope/overlay', '--image', `${IMAGE}@${digest('e')}`], 'EREVIEW_BASE_NOT_FOUND'],
      [['review', 'up', '--repo', fx.repo, '--branch', 'main', '--env', 'review/mr-4', '--base', '../outside', '--image', `${IMAGE}@${digest('e')}`], 'EREVIEW_CONFIG'],
      [['review', 'up', '--repo', fx.repo, '--branch', 'main', '--env', 'review/mr-4', '--base', STAGING, '--image', `${IMAGE}:1.0`], 'EREVIEW_CONFIG'],
    ] as Array<[string[], string]>) {
      const r = await fx.cli(args, env);
      expect(r.code, r.all).toBe(2);
      expect(r.stderr, r.all).toContain(code);
      expect(fx.tip()).toBe(tip);
    }
    // a review directory that is a file is not ours to overwrite or remove
    const bare = fx.repo;
    const work = execFileSync('mktemp', ['-d']).toString().trim();
    git(work, ['clone', '-q', bare, '.']);
    git(work, ['config', 'user.email', 't@example.com']);
    git(work, ['config', 'user.name', 't']);
    execFileSync('sh', ['-c', 'mkdir -p review && echo x > review/mr-5 && git add review && git commit -qm file && git push -q origin HEAD:main'], { cwd: work });
    const tip2 = fx.tip();
    const r = await fx.cli(down(bare, 'review/mr-5'), env);
    expect(r.code, r.all).toBe(2);
    expect(r.stderr).toContain('EREVIEW_NOT_REVIEW');
    expect(fx.tip()).toBe(tip2);
    // a review root that is a symlink out of the repo: refused before anything is written (resolveInside)
    execFileSync('sh', ['-c', 'git rm -q -r review && ln -s /tmp review && git add review && git commit -qm link && git push -q origin HEAD:main'], { cwd: work });
    const tip3 = fx.tip();
    for (const args of [up(bare, 'review/mr-6', digest('e')), down(bare, 'review/mr-6')]) {
      const s = await fx.cli(args, env);
      expect(s.code, s.all).toBe(2);
      expect(s.stderr).toContain('EKUSTOMIZE_OUTSIDE');
      expect(fx.tip()).toBe(tip3);
    }
  });
});

describe('review up over HTTPS: a refused push and secrets', () => {
  const TOKEN = `glpat-Rv9+/tok=en%${Math.random().toString(36).slice(2, 10)}`;
  const USER = 'project_7_bot';
  let srv: GitServer;
  beforeAll(async () => {
    srv = await startGitServer({ user: USER, password: TOKEN });
  });
  afterAll(() => srv?.stop());

  it('a push the server refuses: exit 1, the branch as it was, the token nowhere (output, files, child argv)', async () => {
    const r = configRepo(srv);
    installHook(r.path, 'pre-receive', 'echo "rejected by policy" >&2; exit 1');
    const res = await runAbused(up(r.url, 'review/mr-9', digest('f'), ['-v']), { env: { GITOPS_GIT_USER: USER, GITOPS_GIT_TOKEN: TOKEN, ...mrJob('9', '9001', SHA('f')) }, secret: TOKEN, users: [USER] });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EGIT_PUSH_REJECTED');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('a wrong token: exit 3, nothing pushed, the token nowhere', async () => {
    const r = configRepo(srv);
    const bad = `${TOKEN}-wrong`;
    const res = await runAbused(down(r.url, 'review/mr-9', ['-v']), { env: { GITOPS_GIT_USER: USER, GITOPS_GIT_TOKEN: bad, ...mrJob('9', '9001', SHA('f')) }, secret: bad, users: [USER] });
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGIT_AUTH');
    expect(headOf(r.path)).toBe(r.head);
  });
});
