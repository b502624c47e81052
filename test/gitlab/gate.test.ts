/**
 * `gitops-ci gate`: the pure evaluation, and the CLI bundle end to end against the GitLab double over real
 * git: author excluded, approvals before the latest push ignored, outsiders ignored, group expansion
 * (direct and inherited members), the --commit path for a merged MR and for a direct push, bad and
 * job-only tokens (exit 3, token absent from the output in every form), usage errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateApprovals, latestPush } from '../../src/gitlab/approvals.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { GIT_TEST_ENV } from '../helpers/config-repo.js';
import { PROJECT, setupGitlab, type GitlabFixture } from './fixture.js';

const ids = new Map<string, number>();
const u = (username: string) => ({ id: ids.get(username.toLowerCase()) ?? (ids.set(username.toLowerCase(), ids.size + 1), ids.size), username, name: username, state: 'active' });

describe('evaluateApprovals (pure)', () => {
  const base = { required: 2, allowAuthor: false, author: 'alice', lastPushAt: '2026-01-01T10:00:00.000Z' };
  it('counts distinct qualifying approvers and says why the others are ignored', () => {
    const r = evaluateApprovals({
      ...base,
      approvals: [
        { user: u('alice'), approvedAt: '2026-01-01T11:00:00.000Z' },
        { user: u('bob'), approvedAt: '2026-01-01T09:00:00.000Z' },
        { user: u('carol'), approvedAt: '2026-01-01T11:00:00.000Z' },
        { user: u('Carol'), approvedAt: '2026-01-01T11:30:00.000Z' },
        { user: u('dave') },
        { user: u('mallory'), approvedAt: '2026-01-01T11:00:00.000Z' },
      ],
      allowed: new Map([
        ['alice', '--approver alice'],
        ['bob', 'member of @release'],
        ['carol', 'member of @release'],
        ['dave', 'member of @release'],
      ]),
      allowedText: '@alice or a member of @release',
    });
    expect(r.satisfied).toBe(false);
    expect(r.counted.map((c) => c.username)).toEqual(['Carol']);
    expect(r.missing).toBe(1);
    const why = Object.fromEntries(r.ignored.map((i) => [i.username, i.reason]));
    expect(why.alice).toMatch(/author/);
    expect(why.bob).toMatch(/before the latest push/);
    expect(why.dave).toMatch(/approved_at/);
    expect(why.mallory).toMatch(/not an allowed approver/);
    expect(r.from).toMatch(/@alice or a member of @release \(not the author @alice\)/);
  });

  it('with --allow-author the author counts; after a merge nothing counts; unknown push time counts nothing', () => {
    const approvals = [
      { user: u('alice'), approvedAt: '2026-01-01T11:00:00.000Z' },
      { user: u('bob'), approvedAt: '2026-01-01T13:00:00.000Z' },
    ];
    expect(evaluateApprovals({ ...base, allowAuthor: true, approvals }).satisfied).toBe(true);
    const merged = evaluateApprovals({ ...base, allowAuthor: true, approvals, mergedAt: '2026-01-01T12:00:00.000Z' });
    expect(merged.counted.map((c) => c.username)).toEqual(['alice']);
    expect(merged.ignored[0].reason).toMatch(/after the MR merged/);
    expect(evaluateApprovals({ ...base, lastPushAt: undefined, approvals }).ignored.every((i) => /author|not recorded the latest push/.test(i.reason))).toBe(true);
    expect(latestPush([{ id: 1, headCommitSha: 'a', baseCommitSha: '', startCommitSha: '', createdAt: '2026-01-01T10:00:00Z', state: 'collected', patchIdSha: null }], 'b')).toEqual({});
  });
});

describe('gitops-ci gate (CLI against the double)', () => {
  let fx: GitlabFixture;
  let dir: string;
  beforeAll(async () => {
    fx = await setupGitlab();
    dir = mkdtempSync(join(tmpdir(), 'gate-'));
  });
  afterAll(async () => {
    expect(fx.recorder.violations).toEqual([]);
    expect(fx.recorder.checked).toBeGreaterThan(0);
    await fx?.stop();
  });

  let n = 0;
  /** an MR authored by alice, with one real commit */
  async function mrByAlice(): Promise<{ iid: number; branch: string; sha: string }> {
    const branch = `feature/change-${++n}`;
    const sha = fx.gl.hooks.push(PROJECT, branch, { files: { [`change-${n}.txt`]: `change ${n}\n` }, author: 'alice' });
    const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: branch, targetBranch: 'main', title: `Change ${n}` });
    return { iid: mr.iid, branch, sha };
  }
  const approve = (iid: number, who: string) => fx.client(who).approve(PROJECT, iid);
  const gate = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runCli(['gate', ...args], { env: { ...fx.env, ...env } });

  it('excludes the author unless --allow-author', async () => {
    const m = await mrByAlice();
    await approve(m.iid, 'alice');
    await approve(m.iid, 'bob');
    const r = await gate(['--mr', String(m.iid), '--approvals', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('EGITLAB_NOT_APPROVED');
    expect(r.stderr).toMatch(/1 of 2 approvals, 1 more needed/);
    expect(r.stderr).toMatch(/ignored: @alice .*the author/);
    expect(r.stderr).toMatch(/counted: @bob/);
    const ok = await gate(['--approvals', '2', '--allow-author'], { CI_MERGE_REQUEST_IID: String(m.iid) });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/gate: !\d+ approved: 2 of 2 \(@alice, @bob\)/);
  });

  it('a closed MR passes no gate, however approved (exit 1, EGITLAB_NOT_OPEN); reopened, it passes again', async () => {
    const m = await mrByAlice();
    await approve(m.iid, 'bob');
    expect((await gate(['--mr', String(m.iid), '--approvals', '1'])).code).toBe(0);
    fx.gl.hooks.setState(PROJECT, m.iid, 'close');
    const r = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EGITLAB_NOT_OPEN');
    expect(r.stderr).toMatch(/is closed: a closed merge request passes no gate/);
    expect(r.stderr).toMatch(/reopen the merge request/);
    fx.gl.hooks.setState(PROJECT, m.iid, 'reopen');
    expect((await gate(['--mr', String(m.iid), '--approvals', '1'])).code).toBe(0);
  });

  it('ignores approvals given before the latest push; counts those after it; writes the dotenv', async () => {
    const m = await mrByAlice();
    await approve(m.iid, 'bob');
    fx.gl.hooks.push(PROJECT, m.branch, { files: { 'late.txt': 'pushed after the approval\n' }, author: 'alice' });
    const r = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ignored: @bob .*before the latest push/);
    expect(r.stderr).toMatch(/1 more approval from any project member \(not the author @alice\)/);
    await approve(m.iid, 'carol');
    const env = join(dir, 'gate.env');
    const ok = await gate(['--mr', String(m.iid), '--approvals', '1', '--dotenv', env]);
    expect(ok.code).toBe(0);
    expect(readFileSync(env, 'utf8')).toMatch(new RegExp(`GATE_MR_IID=${m.iid}[\\s\\S]*GATE_APPROVALS=1[\\s\\S]*GATE_APPROVERS=carol`));
  });

  it('a real git push (smart HTTP, force-push of the branch) also makes earlier approvals stale', async () => {
    const m = await mrByAlice();
    await approve(m.iid, 'bob');
    expect((await gate(['--mr', String(m.iid), '--approvals', '1'])).code).toBe(0);
    // rewrite the MR branch from main, as promote does with its own branch
    const work = mkdtempSync(join(tmpdir(), 'gate-push-'));
    const g = (args: string[]) => execFileSync('git', args, { cwd: work, env: { ...process.env, ...GIT_TEST_ENV } }).toString().trim();
    g(['clone', '-q', '--branch', 'main', fx.git.authUrl('group/config.git'), '.']);
    writeFileSync(join(work, 'rewritten.txt'), 'new content\n');
    g(['add', '-A']);
    g(['commit', '-q', '-m', 'rewritten']);
    g(['push', '-q', '--force', 'origin', `HEAD:refs/heads/${m.branch}`]);
    const head = g(['rev-parse', 'HEAD']);
    // the harness's committer email is no GitLab user's: this test is about the push, not the committer rule
    const r = await gate(['--mr', String(m.iid), '--approvals', '1', '--committer-check', 'gitlab']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ignored: @bob .*before the latest push/);
    expect(r.stderr).toContain(`latest push that changed the diff: `);
    expect(r.stderr).toContain(head.slice(0, 12));
  });

  it('counts only --approver users and @group members (direct and inherited); an unknown one is exit 2', async () => {
    const m = await mrByAlice();
    for (const who of ['bob', 'dave', 'erin']) await approve(m.iid, who);
    const carolOnly = await gate(['--mr', String(m.iid), '--approvals', '1', '--approver', 'carol']);
    expect(carolOnly.code).toBe(1);
    expect(carolOnly.stderr).toMatch(/ignored: @bob .*not an allowed approver \(@carol\)/);
    expect(carolOnly.stderr).toMatch(/1 more approval from @carol \(not the author @alice\)/);
    const release = await gate(['--mr', String(m.iid), '--approvals', '1', '--approver', '@release']);
    expect(release.code).toBe(0);
    expect(release.stderr).toMatch(/counted: @bob .*member of @release/);
    const ops = await gate(['--mr', String(m.iid), '--approvals', '3', '--approver', 'carol,@org/ops']);
    expect(ops.code).toBe(1);
    expect(ops.stderr).toMatch(/2 of 3 approvals/);
    expect(ops.stderr).toMatch(/counted: @dave[\s\S]*counted: @erin|counted: @erin[\s\S]*counted: @dave/);
    const unknown = await gate(['--mr', String(m.iid), '--approvals', '1', '--approver', '@no-such-group']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('EGITLAB_UNKNOWN_APPROVER');
  });

  it('--commit (and --mr of a merged MR): passes for the merge of an MR approved before it merged; fails for one approved after; fails for a direct push', async () => {
    const m = await mrByAlice();
    await approve(m.iid, 'bob');
    const merged = await fx.client().mergeMergeRequest(PROJECT, m.iid, { sha: m.sha });
    expect(merged.state).toBe('merged');
    const ok = await gate(['--approvals', '1'], { CI_COMMIT_SHA: merged.mergeCommitSha!, CI_COMMIT_BRANCH: 'main' });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain(`was brought into main by !${m.iid}`);

    const late = await mrByAlice();
    const lateMerge = await fx.client().mergeMergeRequest(PROJECT, late.iid, { sha: late.sha });
    fx.gl.hooks.approve(PROJECT, late.iid, 'bob', { at: new Date(Date.now() + 60_000) });
    const r = await gate(['--commit', lateMerge.mergeCommitSha!, '--approvals', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/was not approved as required before it merged/);
    expect(r.stderr).toMatch(/after the MR merged/);

    // the same MR named by --mr: merged, so judged as the merge is: the late approval does not count either
    const byIid = await gate(['--mr', String(late.iid), '--approvals', '1']);
    expect(byIid.code, byIid.all).toBe(1);
    expect(byIid.stderr).toContain(`!${late.iid} is merged`);
    expect(byIid.stderr).toMatch(/after the MR merged/);
    const early = await gate(['--mr', String(m.iid), '--approvals', '1']);
    expect(early.code, early.all).toBe(0);

    const direct = fx.gl.hooks.push(PROJECT, 'main', { files: { 'hotfix.txt': 'pushed straight to main\n' } });
    const d = await gate(['--commit', direct, '--approvals', '1', '--branch', 'main']);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('EGITLAB_NO_MERGE_REQUEST');
    expect(d.stderr).toMatch(/reached branch main without a merged merge request/);
  });

  it('a bad token is exit 3 and never printed (raw, url-encoded, base64)', async () => {
    const bad = 'glpat-Bad+Token/With=Chars-0123';
    const m = await mrByAlice();
    const r = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GITLAB_TOKEN: bad });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('EGITLAB_AUTH');
    for (const form of [bad, encodeURIComponent(bad), Buffer.from(bad).toString('base64')]) expect(r.all).not.toContain(form);
    const scope = await gate(['--mr', String(m.iid), '--approvals', '1'], { GITOPS_GITLAB_TOKEN: fx.gl.readApiToken.replace('ro', 'xx') });
    expect(scope.code).toBe(3);
  });

  it('a job token alone is exit 3 with what to set instead', async () => {
    const r = await gate(['--mr', '1', '--approvals', '1'], { GITOPS_GITLAB_TOKEN: '', CI_JOB_TOKEN: fx.gl.jobToken });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('EGITLAB_JOB_TOKEN');
    expect(r.stderr).toMatch(/cannot create or edit merge requests, post notes or read approvals/);
    expect(r.stderr).toMatch(/GITOPS_GITLAB_READ_TOKEN/);
    expect(r.all).not.toContain(fx.gl.jobToken);
  });

  it('usage errors are exit 2, all reported at once', async () => {
    const r = await gate(['--mr', 'x', '--commit', 'abc1234'], { CI_API_V4_URL: '' , CI_SERVER_URL: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not both/);
    expect(r.stderr).toMatch(/--approvals N is required/);
    expect(r.stderr).toMatch(/no GitLab server/);
    const none = await gate(['--approvals', '1'], { CI_MERGE_REQUEST_IID: '', CI_COMMIT_SHA: '' });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/nothing to check/);
    const missing = await gate(['--mr', '9999', '--approvals', '1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/merge request !9999 of project 42 not found/);
  });

  it('--approvals 0 (a gate that lets every MR through) and a negative count are usage errors, before any request', async () => {
    const before = fx.gl.requests.length;
    const zero = await gate(['--mr', '1', '--approvals', '0']);
    expect(zero.code, zero.all).toBe(2);
    expect(zero.stderr).toMatch(/--approvals 0 .*at least 1/);
    const neg = await gate(['--mr', '1', '--approvals=-1']);
    expect(neg.code, neg.all).toBe(2);
    expect(neg.stderr).toMatch(/--approvals "-1" is not a whole number/);
    expect(fx.gl.requests.length).toBe(before);
  });
});
