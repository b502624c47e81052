/**
 * The seed's story (README: the app repo with its manifests in .kubernetes/, staging → main) as GitLab runs it,
 * release after release, under each merge method (issue 16 item 3): gitlab-ci-local runs the jobs, and GitLab's
 * own behaviours decide which pipelines exist (test/helpers/gitlab-model.ts):
 *
 *   - every push to the project is seen as GitLab sees it (a receive hook: ref, user, push options), and the model
 *     decides its push pipeline and the pipelines of the merge requests from that branch (`[skip ci]`, `ci.skip`,
 *     job-token pushes); each created pipeline runs in gitlab-ci-local with the variables GitLab gives it;
 *   - merges happen in the GitLab double under the project's merge method (merge commit, semi-linear, fast-forward,
 *     squash), as real git objects pushed by the merging user, so the target's pipeline follows from that push;
 *   - each release includes the components in another form (a released version, a SHA, a mirror, `~latest`),
 *     with `$[[ component.* ]]` as GitLab fills it.
 *
 * The write-backs push with GITOPS_GIT_TOKEN (a project access token, the README's second option): unlike
 * CI_JOB_TOKEN, its pushes start pipelines, which is where a loop could start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/services.js';
import { git, seedLayout } from '../helpers/config-repo.js';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import { ARGO_POLL_MS, readmeExample, startPipelineHarness, type PipelineHarness } from '../helpers/pipeline-harness.js';
import { decidePipeline, includeAs, pipelineVariables, placeComponents, type IncludeForm, type PipelineDecision, type PipelineSource, type PushEvent } from '../helpers/gitlab-model.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';
import type { MergeSettings } from '../doubles/gitlab/server.js';

const P = 'shovel/app';
const IMAGE_NAME = 'registry.example.com/shovel/shovel-gitops';
const DEV_PASSWORD = `dev-${Math.random().toString(36).slice(2)}`;
const GIT_TOKEN = `glpat-${Math.random().toString(36).slice(2)}`; // GITOPS_GIT_TOKEN, git user oauth2
/** jobs that write to a branch: a pipeline of a write-back commit must run none of them, or the write-backs loop */
const WRITING = /(^|-)(build|deploy-[\w.-]+|promote-[\w.-]+)$/;

interface Ran {
  source: PipelineSource;
  branch: string;
  sha: string;
  pushedBy?: string;
  decision: PipelineDecision;
  jobs: string[];
  code?: number;
  out?: string;
}

describe('the seed\'s flow on GitLab, under every merge method', () => {
  let h: PipelineHarness;
  let argo: ArgoCdDouble;
  let log: { pushes(): PushEvent[] };
  let seen = 0;
  const bare = () => h.srv.repoPath(`${P}.git`);
  const message = (sha: string) => git(bare(), ['log', '-1', '--format=%B', sha]);
  const author = (sha: string) => git(bare(), ['log', '-1', '--format=%an <%ae>', sha]);
  const head = (branch: string) => git(bare(), ['rev-parse', `refs/heads/${branch}`]);

  beforeAll(async () => {
    h = await startPipelineHarness(
      [
        {
          path: P,
          branches: ['main', 'staging'],
          tree: { ...seedLayout(IMAGE_NAME), '.gitlab-ci.yml': readmeExample(), 'app.txt': 'v0\n', Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY app.txt /app.txt\nCMD ["/bin/busybox", "true"]\n' },
          binaries: { busybox: '/bin/busybox' },
        },
      ],
      { gitUsers: { dev: DEV_PASSWORD, oauth2: GIT_TOKEN } },
    );
    argo = await startArgoCdDouble({
      repoURL: h.srv.authUrl(`${P}.git`),
      apps: [
        { name: 'shovel-staging', path: '.kubernetes/overlays/staging', targetRevision: 'staging' },
        { name: 'shovel-production', path: '.kubernetes/overlays/production', targetRevision: 'main' },
      ],
      pollIntervalMs: ARGO_POLL_MS,
    });
    log = h.pushLog(P);
  }, 120_000);
  afterAll(async () => {
    await argo?.stop();
    await h?.stop();
  });

  /** a checkout of `sha` on `branch`, with the components placed as GitLab resolves the includes */
  function checkoutAt(branch: string, sha: string): string {
    const dir = h.checkout(P, branch);
    if (git(dir, ['rev-parse', 'HEAD']) !== sha) git(dir, ['checkout', '-q', sha]);
    placeComponents(dir, join(ROOT, 'templates'));
    return dir;
  }

  /** runs the pipeline GitLab would create, in gitlab-ci-local, with the variables GitLab gives it */
  async function runPipeline(r: Omit<Ran, 'jobs'>, mr?: { iid: number; source: string; target: string }): Promise<Ran> {
    if (r.decision.status !== 'created') return { ...r, jobs: [] };
    const dir = checkoutAt(mr ? mr.source : r.branch, r.sha);
    const before = r.source === 'push' ? (pushes.find((e) => e.after === r.sha)?.before ?? undefined) : undefined;
    const protectedRef = r.source !== 'merge_request_event' && ['main', 'staging'].includes(r.branch);
    const pv = pipelineVariables({ source: r.source, sha: r.sha, before, message: message(r.sha), author: author(r.sha), branch: r.branch, protectedRef, mr: mr && { ...mr, projectId: h.ids[P]! } });
    const v = { ...h.vars(P, { protectedRef, argo }), GITOPS_GIT_TOKEN: GIT_TOKEN, ...pv.set };
    const jobs = await h.jobs(dir, v, pv.unset);
    if (!jobs.length) return { ...r, jobs };
    const res = await h.gcl(dir, ['--no-json-schema-validation'], v, pv.unset);
    return { ...r, jobs, code: res.code, out: res.out };
  }

  const pushes: PushEvent[] = [];
  /**
   * Follows every push since the last call, as GitLab does: the branch's push pipeline and the pipelines of the
   * merge requests from that branch; runs each that GitLab creates, then follows the pushes those made. Three
   * generations of pipelines that push again are a loop.
   */
  async function settle(): Promise<Ran[]> {
    const ran: Ran[] = [];
    for (let gen = 0; ; gen++) {
      const all = log.pushes();
      const events = all.slice(seen);
      seen = all.length;
      pushes.push(...events);
      if (!events.length) return ran;
      if (gen >= 3) throw new Error(`pipeline loop: generation ${gen} still pushes: ${events.map((e) => `${e.ref} by ${e.user}: ${message(e.after).split('\n')[0]}`).join('; ')}`);
      for (const e of events) {
        if (!e.ref.startsWith('refs/heads/') || /^0+$/.test(e.after)) continue;
        const branch = e.ref.slice('refs/heads/'.length);
        const t = { message: message(e.after), pushOptions: e.pushOptions, pushedBy: e.user };
        ran.push(await runPipeline({ source: 'push', branch, sha: e.after, pushedBy: e.user, decision: decidePipeline({ source: 'push', ...t }) }));
        for (const mr of h.gl.hooks.mergeRequests(P).filter((m) => m.state === 'opened' && m.source_branch === branch)) {
          const m = { iid: Number(mr.iid), source: branch, target: String(mr.target_branch) };
          const r = await runPipeline({ source: 'merge_request_event', branch, sha: e.after, pushedBy: e.user, decision: decidePipeline({ source: 'merge_request_event', ...t }) }, m);
          recordMrPipeline(m.iid, r);
          ran.push(r);
        }
      }
    }
  }

  function recordMrPipeline(iid: number, r: Ran): void {
    const status = r.decision.status === 'skipped' ? 'skipped' : r.decision.status === 'none' || !r.jobs.length ? null : r.code === 0 ? 'success' : 'failed';
    h.gl.hooks.setPipeline(P, iid, status);
  }

  /** what a write-back's pipeline may do: nothing that writes again (else every bump starts the next) */
  function expectNoLoop(ran: Ran[]): void {
    for (const r of ran.filter((x) => x.pushedBy === 'oauth2' || x.pushedBy === 'gitlab-ci-token')) {
      expect(r.jobs.filter((j) => WRITING.test(j)), `the pipeline of the write-back ${r.sha.slice(0, 8)} on ${r.branch} (${r.decision.why}) runs jobs that write again`).toEqual([]);
    }
  }

  const ROUNDS: Array<{ name: string; merge: Partial<MergeSettings>; form: IncludeForm }> = [
    { name: 'merge commit', merge: { mergeMethod: 'merge', squashOption: 'default_off' }, form: 'release' },
    { name: 'merge commit with semi-linear history', merge: { mergeMethod: 'rebase_merge', squashOption: 'default_off' }, form: 'sha' },
    { name: 'fast-forward', merge: { mergeMethod: 'ff', squashOption: 'default_off' }, form: 'mirror' },
    { name: 'squash (fast-forward, squash required)', merge: { mergeMethod: 'ff', squashOption: 'always' }, form: 'latest' },
  ];

  ROUNDS.forEach((round, n) => {
    it(`release ${n + 1}, ${round.name}, components included by ${round.form}: staging deploys, the MR runs preview and gate, main promotes, no write-back loops`, async () => {
      // a previous release that stopped half-way leaves its MR open: close it, as the team would
      for (const m of h.gl.hooks.mergeRequests(P).filter((x) => x.state === 'opened')) h.gl.hooks.setState(P, Number(m.iid), 'close');
      h.gl.hooks.mergeSettings(P, round.merge);
      await settle(); // nothing pending

      // 1. a developer pushes a change to staging, switching the include form
      const work = join(tmp('gci-dev-'), 'w');
      git(join(work, '..'), ['clone', '-q', '--branch', 'staging', h.gitUrl(P, 'dev'), 'w']);
      const ci = readFileSync(join(work, '.gitlab-ci.yml'), 'utf8');
      writeFileSync(join(work, '.gitlab-ci.yml'), includeAs(ci, round.form));
      writeFileSync(join(work, 'app.txt'), `v${n + 1}\n`);
      git(work, ['commit', '-qam', `app: release ${n + 1}`], { GIT_AUTHOR_NAME: 'Dev', GIT_AUTHOR_EMAIL: 'dev@example.com' });
      git(work, ['push', '-q', 'origin', 'HEAD:refs/heads/staging']);
      const staged = await settle();
      const devRun = staged.find((r) => r.pushedBy === 'dev' && r.source === 'push')!;
      expect(devRun.decision.status).toBe('created');
      expect(devRun.jobs).toEqual(['gitops-build', 'gitops-deploy-staging']);
      expect(devRun.code, devRun.out).toBe(0);
      expect(devRun.out).toMatch(/PASS\s+gitops-deploy-staging/);
      expectNoLoop(staged);
      const stagingHead = head('staging');
      expect(git(bare(), ['log', '-1', '--format=%an', stagingHead]), 'the head of staging is the write-back').not.toBe('Dev');
      expect(argo.app('shovel-staging').status.sync.revision).toBe(stagingHead);
      const digest = /sha256:[0-9a-f]{64}/.exec(git(bare(), ['show', 'refs/heads/staging:.kubernetes/overlays/staging/kustomization.yaml']))![0];

      // 2. the developer opens the release MR staging → main; GitLab creates its pipeline for the head of staging
      const res = await fetch(`${h.gl.apiUrl}/projects/${h.ids[P]}/merge_requests`, {
        method: 'POST',
        headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('dev'), 'content-type': 'application/json' },
        body: JSON.stringify({ source_branch: 'staging', target_branch: 'main', title: `Release ${n + 1}` }),
      });
      expect(res.status).toBe(201);
      const iid = ((await res.json()) as { iid: number }).iid;
      const mr = { iid, source: 'staging', target: 'main' };
      h.gl.hooks.approve(P, iid, 'alice'); // a reviewer approves before the gate job runs
      const opened = decidePipeline({ source: 'merge_request_event', message: message(stagingHead) });
      expect(opened.status, `the MR pipeline for the head of staging (${message(stagingHead).split('\n')[0]}): ${opened.why}`).toBe('created');
      let mrRun = await runPipeline({ source: 'merge_request_event', branch: 'staging', sha: stagingHead, decision: opened }, mr);
      recordMrPipeline(iid, mrRun);
      expect(mrRun.jobs).toEqual(['gitops-gate-production', 'gitops-preview-production']);
      expect(mrRun.code, mrRun.out).toBe(0);
      expect(String(h.gl.hooks.notes(P, iid).at(-1)?.body)).toContain(digest);

      // 3. semi-linear and fast-forward need the source rebased once main has moved (the last promotion)
      let mrState = h.gl.hooks.mergeRequest(P, iid);
      if (mrState.detailed_merge_status === 'need_rebase') {
        const rb = await fetch(`${h.gl.apiUrl}/projects/${h.ids[P]}/merge_requests/${iid}/rebase`, { method: 'PUT', headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('dev') } });
        expect(rb.status).toBe(202);
        const after = await settle(); // the rebase is a push to staging: its push and MR pipelines
        expectNoLoop(after);
        mrRun = after.find((r) => r.source === 'merge_request_event')!;
        expect(mrRun.decision.status, `the MR pipeline after the rebase: ${mrRun.decision.why}`).toBe('created');
        // the rebase leaves the diff as it was (same patch-id): the approval given before it still counts, as GitLab
        // keeps approvals across a rebase from the UI or API (gitlab-org/gitlab commit 864870c6, "Don't reset
        // approvals after rebase from UI"; issue 337888 for rebases that keep the content), so the gate of the MR
        // pipeline the rebase started passes without a new approval
        recordMrPipeline(iid, mrRun);
        expect(mrRun.code, mrRun.out).toBe(0);
        expect(mrRun.jobs).toContain('gitops-gate-production');
        mrState = h.gl.hooks.mergeRequest(P, iid);
      }
      expect(mrState.detailed_merge_status).toBe('mergeable');

      // 4. merged under the project's method; main's pipeline comes from that push
      const mainBefore = head('main');
      const merged = await fetch(`${h.gl.apiUrl}/projects/${h.ids[P]}/merge_requests/${iid}/merge`, { method: 'PUT', headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('alice'), 'content-type': 'application/json' }, body: JSON.stringify({ sha: mrState.sha }) });
      expect(merged.status, await merged.clone().text()).toBe(200);
      const m = (await merged.json()) as { merge_commit_sha: string | null; squash_commit_sha: string | null; sha: string };
      const landed = head('main');
      if (round.merge.mergeMethod === 'ff' && round.merge.squashOption !== 'always') {
        expect(landed).toBe(m.sha); // the source's head itself, its message included
        expect(m.merge_commit_sha).toBeNull();
      } else if (round.merge.squashOption === 'always') {
        expect(landed).toBe(m.squash_commit_sha);
        expect(git(bare(), ['log', '-1', '--format=%s', landed])).toBe(`Release ${n + 1}`);
        expect(git(bare(), ['rev-parse', `${landed}^`])).toBe(mainBefore);
      } else {
        expect(landed).toBe(m.merge_commit_sha);
        expect(git(bare(), ['rev-list', '--parents', '-n', '1', landed]).split(' ')).toHaveLength(3);
      }

      const onMain = await settle();
      expectNoLoop(onMain);
      const mainRun = onMain.find((r) => r.branch === 'main' && r.pushedBy === 'alice')!;
      expect(mainRun.decision.status, `main's pipeline for ${message(landed).split('\n')[0]}: ${mainRun.decision.why}`).toBe('created');
      expect(mainRun.jobs).toEqual(['gitops-promote-production']);
      expect(mainRun.code, mainRun.out).toBe(0);
      expect(mainRun.out).toMatch(/PASS\s+gitops-promote-production/);
      expect(mainRun.out).toMatch(new RegExp(`gate: !${iid} approved`));
      const prod = git(bare(), ['show', `refs/heads/main:.kubernetes/overlays/production/kustomization.yaml`]);
      expect(prod).toContain(digest);
      expect(argo.app('shovel-production').status.sync.revision).toBe(head('main'));
      for (const r of [...staged, ...onMain]) for (const s of [GIT_TOKEN, h.srv.password, argo.token, h.gl.token]) expect(r.out ?? '').not.toContain(s);
    }, 900_000);
  });
});
