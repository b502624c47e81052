/**
 * The GitLab double's merge methods, as real git on the harness's git server
 * (https://docs.gitlab.com/user/project/merge_requests/methods/): merge commit, merge commit with semi-linear
 * history, fast-forward, and squash, selected per project; the rebase API; and the "Pipelines must succeed"
 * check against a skipped merge request pipeline. Each branch move is seen by the push log as GitLab's pipeline
 * creation sees it (the merging user's push), and every response is checked against test/contracts/gitlab-api.json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/services.js';
import { git } from '../helpers/config-repo.js';
import { setupGitlab, PROJECT, type GitlabFixture } from '../gitlab/fixture.js';
import { decidePipeline, installPushLog, type PushEvent } from '../helpers/gitlab-model.js';

let fx: GitlabFixture;
let log: { pushes(): PushEvent[] };
let work: string;
const bare = () => fx.git.repoPath('group/config.git');
const rev = (ref: string) => git(bare(), ['rev-parse', ref]);
const msgOf = (ref: string) => git(bare(), ['log', '-1', '--format=%B', ref]);

beforeAll(async () => {
  fx = await setupGitlab();
  log = installPushLog(bare());
  work = join(tmp('gl-merge-'), 'w');
  git(join(work, '..'), ['clone', '-q', fx.git.authUrl('group/config.git'), 'w']);
});
afterAll(async () => {
  expect(fx.recorder.violations).toEqual([]);
  await fx?.stop();
});

/** a branch `name` from the current main with one commit per message, and one more commit on main (diverged) */
function diverged(name: string, messages: string[], o: { mainMoves?: boolean } = {}): void {
  git(work, ['fetch', '-q', 'origin']);
  git(work, ['checkout', '-q', '-B', name, 'origin/main']);
  messages.forEach((m, i) => {
    writeFileSync(join(work, `${name}-${i}.txt`), `${m}\n`);
    git(work, ['add', '-A']);
    git(work, ['commit', '-qm', m]);
  });
  git(work, ['push', '-q', 'origin', `HEAD:refs/heads/${name}`]);
  if (o.mainMoves !== false) {
    git(work, ['checkout', '-q', '-B', `${name}-main`, 'origin/main']);
    writeFileSync(join(work, `main-${name}.txt`), 'main moves on\n');
    git(work, ['add', '-A']);
    git(work, ['commit', '-qm', `main moves on (${name})`]);
    git(work, ['push', '-q', 'origin', 'HEAD:refs/heads/main']);
  }
}

const api = async (method: string, path: string, user: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> => {
  // one connection per request: a kept-alive socket that the server closes just as the next request is written
  // fails with ECONNRESET on a loaded machine
  const r = await fetch(`${fx.gl.apiUrl}/projects/42${path}`, { method, headers: { 'PRIVATE-TOKEN': fx.gl.tokenOf(user), connection: 'close', ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
};
const open = async (source: string, title: string) => {
  const r = await api('POST', '/merge_requests', 'alice', { source_branch: source, target_branch: 'main', title });
  expect(r.status).toBe(201);
  return r.body.iid as number;
};
const lastPush = () => log.pushes().at(-1)!;

describe('merge methods in the GitLab double (real git)', () => {
  it('merge commit: `git merge --no-ff`, GitLab\'s default message, pushed to main by the merging user', async () => {
    fx.gl.hooks.mergeSettings(PROJECT, { mergeMethod: 'merge', squashOption: 'default_off' });
    expect((await api('GET', '', 'alice')).body).toMatchObject({ merge_method: 'merge', only_allow_merge_if_pipeline_succeeds: true, allow_merge_on_skipped_pipeline: false });
    diverged('f-merge', ['one', 'two']);
    const iid = await open('f-merge', 'Add one and two');
    const main = rev('main');
    const src = rev('f-merge');
    const r = await api('PUT', `/merge_requests/${iid}/merge`, 'bob');
    expect(r.status).toBe(200);
    expect(r.body.merge_commit_sha).toBe(rev('main'));
    expect(git(bare(), ['rev-list', '--parents', '-n', '1', 'main']).split(' ').slice(1)).toEqual([main, src]);
    expect(msgOf('main')).toBe(`Merge branch 'f-merge' into 'main'\n\nAdd one and two\n\nSee merge request ${PROJECT}!${iid}`);
    expect(lastPush()).toEqual({ ref: 'refs/heads/main', before: main, after: rev('main'), user: 'bob', pushOptions: [] });
  });

  it('merge commit with squash: a squash commit (parent: the merge base, message: the MR title) and a merge commit of it', async () => {
    diverged('f-squash', ['[skip ci] a', 'b']);
    const iid = await open('f-squash', 'Squashed change');
    const base = git(bare(), ['merge-base', 'main', 'f-squash']);
    const main = rev('main');
    const r = await api('PUT', `/merge_requests/${iid}/merge`, 'bob', { squash: true });
    expect(r.status).toBe(200);
    const [, first, second] = git(bare(), ['rev-list', '--parents', '-n', '1', 'main']).split(' ');
    expect(first).toBe(main);
    expect(second).toBe(r.body.squash_commit_sha);
    expect(rev(`${second}^`)).toBe(base);
    expect(git(bare(), ['rev-parse', `${second}^{tree}`])).toBe(git(bare(), ['rev-parse', 'f-squash^{tree}']));
    expect(msgOf(second!)).toBe('Squashed change');
    expect(git(bare(), ['log', '-1', '--format=%an', second!])).toBe('Alice'); // the MR's author
  });

  it('semi-linear: refused (405, need_rebase) until the source is rebased; the rebase keeps messages and authors and is a push by who asked; then a merge commit', async () => {
    fx.gl.hooks.mergeSettings(PROJECT, { mergeMethod: 'rebase_merge' });
    diverged('f-semi', ['c', '[skip ci] d']);
    const iid = await open('f-semi', 'Semi-linear change');
    expect((await api('GET', `/merge_requests/${iid}`, 'alice')).body.detailed_merge_status).toBe('need_rebase');
    expect((await api('PUT', `/merge_requests/${iid}/merge`, 'bob')).status).toBe(405);
    const before = rev('f-semi');
    const rb = await api('PUT', `/merge_requests/${iid}/rebase`, 'carol');
    expect(rb).toEqual({ status: 202, body: { rebase_in_progress: true } });
    const after = rev('f-semi');
    expect(after).not.toBe(before);
    expect(rev('f-semi~2')).toBe(rev('main'));
    expect(git(bare(), ['log', '--format=%s|%an|%cn', '-2', 'f-semi']).split('\n')).toEqual(['[skip ci] d|Test|Carol', 'c|Test|Carol'].map((l) => l.replace('Test', git(bare(), ['log', '-1', '--format=%an', before]))));
    expect(lastPush()).toEqual({ ref: 'refs/heads/f-semi', before, after, user: 'carol', pushOptions: [] });
    const mr = (await api('GET', `/merge_requests/${iid}`, 'alice')).body;
    expect(mr).toMatchObject({ sha: after, detailed_merge_status: 'mergeable' });
    const main = rev('main');
    expect((await api('PUT', `/merge_requests/${iid}/merge`, 'bob')).status).toBe(200);
    expect(git(bare(), ['rev-list', '--parents', '-n', '1', 'main']).split(' ').slice(1)).toEqual([main, after]);
    expect(git(bare(), ['rev-list', '--first-parent', '--count', `${main}..main`])).toBe('1');
  });

  it('fast-forward: main becomes the source head itself, message and all (a [skip ci] head: main\'s push pipeline is skipped); merge_commit_sha null; rebase with skip_ci pushes with ci.skip', async () => {
    fx.gl.hooks.mergeSettings(PROJECT, { mergeMethod: 'ff' });
    diverged('f-ff', ['e', '[skip ci] bump app to sha256:1234 in staging']);
    const iid = await open('f-ff', 'Fast-forward change');
    expect((await api('PUT', `/merge_requests/${iid}/merge`, 'bob')).status).toBe(405);
    expect((await api('PUT', `/merge_requests/${iid}/rebase`, 'carol', { skip_ci: true })).status).toBe(202);
    expect(lastPush()).toMatchObject({ ref: 'refs/heads/f-ff', user: 'carol', pushOptions: ['ci.skip'] });
    expect(decidePipeline({ source: 'push', message: msgOf('f-ff'), pushOptions: lastPush().pushOptions, pushedBy: 'carol' }).status).toBe('skipped');
    const head = rev('f-ff');
    const main = rev('main');
    const r = await api('PUT', `/merge_requests/${iid}/merge`, 'bob');
    expect(r.status).toBe(200);
    expect(rev('main')).toBe(head);
    expect(r.body.merge_commit_sha).toBeNull();
    expect(lastPush()).toEqual({ ref: 'refs/heads/main', before: main, after: head, user: 'bob', pushOptions: [] });
    // GitLab judges main's pipeline by that commit: the source's [skip ci] head skips it
    expect(decidePipeline({ source: 'push', message: msgOf('main'), pushOptions: [], pushedBy: 'bob' }).status).toBe('skipped');
  });

  it('fast-forward with squash (required): one new commit on main, the squash message given, parent the old main', async () => {
    fx.gl.hooks.mergeSettings(PROJECT, { mergeMethod: 'ff', squashOption: 'always' });
    diverged('f-ffsq', ['g', '[skip ci] h'], { mainMoves: false });
    const iid = await open('f-ffsq', 'Release 7');
    expect((await api('GET', `/merge_requests/${iid}`, 'alice')).body.squash_on_merge).toBe(true);
    const main = rev('main');
    const r = await api('PUT', `/merge_requests/${iid}/merge`, 'bob', { squash_commit_message: 'Release 7\n\nSquashed from !' + iid });
    expect(r.status).toBe(200);
    expect(rev('main')).toBe(r.body.squash_commit_sha);
    expect(rev('main^')).toBe(main);
    expect(msgOf('main')).toBe(`Release 7\n\nSquashed from !${iid}`);
    expect(decidePipeline({ source: 'push', message: msgOf('main'), pushedBy: 'bob' }).status).toBe('created');
    // the gate finds the MR from the squash commit
    const mrs = await api('GET', `/repository/commits/${rev('main')}/merge_requests`, 'alice');
    expect(mrs.body).toEqual([expect.objectContaining({ iid, state: 'merged' })]);
  });

  it('"Pipelines must succeed": a skipped MR pipeline blocks the merge (ci_must_pass, 405) unless skipped pipelines count as successful', async () => {
    fx.gl.hooks.mergeSettings(PROJECT, { mergeMethod: 'merge', squashOption: 'default_off' });
    diverged('f-skip', ['[skip ci] only a bump'], { mainMoves: false });
    const iid = await open('f-skip', 'A skipped pipeline');
    // GitLab creates the MR's pipeline for a [skip ci] head as skipped (issue 375786)
    const d = decidePipeline({ source: 'merge_request_event', message: msgOf('f-skip') });
    expect(d.status).toBe('skipped');
    fx.gl.hooks.setPipeline(PROJECT, iid, 'skipped');
    expect((await api('GET', `/merge_requests/${iid}`, 'alice')).body.detailed_merge_status).toBe('ci_must_pass');
    expect((await api('PUT', `/merge_requests/${iid}/merge`, 'bob')).status).toBe(405);
    fx.gl.hooks.mergeSettings(PROJECT, { allowMergeOnSkippedPipeline: true });
    expect((await api('GET', `/merge_requests/${iid}`, 'alice')).body.detailed_merge_status).toBe('mergeable');
    expect((await api('PUT', `/merge_requests/${iid}/merge`, 'bob')).status).toBe(200);
    fx.gl.hooks.mergeSettings(PROJECT, { allowMergeOnSkippedPipeline: false });
  });
});
