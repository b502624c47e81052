/**
 * Merge requests through gitbeaker against the GitLab double over real git: upsert (create, update, 409
 * adopt, closed-unmerged → new), auto-merge (not-yet states, 405 retry, scheduled on a running pipeline,
 * conflict, closed, moved head, timeout), the commit → MR lookup, and the notes upsert.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { autoMerge, findMergeRequestForCommit, upsertMergeRequest } from '../../src/gitlab/mr.js';
import { noteMarker, upsertNote } from '../../src/gitlab/notes.js';
import { PROJECT, useGitlab } from './fixture.js';
import { rejected as caught } from '../helpers/failure.js';

const fx = useGitlab();
afterAll(() => {
  expect(fx.recorder.checked).toBeGreaterThan(0);
});

const overlay = (tag: string) => ({ 'apps/web/overlays/production/kustomization.yaml': `images:\n- name: web\n  newTag: "${tag}"\n` });
let branchNo = 0;
/** a promotion branch with one real commit; returns its name and head */
function branch(tag: string, name = `gitops-ci/promote/env${++branchNo}`): { name: string; sha: string } {
  return { name, sha: fx.gl.hooks.push(PROJECT, name, { files: overlay(tag), message: `promote web ${tag}` }) };
}
const openMrs = (source: string) => fx.gl.hooks.mergeRequests(PROJECT).filter((m) => m.source_branch === source && m.state === 'opened');


describe('upsertMergeRequest', () => {
  it('creates one MR, then updates it in place; an unchanged re-run changes nothing', async () => {
    const gl = fx.client();
    const b = branch('1.1');
    const first = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 1.1 to production', description: 'v1', labels: ['promotion', 'env::production'], assignees: ['alice'], reviewers: ['bob'] });
    expect(first).toMatchObject({ created: true, updated: false });
    expect(first.webUrl).toBe(`${fx.gl.url}/${PROJECT}/-/merge_requests/${first.iid}`);
    const mr = fx.gl.hooks.mergeRequest(PROJECT, first.iid) as any;
    expect(mr).toMatchObject({ title: 'Promote web 1.1 to production', description: 'v1', labels: ['promotion', 'env::production'], sha: b.sha, source_branch: b.name, target_branch: 'main', state: 'opened' });
    expect(mr.assignees.map((u: any) => u.username)).toEqual(['alice']);
    expect(mr.reviewers.map((u: any) => u.username)).toEqual(['bob']);

    const same = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 1.1 to production', description: 'v1', labels: ['env::production', 'promotion'], assignees: ['alice'], reviewers: ['bob'] });
    expect(same).toEqual({ iid: first.iid, webUrl: first.webUrl, created: false, updated: false });

    fx.gl.hooks.push(PROJECT, b.name, { files: overlay('1.2'), message: 'promote web 1.2' });
    const newer = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 1.2 to production', description: 'v2', draft: true });
    expect(newer).toMatchObject({ iid: first.iid, created: false, updated: true });
    expect(fx.gl.hooks.mergeRequest(PROJECT, first.iid)).toMatchObject({ title: 'Draft: Promote web 1.2 to production', description: 'v2', draft: true });
    expect(openMrs(b.name)).toHaveLength(1);
  });

  it('adopts the MR another run created when create answers 409', async () => {
    const gl = fx.client();
    const b = branch('2.0');
    fx.gl.hooks.raceNextCreate();
    const r = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 2.0', description: 'mine' });
    // the concurrent run sent the same request: adopted as it is
    expect(r).toMatchObject({ created: false, updated: false });
    expect(fx.recorder.seen.has('POST /projects/:id/merge_requests 409')).toBe(true);
    expect(openMrs(b.name)).toHaveLength(1);
    expect(fx.gl.hooks.mergeRequest(PROJECT, r.iid)).toMatchObject({ description: 'mine' });
  });

  it('opens a new MR when the previous one was closed without merging', async () => {
    const gl = fx.client();
    const b = branch('3.0');
    const a = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 3.0', description: 'd' });
    fx.gl.hooks.setState(PROJECT, a.iid, 'close');
    const n = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 3.0', description: 'd' });
    expect(n.created).toBe(true);
    expect(n.iid).not.toBe(a.iid);
    expect(fx.gl.hooks.mergeRequest(PROJECT, a.iid)).toMatchObject({ state: 'closed' });
  });

  it('refuses an unknown assignee before creating anything (exit 2)', async () => {
    const b = branch('3.1');
    const e = await caught(upsertMergeRequest(fx.client(), { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 't', description: 'd', assignees: ['nobody-here'] }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('nobody-here');
    expect(openMrs(b.name)).toHaveLength(0);
  });
});

describe('autoMerge', () => {
  async function openMr(tag: string) {
    const b = branch(tag);
    const r = await upsertMergeRequest(fx.client(), { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: `Promote web ${tag}`, description: 'd' });
    return { ...b, iid: r.iid };
  }

  it('waits out checking/preparing/approvals_syncing/unchecked, then merges for real', async () => {
    const m = await openMr('4.0');
    const before = fx.gl.hooks.branchSha(PROJECT, 'main')!;
    fx.gl.hooks.mergeStatusSequence(PROJECT, m.iid, ['checking', 'preparing', 'approvals_syncing', 'unchecked']);
    const waits: string[] = [];
    const r = await autoMerge(fx.client(), { project: PROJECT, iid: m.iid, sha: m.sha, timeoutMs: 30_000, pollMs: 5, onWait: (w) => waits.push(w) });
    expect(r.state).toBe('merged');
    expect(waits.join('\n')).toMatch(/checking[\s\S]*preparing[\s\S]*approvals_syncing[\s\S]*unchecked/);
    const main = fx.gl.hooks.branchSha(PROJECT, 'main')!;
    expect(r.mergeCommitSha).toBe(main);
    const { execFileSync } = await import('node:child_process');
    const parents = execFileSync('git', ['--git-dir', fx.git.repoPath('group/config.git'), 'show', '-s', '--format=%P', main]).toString().trim().split(' ');
    expect(parents).toEqual([before, m.sha]);
  });

  it('treats a 405 just after "mergeable" as not yet', async () => {
    const m = await openMr('4.1');
    fx.gl.hooks.failNextMerge(PROJECT, m.iid, { status: 405, times: 2 });
    const r = await autoMerge(fx.client(), { project: PROJECT, iid: m.iid, sha: m.sha, timeoutMs: 30_000, pollMs: 5 });
    expect(r.state).toBe('merged');
    expect(fx.recorder.seen.has('PUT /projects/:id/merge_requests/:iid/merge 405')).toBe(true);
  });

  it('schedules the merge while the pipeline runs; the double merges when it succeeds', async () => {
    const m = await openMr('4.2');
    fx.gl.hooks.setPipeline(PROJECT, m.iid, 'running');
    const r = await autoMerge(fx.client(), { project: PROJECT, iid: m.iid, sha: m.sha, timeoutMs: 30_000, pollMs: 5 });
    expect(r.state).toBe('scheduled');
    expect(fx.gl.hooks.mergeRequest(PROJECT, m.iid)).toMatchObject({ state: 'opened', merge_when_pipeline_succeeds: true });
    fx.gl.hooks.setPipeline(PROJECT, m.iid, 'success');
    expect(fx.gl.hooks.mergeRequest(PROJECT, m.iid)).toMatchObject({ state: 'merged' });
  });

  it('fails clearly on a conflict and leaves the target branch as it was', async () => {
    const m = await openMr('5.0');
    fx.gl.hooks.push(PROJECT, 'main', { files: overlay('5.0-hotfix'), message: 'hotfix on main' });
    const before = fx.gl.hooks.branchSha(PROJECT, 'main');
    const e = await caught(autoMerge(fx.client(), { project: PROJECT, iid: m.iid, sha: m.sha, timeoutMs: 30_000, pollMs: 5 }));
    expect(e.code).toBe('EGITLAB_MERGE_BLOCKED');
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/conflict/);
    expect(fx.gl.hooks.branchSha(PROJECT, 'main')).toBe(before);
  });

  it('fails clearly on a closed MR and on a moved head; times out on a status that never settles', async () => {
    const c = await openMr('6.0');
    fx.gl.hooks.setState(PROJECT, c.iid, 'close');
    expect((await caught(autoMerge(fx.client(), { project: PROJECT, iid: c.iid, sha: c.sha, timeoutMs: 10_000, pollMs: 5 }))).message).toMatch(/closed/);

    const moved = await openMr('6.1');
    fx.gl.hooks.push(PROJECT, moved.name, { files: { 'extra.txt': 'x\n' } });
    const e = await caught(autoMerge(fx.client(), { project: PROJECT, iid: moved.iid, sha: moved.sha, timeoutMs: 10_000, pollMs: 5 }));
    expect(e.code).toBe('EGITLAB_MERGE_BLOCKED');
    expect(e.message).toMatch(/moved/);

    const slow = await openMr('6.2');
    fx.gl.hooks.mergeStatusSequence(PROJECT, slow.iid, Array(50).fill('checking'));
    const t = await caught(autoMerge(fx.client(), { project: PROJECT, iid: slow.iid, sha: slow.sha, timeoutMs: 100, pollMs: 20 }));
    expect(t.code).toBe('EGITLAB_MERGE_TIMEOUT');
    expect(t.exitCode).toBe(4);
    expect(fx.gl.hooks.mergeRequest(PROJECT, slow.iid)).toMatchObject({ state: 'opened' });
  });
});

describe('findMergeRequestForCommit', () => {
  it('finds the merged MR by its merge commit, not by one of its inner commits; a direct push has none', async () => {
    const b = branch('7.0');
    const r = await upsertMergeRequest(fx.client(), { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Promote web 7.0', description: 'd' });
    const merged = await autoMerge(fx.client(), { project: PROJECT, iid: r.iid, sha: b.sha, timeoutMs: 10_000, pollMs: 5 });
    const gl = fx.client();
    expect((await findMergeRequestForCommit(gl, { project: PROJECT, sha: merged.mergeCommitSha! }))?.iid).toBe(r.iid);
    expect((await findMergeRequestForCommit(gl, { project: PROJECT, sha: merged.mergeCommitSha!, targetBranch: 'main' }))?.iid).toBe(r.iid);
    expect(await findMergeRequestForCommit(gl, { project: PROJECT, sha: merged.mergeCommitSha!, targetBranch: 'other' })).toBeUndefined();
    // the MR's head is an inner commit of the merge: pushed alone to the branch, no MR vouches for it
    expect(await findMergeRequestForCommit(gl, { project: PROJECT, sha: b.sha, targetBranch: 'main' })).toBeUndefined();
    const direct = fx.gl.hooks.push(PROJECT, 'main', { files: { 'direct.txt': 'pushed without MR\n' } });
    expect(await findMergeRequestForCommit(gl, { project: PROJECT, sha: direct })).toBeUndefined();
  });
});

describe('findMergeRequestForCommit with a short SHA', () => {
  it('takes the MR whose merge commit the short SHA abbreviates; an inner commit two MRs contain matches neither', async () => {
    // release branches off main before the first MR merges; a second MR carries the first one's commit to it
    fx.gl.hooks.push(PROJECT, 'release', { files: { 'release.txt': 'r\n' } });
    const first = branch('8.0');
    const gl = fx.client();
    const r1 = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: first.name, targetBranch: 'main', title: 'Promote web 8.0', description: 'd' });
    const m1 = await autoMerge(gl, { project: PROJECT, iid: r1.iid, sha: first.sha, timeoutMs: 10_000, pollMs: 5 });
    const second = { name: 'backport-8.0', sha: fx.gl.hooks.push(PROJECT, 'backport-8.0', { files: { 'notes.txt': 'backport\n' }, from: first.name }) };
    const r2 = await upsertMergeRequest(gl, { project: PROJECT, sourceBranch: second.name, targetBranch: 'release', title: 'Backport 8.0', description: 'd' });
    await autoMerge(gl, { project: PROJECT, iid: r2.iid, sha: second.sha, timeoutMs: 10_000, pollMs: 5 });
    // both merged MRs contain the first commit; the newer one is the backport
    expect((await gl.commitMergeRequests(PROJECT, first.sha)).map((m) => m.iid).sort()).toEqual([r1.iid, r2.iid].sort());
    for (const sha of [m1.mergeCommitSha!, m1.mergeCommitSha!.slice(0, 8), m1.mergeCommitSha!.slice(0, 8).toUpperCase()]) {
      expect((await findMergeRequestForCommit(gl, { project: PROJECT, sha }))?.iid, sha).toBe(r1.iid);
    }
    for (const sha of [first.sha, first.sha.slice(0, 8)]) expect(await findMergeRequestForCommit(gl, { project: PROJECT, sha }), sha).toBeUndefined();
  });
});

describe('upsertNote', () => {
  it('creates one note and edits it in place on every later run; never touches a quote by someone else', async () => {
    const b = branch('8.0');
    const { iid } = await upsertMergeRequest(fx.client(), { project: PROJECT, sourceBranch: b.name, targetBranch: 'main', title: 'Preview', description: 'd' });
    const marker = noteMarker('preview', 'production');
    const gl = fx.client();
    const a = await upsertNote(gl, { project: PROJECT, mrIid: iid, marker, body: 'diff v1' });
    expect(a.created).toBe(true);
    // alice quotes the note (marker included) in a reply
    await fx.client('alice').createNote(PROJECT, iid, `> ${marker}\n> diff v1\n\nlooks good`);
    const b2 = await upsertNote(gl, { project: PROJECT, mrIid: iid, marker, body: 'diff v2' });
    expect(b2).toEqual({ id: a.id, created: false, changed: true });
    // the same body again: the note is left as it is (and the preview says so, not "updated")
    const again = await upsertNote(gl, { project: PROJECT, mrIid: iid, marker, body: 'diff v2' });
    expect(again).toEqual({ id: a.id, created: false, changed: false });
    const notes = fx.gl.hooks.notes(PROJECT, iid).filter((n: any) => !n.system);
    expect(notes).toHaveLength(2);
    expect(notes.find((n: any) => n.id === a.id)?.body).toBe(`${marker}\ndiff v2`);
    expect(notes.find((n: any) => n.id !== a.id)?.body).toContain('looks good');
    expect(fx.recorder.seen.has('PUT /projects/:id/merge_requests/:iid/notes/:note_id 200')).toBe(true);
    // another key is another note
    const other = await upsertNote(gl, { project: PROJECT, mrIid: iid, marker: noteMarker('preview', 'staging'), body: 'staging diff' });
    expect(other.created).toBe(true);
  });
});
