/**
 * Merge-request operations on top of the client:
 *  - upsertMergeRequest: one open MR per source/target pair. List by source+target+state=opened; edit it when
 *    found (title, description, labels, assignees, reviewers, draft); else create; on 409 from create (another
 *    runner was faster) list again and adopt. A closed, unmerged MR is ignored: a new one is created.
 *  - autoMerge: merge when the pipeline succeeds, pinned to `sha`; `checking`, `preparing`,
 *    `approvals_syncing`, `unchecked` and a 405 just after "mergeable" are "not yet" (bounded backoff); a
 *    conflict, a closed or not-open MR, or a moved head is a clear failure.
 *  - findMergeRequestForCommit: the merged MR that brought a commit to its branch (for `gate --commit`).
 */
import { fail } from '../core/errors.js';
import type { GitlabClient, GitlabUser, MergeRequest } from './client.js';
import { isGitlabApiError } from './client.js';
import { GitlabErrors } from './errors.js';

export interface UpsertMergeRequestInput {
  project: string | number;
  sourceBranch: string;
  targetBranch: string;
  title: string;
  description: string;
  labels?: string[];
  /** usernames */
  assignees?: string[];
  /** usernames */
  reviewers?: string[];
  draft?: boolean;
}

export interface UpsertMergeRequestResult {
  iid: number;
  webUrl: string;
  created: boolean;
  updated: boolean;
}

const DRAFT = /^\s*(\[draft\]|\(draft\)|draft:|draft\s+-\s+)\s*/i;

/** the title GitLab shows for draft state: `Draft: ` prefix (the API's `draft` flag follows it) */
export function draftTitle(title: string, draft: boolean | undefined): string {
  const bare = title.replace(DRAFT, '');
  return draft ? `Draft: ${bare}` : bare;
}

async function userIds(gl: GitlabClient, names: string[] | undefined, what: string): Promise<number[] | undefined> {
  if (!names) return undefined;
  const ids: number[] = [];
  for (const n of names) {
    const u = await gl.findUser(n.replace(/^@/, ''));
    if (!u) throw fail.usage(GitlabErrors.UNKNOWN_APPROVER, `${what} ${JSON.stringify(n)}: no such GitLab user`, { hint: 'use the username (as in @username)' });
    ids.push(u.id);
  }
  return ids;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
const sameUsers = (have: GitlabUser[], ids: number[] | undefined) => ids === undefined || sameSet(have.map((u) => String(u.id)), ids.map(String));

export async function upsertMergeRequest(gl: GitlabClient, i: UpsertMergeRequestInput): Promise<UpsertMergeRequestResult> {
  const [assigneeIds, reviewerIds] = [await userIds(gl, i.assignees, 'assignee'), await userIds(gl, i.reviewers, 'reviewer')];
  const title = i.draft === undefined ? i.title : draftTitle(i.title, i.draft);

  const findOpen = async (): Promise<MergeRequest | undefined> => {
    const list = await gl.listMergeRequests(i.project, { sourceBranch: i.sourceBranch, targetBranch: i.targetBranch, state: 'opened' });
    // the server filters; filter again (a proxy or an old GitLab may ignore a parameter)
    return list.filter((m) => m.state === 'opened' && m.sourceBranch === i.sourceBranch && m.targetBranch === i.targetBranch).sort((a, b) => a.iid - b.iid)[0];
  };

  const update = async (mr: MergeRequest): Promise<UpsertMergeRequestResult> => {
    const changes: Parameters<GitlabClient['editMergeRequest']>[2] = {};
    // keep a draft state set by a human unless the caller says otherwise
    const wantTitle = i.draft === undefined && mr.draft ? draftTitle(i.title, true) : title;
    if (mr.title !== wantTitle) changes.title = wantTitle;
    if (mr.description !== i.description) changes.description = i.description;
    if (i.labels && !sameSet(mr.labels, i.labels)) changes.labels = i.labels;
    if (!sameUsers(mr.assignees, assigneeIds)) changes.assigneeIds = assigneeIds;
    if (!sameUsers(mr.reviewers, reviewerIds)) changes.reviewerIds = reviewerIds;
    if (!Object.keys(changes).length) return { iid: mr.iid, webUrl: mr.webUrl, created: false, updated: false };
    const after = await gl.editMergeRequest(i.project, mr.iid, changes);
    return { iid: after.iid, webUrl: after.webUrl || mr.webUrl, created: false, updated: true };
  };

  const open = await findOpen();
  if (open) return update(open);
  try {
    const mr = await gl.createMergeRequest(i.project, {
      sourceBranch: i.sourceBranch,
      targetBranch: i.targetBranch,
      title,
      description: i.description,
      labels: i.labels,
      assigneeIds,
      reviewerIds,
    });
    return { iid: mr.iid, webUrl: mr.webUrl, created: true, updated: false };
  } catch (e) {
    if (!isGitlabApiError(e, 409)) throw e;
    // "Another open merge request already exists for this source branch: !N": a concurrent run created it
    const adopted = await findOpen();
    if (!adopted) throw e;
    return update(adopted);
  }
}

/**
 * Closes the open MR(s) from sourceBranch into targetBranch, with a note saying why (a promotion whose
 * target already runs what the source runs: the MR's older content must not be merged later).
 */
export async function closeOpenMergeRequests(gl: GitlabClient, i: { project: string | number; sourceBranch: string; targetBranch: string; reason: string }): Promise<Array<{ iid: number; webUrl: string }>> {
  const list = await gl.listMergeRequests(i.project, { sourceBranch: i.sourceBranch, targetBranch: i.targetBranch, state: 'opened' });
  const open = list.filter((m) => m.state === 'opened' && m.sourceBranch === i.sourceBranch && m.targetBranch === i.targetBranch);
  const out: Array<{ iid: number; webUrl: string }> = [];
  for (const mr of open) {
    await gl.createNote(i.project, mr.iid, i.reason);
    await gl.editMergeRequest(i.project, mr.iid, { stateEvent: 'close' });
    out.push({ iid: mr.iid, webUrl: mr.webUrl });
  }
  return out;
}

export interface AutoMergeInput {
  project: string | number;
  iid: number;
  /** the head we expect to merge; GitLab refuses (409) when the MR moved */
  sha: string;
  timeoutMs: number;
  /** first backoff (default 1 s, doubled up to 15 s) */
  pollMs?: number;
  squash?: boolean;
  removeSourceBranch?: boolean;
  /** progress messages */
  onWait?: (message: string) => void;
}

export interface AutoMergeResult {
  /** merged now, or set to merge when the pipeline succeeds */
  state: 'merged' | 'scheduled';
  mergeCommitSha: string | null;
  webUrl: string;
}

/** detailed_merge_status values that mean "GitLab has not finished computing": ask again later */
export const NOT_YET = new Set(['checking', 'unchecked', 'preparing', 'approvals_syncing']);
/** values that no waiting can fix */
const TERMINAL = new Set(['conflict', 'not_open', 'need_rebase', 'broken_status']);
/** values where merge-when-pipeline-succeeds is accepted (the pipeline or approvals are what is missing); any
 * other value (draft_status, merge_time, an unknown new one) is waited on until the timeout, which names it */
const SCHEDULABLE = new Set(['mergeable', 'ci_still_running', 'ci_must_pass', 'not_approved', 'discussions_not_resolved', 'requested_changes', 'commits_status', 'status_checks_must_pass', 'external_status_checks']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function autoMerge(gl: GitlabClient, i: AutoMergeInput): Promise<AutoMergeResult> {
  const deadline = Date.now() + i.timeoutMs;
  const where = `merge request !${i.iid}`;
  let delay = i.pollMs ?? 1000;
  const wait = async (why: string) => {
    if (Date.now() + delay > deadline) {
      throw fail.timeout(GitlabErrors.MERGE_TIMEOUT, `merge request !${i.iid} did not become mergeable within ${Math.round(i.timeoutMs / 1000)} s (last: ${why})`, {
        where,
        hint: 'GitLab is still computing the merge status, or something blocks the merge; look at the MR, then re-run',
      });
    }
    i.onWait?.(`!${i.iid}: ${why}; asking again in ${Math.round(delay / 100) / 10} s`);
    await sleep(delay);
    delay = Math.min(delay * 2, 15_000);
  };
  for (;;) {
    const mr = await gl.getMergeRequest(i.project, i.iid);
    if (mr.state === 'merged') return { state: 'merged', mergeCommitSha: mr.mergeCommitSha, webUrl: mr.webUrl };
    if (mr.state !== 'opened') {
      throw fail.failed(GitlabErrors.MERGE_BLOCKED, `merge request !${i.iid} is ${mr.state}, not open: it cannot be merged`, { where: mr.webUrl || where, hint: 'reopen it or let the next run open a new one' });
    }
    if (mr.sha && mr.sha !== i.sha) {
      throw fail.failed(GitlabErrors.MERGE_BLOCKED, `merge request !${i.iid} moved: its head is ${mr.sha.slice(0, 12)}, not ${i.sha.slice(0, 12)}`, { where: mr.webUrl || where, hint: 'someone pushed to the branch; re-run to merge what it holds now' });
    }
    const st = mr.detailedMergeStatus;
    if (mr.hasConflicts || TERMINAL.has(st)) {
      throw fail.failed(GitlabErrors.MERGE_BLOCKED, `merge request !${i.iid} cannot be merged: ${mr.hasConflicts || st === 'conflict' ? 'it has conflicts with ' + mr.targetBranch : st}`, {
        where: mr.webUrl || where,
        hint: st === 'need_rebase' ? 'rebase the MR onto its target' : 'resolve the conflict (or close the MR and re-run the promotion from the new target)',
      });
    }
    if (mr.mergeWhenPipelineSucceeds) return { state: 'scheduled', mergeCommitSha: null, webUrl: mr.webUrl };
    if (NOT_YET.has(st) || (st && !SCHEDULABLE.has(st))) {
      await wait(`detailed_merge_status ${st}`);
      continue;
    }
    try {
      const after = await gl.mergeMergeRequest(i.project, i.iid, { sha: i.sha, autoMerge: true, squash: i.squash, removeSourceBranch: i.removeSourceBranch });
      if (after.state === 'merged') return { state: 'merged', mergeCommitSha: after.mergeCommitSha, webUrl: after.webUrl };
      return { state: 'scheduled', mergeCommitSha: null, webUrl: after.webUrl };
    } catch (e) {
      // 405/406/422 right after "mergeable": GitLab recomputes asynchronously; look again (the loop re-reads
      // the status, so a real conflict or a closed MR ends as a clear failure above)
      if (isGitlabApiError(e) && (e.status === 405 || e.status === 406 || e.status === 422)) {
        await wait(`GitLab answered ${e.status} to the merge (${e.serverMessage})`);
        continue;
      }
      if (isGitlabApiError(e, 409)) {
        throw fail.failed(GitlabErrors.MERGE_BLOCKED, `merge request !${i.iid} moved while merging (409 ${e.serverMessage})`, { where, hint: 're-run to merge what the branch holds now' });
      }
      throw e;
    }
  }
}

/**
 * The merged MR that brought a commit into the target branch (for `gate --commit`): only an MR whose merge commit
 * or squash commit is the SHA, or, for a fast-forward merge (no merge commit), whose head is the SHA. A commit that
 * was only an inner commit of an MR matches none (its approvals vouch for the merge, not for a direct push of one
 * of its commits). When several qualify (an empty MR merged later with the same head), the EARLIEST merge is the
 * one that brought the commit: a later MR cannot vouch for it. A short SHA (7+ hex) matches by prefix.
 * A merged MR without a parseable merged_at cannot be ordered: the gate fails (EGITLAB_BAD_ANSWER).
 */
export async function findMergeRequestForCommit(gl: GitlabClient, i: { project: string | number; sha: string; targetBranch?: string }): Promise<MergeRequest | undefined> {
  const list = (await gl.commitMergeRequests(i.project, i.sha)).filter((m) => m.state === 'merged' && (!i.targetBranch || m.targetBranch === i.targetBranch));
  const sha = i.sha.toLowerCase();
  const is = (x: string | null | undefined) => !!x && (x.toLowerCase() === sha || (sha.length < 40 && x.toLowerCase().startsWith(sha)));
  const exact = list.filter((m) => is(m.mergeCommitSha) || is(m.squashCommitSha) || (!m.mergeCommitSha && is(m.sha)));
  for (const m of exact) {
    if (!Number.isInteger(m.iid) || m.iid <= 0 || !m.mergedAt || Number.isNaN(Date.parse(m.mergedAt))) {
      throw fail.failed(GitlabErrors.BAD_ANSWER, `GitLab's answer cannot be judged: merged merge request ${Number.isInteger(m.iid) ? `!${m.iid}` : '(no iid)'} has no iid or merged_at`, {
        where: `commit ${i.sha.slice(0, 12)} of project ${i.project}`,
        hint: 'the gate fails closed on a malformed answer; check the GitLab version and any proxy in front of it',
      });
    }
  }
  return [...exact].sort((a, b) => Date.parse(a.mergedAt!) - Date.parse(b.mergedAt!) || a.iid - b.iid)[0];
}
