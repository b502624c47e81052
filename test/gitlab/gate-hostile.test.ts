/**
 * The gate fails closed: each rule against a hostile answer of the GitLab double (the CLI bundle end to end).
 * Answers a test makes hostile but still GitLab-shaped are validated against test/contracts/gitlab-api.json like
 * every other; malformed ones (a user null or a string, an MR without author) must be flagged by the contract
 * too, and each such test takes exactly its own violations off the list.
 *
 *  - the token's own user, bots (flag and token-user names), committers (pushers, commit emails, unattributable
 *    emails: gitlab (default) / strict / off) never count
 *  - --commit: an inner commit fails; of several MRs claiming the commit, the earliest merge decides
 *  - malformed approvals / MR answers fail with EGITLAB_BAD_ANSWER
 *  - --mr judges the pipeline's commit (CI_COMMIT_SHA, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA)
 *  - a rebase with the same patch-id keeps approvals; another push resets; a missing patch-id resets
 *  - settings the MR cannot change (GITOPS_GATE_*, the target branch's .gitops-ci.yml): stricter wins
 *  - fork pipelines: no token → exit 3 with the parent-pipeline hint; with a token → the MR's project
 *  - pagination is bounded (EGITLAB_TOO_MANY_PAGES)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { PROJECT, setupGitlab, type GitlabFixture } from './fixture.js';

describe('gitops-ci gate against a hostile GitLab', () => {
  let fx: GitlabFixture;
  beforeAll(async () => {
    fx = await setupGitlab({
      users: [
        { username: 'gitops-bot', name: 'GitOps Bot', bot: true },
        { username: 'alice' },
        { username: 'bob' },
        { username: 'carol' },
        { username: 'dave' },
        { username: 'erin' },
        { username: 'gate-reader' },
        { username: 'project_42_bot_3f2a9c' },
        { username: 'helper', bot: true },
        { username: 'quiet', publicEmail: null },
      ],
    });
  });
  afterAll(async () => {
    expect(fx.recorder.violations).toEqual([]);
    expect(fx.recorder.checked).toBeGreaterThan(0);
    await fx?.stop();
  });

  let n = 0;
  async function mrByAlice(files?: Record<string, string>): Promise<{ iid: number; branch: string; sha: string }> {
    const branch = `hostile/change-${++n}`;
    const sha = fx.gl.hooks.push(PROJECT, branch, { files: files ?? { [`hostile-${n}.txt`]: `change ${n}\n` }, author: 'alice' });
    const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: branch, targetBranch: 'main', title: `Hostile ${n}` });
    return { iid: mr.iid, branch, sha };
  }
  const approve = (iid: number, who: string) => fx.gl.hooks.approve(PROJECT, iid, who);
  const gate = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runCli(['gate', ...args], { env: { ...fx.env, ...env } });
  /** takes the contract violations of `path` off the list, and returns them */
  const takeViolations = (re: RegExp) => {
    const mine = fx.recorder.violations.filter((v) => re.test(v));
    fx.recorder.violations.splice(0, fx.recorder.violations.length, ...fx.recorder.violations.filter((v) => !re.test(v)));
    return mine;
  };

  it("never counts the gate token's own user; GITOPS_GITLAB_READ_TOKEN is used before GITOPS_GITLAB_TOKEN", async () => {
    const m = await mrByAlice();
    approve(m.iid, 'gate-reader');
    const r = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GITLAB_READ_TOKEN: fx.gl.tokenOf('gate-reader') });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toMatch(/ignored: @gate-reader .*the gate's own token user/);
    // the same approval through another token counts: it is the token's user that is refused, not the person
    const other = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(other.code, other.all).toBe(0);
    expect(other.stderr).toMatch(/counted: @gate-reader/);
    // a bad read token: exit 3, and never printed in any form (the write token beside it is not used instead)
    const bad = 'glpat-Read+Token/Bad=0042';
    const r3 = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GITLAB_READ_TOKEN: bad });
    expect(r3.code, r3.all).toBe(3);
    expect(r3.stderr).toMatch(/GITOPS_GITLAB_READ_TOKEN/);
    for (const form of [bad, encodeURIComponent(bad), Buffer.from(bad).toString('base64')]) expect(r3.all).not.toContain(form);
  });

  it('never counts bots: GitLab\'s `bot` flag, and access-token users by their name', async () => {
    const m = await mrByAlice();
    approve(m.iid, 'helper');
    approve(m.iid, 'project_42_bot_3f2a9c');
    approve(m.iid, 'gitops-bot');
    const r = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GITLAB_READ_TOKEN: fx.gl.tokenOf('gate-reader') });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toMatch(/ignored: @helper .*bot user \(GitLab marks it `bot`\)/);
    expect(r.stderr).toMatch(/ignored: @project_42_bot_3f2a9c .*access token user/);
    expect(r.stderr).toMatch(/ignored: @gitops-bot .*bot/);
    expect(r.stderr).toMatch(/0 of 1 approvals/);
  });

  it('never counts a user who pushed commits to the MR, even under the author\'s email; nor the owner of a commit email', async () => {
    const m = await mrByAlice();
    // bob pushes onto alice's MR a commit that claims to be alice's: GitLab records bob as the pusher
    fx.gl.hooks.push(PROJECT, m.branch, { files: { 'by-bob.txt': 'bob wrote this\n' }, author: 'alice', pusher: 'bob' });
    // a commit carrying carol's (public) email, pushed by alice
    fx.gl.hooks.push(PROJECT, m.branch, { files: { 'by-carol.txt': 'carol wrote this\n' }, author: 'carol', pusher: 'alice' });
    for (const who of ['bob', 'carol', 'dave']) approve(m.iid, who);
    const r = await gate(['--mr', String(m.iid), '--approvals', '2']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toMatch(/ignored: @bob .*pushed commits to the MR/);
    expect(r.stderr).toMatch(/ignored: @carol .*carries their email/);
    expect(r.stderr).toMatch(/counted: @dave/);
    expect(r.stderr).toMatch(/1 of 2 approvals/);
    const off = await gate(['--mr', String(m.iid), '--approvals', '3', '--allow-committer-approval']);
    expect(off.code, off.all).toBe(0);
  });

  it('strict: a commit email no visible user has blocks every approval; `gitlab` (the default) counts the unidentified; a protected source keeps strict', async () => {
    const m = await mrByAlice();
    fx.gl.hooks.push(PROJECT, m.branch, { files: { 'quiet.txt': 'from a private email\n' }, author: 'quiet', pusher: 'alice' });
    approve(m.iid, 'dave');
    const strict = await gate(['--mr', String(m.iid), '--approvals', '1', '--committer-check', 'strict']);
    expect(strict.code, strict.all).toBe(1);
    expect(strict.stderr).toMatch(/ignored: @dave .*cannot tell whether they added commits: quiet@example\.com/);
    expect(strict.stderr).toMatch(/--committer-check gitlab/);
    // the default: the pusher (alice, GitLab's own record) is excluded; an email nobody has excludes no one
    const byDefault = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(byDefault.code, byDefault.all).toBe(0);
    const gitlab = await gate(['--mr', String(m.iid), '--approvals', '1', '--committer-check', 'gitlab']);
    expect(gitlab.code, gitlab.all).toBe(0);
    // the flag cannot relax what a protected variable sets
    const pinned = await gate(['--mr', String(m.iid), '--approvals', '1', '--committer-check', 'gitlab'], { GITOPS_GATE_COMMITTER_CHECK: 'strict' });
    expect(pinned.code, pinned.all).toBe(1);
    expect(pinned.stderr).toMatch(/protected setting: the CI\/CD variables GITOPS_GATE_\*: committer-check strict/);
  });

  it('--commit: an inner commit of an approved MR fails; of several MRs claiming one merge commit, the earliest decides', async () => {
    const m = await mrByAlice();
    const inner = m.sha;
    fx.gl.hooks.push(PROJECT, m.branch, { files: { 'second.txt': 'second commit\n' }, author: 'alice' });
    approve(m.iid, 'dave');
    const head = (await fx.client().getMergeRequest(PROJECT, m.iid)).sha;
    const merged = await fx.client().mergeMergeRequest(PROJECT, m.iid, { sha: head });
    expect((await gate(['--commit', merged.mergeCommitSha!, '--approvals', '1', '--branch', 'main'])).code).toBe(0);
    const r = await gate(['--commit', inner, '--approvals', '1', '--branch', 'main']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EGITLAB_NO_MERGE_REQUEST');

    // an unapproved MR merges; a later approved MR is presented as having brought the same commit
    const bad = await mrByAlice();
    const badMerge = await fx.client().mergeMergeRequest(PROJECT, bad.iid, { sha: bad.sha });
    const good = await mrByAlice();
    approve(good.iid, 'dave');
    await fx.client().mergeMergeRequest(PROJECT, good.iid, { sha: good.sha });
    const undo = fx.gl.hooks.tamper({
      route: 'GET /projects/:id/repository/commits/:sha/merge_requests',
      rewrite: (a) => {
        const later = fx.gl.hooks.mergeRequest(PROJECT, good.iid);
        return { ...a, body: [{ ...later, merge_commit_sha: badMerge.mergeCommitSha }, ...a.body] };
      },
    });
    try {
      const e = await gate(['--commit', badMerge.mergeCommitSha!, '--approvals', '1', '--branch', 'main']);
      expect(e.code, e.all).toBe(1);
      expect(e.stderr).toContain(`by !${bad.iid}`);
      expect(e.stderr).toContain('EGITLAB_NOT_APPROVED');
    } finally {
      undo();
    }
  });

  it('malformed answers fail the gate: an approval whose user is null or a string, an MR without an author', async () => {
    const m = await mrByAlice();
    approve(m.iid, 'dave');
    for (const user of [null, 'dave', { username: 'dave' }]) {
      const undo = fx.gl.hooks.tamper({ route: 'GET /projects/:id/merge_requests/:iid/approvals', rewrite: (a) => ({ ...a, body: { ...a.body, approved_by: [{ user, approved_at: new Date().toISOString() }] } }) });
      try {
        const r = await gate(['--mr', String(m.iid), '--approvals', '1']);
        expect(r.code, r.all).toBe(1);
        expect(r.stderr).toContain('EGITLAB_BAD_ANSWER');
        expect(r.stderr).toMatch(/approved_by\[0\]: (not a user object|a user without an id)/);
      } finally {
        undo();
      }
      expect(takeViolations(/approvals 200/).length).toBeGreaterThan(0);
    }
    const undo = fx.gl.hooks.tamper({
      route: 'GET /projects/:id/merge_requests/:iid',
      rewrite: (a) => {
        const { author: _drop, ...rest } = a.body;
        return { ...a, body: rest };
      },
    });
    try {
      const r = await gate(['--mr', String(m.iid), '--approvals', '1', '--allow-author']);
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toContain('EGITLAB_BAD_ANSWER');
      expect(r.stderr).toMatch(/has no author/);
    } finally {
      undo();
    }
    expect(takeViolations(/lacks required field author/).length).toBeGreaterThan(0);
  });

  it("--mr judges the pipeline's own commit: a retried old pipeline fails once the head moved; merged-results pipelines use the source branch SHA", async () => {
    const m = await mrByAlice();
    approve(m.iid, 'dave');
    const newer = fx.gl.hooks.push(PROJECT, m.branch, { files: { 'later.txt': 'later\n' }, author: 'alice' });
    approve(m.iid, 'erin');
    const old = await gate(['--approvals', '1'], { CI_MERGE_REQUEST_IID: String(m.iid), CI_COMMIT_SHA: m.sha });
    expect(old.code, old.all).toBe(1);
    expect(old.stderr).toContain('EGITLAB_HEAD_MOVED');
    expect(old.stderr).toMatch(/the pipeline of its new head decides/);
    const mergedResults = await gate(['--approvals', '1'], { CI_MERGE_REQUEST_IID: String(m.iid), CI_COMMIT_SHA: 'f'.repeat(40), CI_MERGE_REQUEST_SOURCE_BRANCH_SHA: newer });
    expect(mergedResults.code, mergedResults.all).toBe(0);
    expect(mergedResults.stderr).toMatch(/counted: @erin/);
  });

  it('a rebase that leaves the diff unchanged keeps the approvals (same patch-id); another push resets them; no patch-id resets', async () => {
    const files = { 'rebased.txt': 'the reviewed change\n' };
    const m = await mrByAlice(files);
    approve(m.iid, 'dave');
    fx.gl.hooks.push(PROJECT, 'main', { files: { [`unrelated-${n}.txt`]: 'main moved on\n' } });
    fx.gl.hooks.push(PROJECT, m.branch, { files, author: 'alice', onto: 'main', message: 'the reviewed change, rebased' });
    const kept = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(kept.code, kept.all).toBe(0);
    expect(kept.stderr).toMatch(/left the diff unchanged, approvals kept/);
    // GitLab without a patch-id: nothing shows the diff unchanged, so the rebase resets
    const undo = fx.gl.hooks.tamper({ route: 'GET /projects/:id/merge_requests/:iid/versions', rewrite: (a) => ({ ...a, body: a.body.map((v: Record<string, unknown>) => ({ ...v, patch_id_sha: null })) }) });
    try {
      const r = await gate(['--mr', String(m.iid), '--approvals', '1']);
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toMatch(/ignored: @dave .*before the latest push/);
    } finally {
      undo();
    }
    fx.gl.hooks.push(PROJECT, m.branch, { files: { 'rebased.txt': 'a different change\n' }, author: 'alice' });
    const reset = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(reset.code, reset.all).toBe(1);
    expect(reset.stderr).toMatch(/ignored: @dave .*before the latest push/);
  });

  it("settings the MR cannot change: protected variables and the target branch's .gitops-ci.yml, the stricter wins", async () => {
    const m = await mrByAlice({ '.gitops-ci.yml': 'gate:\n  approvals: 1\n' });
    approve(m.iid, 'dave');
    expect((await gate(['--mr', String(m.iid), '--approvals', '1'])).code).toBe(0);
    const env = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GATE_APPROVALS: '2' });
    expect(env.code, env.all).toBe(1);
    expect(env.stderr).toMatch(/1 of 2 approvals/);
    const onlyEnv = await gate(['--mr', String(m.iid)], { GITOPS_GATE_APPROVALS: '1' });
    expect(onlyEnv.code, onlyEnv.all).toBe(0);
    // the target branch asks for 2 approvers from @release; the MR's own copy of the file (1) is not read
    fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': 'gate:\n  approvals: 2\n  approvers: ["@release"]\n' } });
    const file = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(file.code, file.all).toBe(1);
    expect(file.stderr).toMatch(/protected setting: \.gitops-ci\.yml on main: approvals 2, approvers @release/);
    expect(file.stderr).toMatch(/ignored: @dave .*not an allowed approver/);
    approve(m.iid, 'bob');
    approve(m.iid, 'carol');
    expect((await gate(['--mr', String(m.iid), '--approvals', '1'])).code).toBe(0);
    fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': 'gate:\n  approvals: 0\n' } });
    const bad = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(bad.code, bad.all).toBe(2);
    expect(bad.stderr).toContain('EGITLAB_GATE_SETTINGS');
    fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': '# no gate settings here\n' } });
  });

  it('a fork pipeline without a token fails closed (exit 3) and says how to run it in the parent; with a token the MR project is addressed', async () => {
    const m = await mrByAlice();
    approve(m.iid, 'dave');
    const fork = { CI_MERGE_REQUEST_IID: String(m.iid), CI_MERGE_REQUEST_PROJECT_ID: '42', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '77', CI_PROJECT_ID: '77', CI_PROJECT_PATH: 'someone/config', CI_COMMIT_SHA: m.sha };
    const r = await gate(['--approvals', '1'], { ...fork, GITOPS_GITLAB_TOKEN: '', GITLAB_TOKEN: '' });
    expect(r.code, r.all).toBe(3);
    expect(r.stderr).toContain('EGITLAB_FORK_NO_TOKEN');
    expect(r.stderr).toContain('https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/#run-pipelines-in-the-parent-project');
    const ok = await gate(['--approvals', '1'], fork);
    expect(ok.code, ok.all).toBe(0);
  });

  it('a listing that never ends stops at the page bound (EGITLAB_TOO_MANY_PAGES), after that many requests', async () => {
    const m = await mrByAlice();
    approve(m.iid, 'dave');
    const undo = fx.gl.hooks.tamper({ route: 'GET /projects/:id/merge_requests/:iid/versions', rewrite: (a) => ({ ...a, headers: { ...a.headers, 'x-next-page': String(Number(a.query.get('page') ?? 1) + 1) } }) });
    const before = fx.gl.requests.filter((q) => q.path.endsWith('/versions')).length;
    try {
      const r = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GITLAB_MAX_PAGES: '3' });
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toContain('EGITLAB_TOO_MANY_PAGES');
      expect(r.stderr).toMatch(/more than 3 pages/);
    } finally {
      undo();
    }
    expect(fx.gl.requests.filter((q) => q.path.endsWith('/versions')).length - before).toBe(3);
  });
});
