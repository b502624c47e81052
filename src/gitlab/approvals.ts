/**
 * The merge-request approval gate GitLab Free does not enforce, as a pure function over API data
 * (evaluateApprovals) and a fetcher that gathers that data (checkMergeRequestApprovals).
 *
 * Rules:
 *  - distinct approvers from the approvals endpoint's `approved_by` (one user counts once);
 *  - the MR author never counts unless allowAuthor;
 *  - when --approver users or @groups are given, only those users and the groups' members (direct and
 *    inherited, GET /groups/:id/members/all) count;
 *  - only approvals given after the MR's latest push count (Free does not reset approvals on push), and for
 *    a merged MR only those given before it merged.
 *
 * The latest push: GitLab records a diff version (GET …/merge_requests/:iid/versions) for every push to the
 * source branch, with `head_commit_sha` and `created_at` set by the server when it received the push. We take
 * the newest version's `created_at` when its head is the MR's head. Commit dates (…/commits) are NOT used:
 * authored/committed dates are written by the client and a force-push of an old commit carries old dates.
 * When the MR's head has no version yet (GitLab is still processing a push), no approval counts yet.
 * An approval without `approved_at` (GitLab before it exposed the field) cannot be placed in time and is
 * ignored, with that reason.
 */
import { fail } from '../core/errors.js';
import type { Approval, GitlabClient, MergeRequest, MergeRequestVersion } from './client.js';
import { isGitlabApiError } from './client.js';
import { GitlabErrors } from './errors.js';

export interface GateInput {
  required: number;
  allowAuthor: boolean;
  /** the MR author's username */
  author: string;
  approvals: Approval[];
  /** ISO time of the latest push; undefined = unknown (the head has no diff version yet: nothing counts) */
  lastPushAt?: string;
  /** ISO time the MR merged (the --commit path): later approvals do not count */
  mergedAt?: string | null;
  /** allowed approvers: lower-case username → how they qualify (`--approver alice`, `@release`); undefined = anybody */
  allowed?: Map<string, string>;
  /** describes the allowed approvers for messages, e.g. `alice, bob or a member of @release` */
  allowedText?: string;
}

export interface CountedApproval {
  username: string;
  approvedAt?: string;
  via?: string;
}

export interface IgnoredApproval {
  username: string;
  approvedAt?: string;
  reason: string;
}

export interface GateResult {
  satisfied: boolean;
  required: number;
  counted: CountedApproval[];
  ignored: IgnoredApproval[];
  /** how many more qualifying approvals are needed */
  missing: number;
  /** who may give them */
  from: string;
}

const t = (iso: string | undefined | null) => (iso ? Date.parse(iso) : NaN);

export function evaluateApprovals(i: GateInput): GateResult {
  const counted: CountedApproval[] = [];
  const ignored: IgnoredApproval[] = [];
  const seen = new Set<string>();
  const pushAt = t(i.lastPushAt);
  const mergedAt = t(i.mergedAt);
  // one entry per user (GitLab keeps one approval per user; if a list repeats a user, the latest counts)
  const byUser = new Map<string, Approval[]>();
  for (const a of i.approvals) {
    const k = a.user.username.toLowerCase();
    if (!byUser.has(k)) byUser.set(k, []);
    byUser.get(k)!.push(a);
  }
  for (const [k, list] of byUser) {
    const a = [...list].sort((x, y) => (t(y.approvedAt) || 0) - (t(x.approvedAt) || 0))[0];
    const username = a.user.username;
    if (seen.has(k)) continue;
    seen.add(k);
    const ign = (reason: string) => ignored.push({ username, approvedAt: a.approvedAt, reason });
    if (!i.allowAuthor && k === i.author.toLowerCase()) ign('the author of the MR (pass --allow-author to count it)');
    else if (i.allowed && !i.allowed.has(k)) ign(`not an allowed approver (${i.allowedText ?? 'see --approver'})`);
    else if (!a.approvedAt || Number.isNaN(t(a.approvedAt))) ign('GitLab gave no approval time (approved_at), so it cannot be placed after the latest push');
    else if (Number.isNaN(pushAt)) ign('GitLab has not recorded the latest push yet (no diff version for the head): approve again in a moment');
    else if (t(a.approvedAt) <= pushAt) ign(`given before the latest push (${i.lastPushAt})`);
    else if (!Number.isNaN(mergedAt) && t(a.approvedAt) > mergedAt) ign(`given after the MR merged (${i.mergedAt})`);
    else counted.push({ username, approvedAt: a.approvedAt, via: i.allowed?.get(k) });
  }
  const missing = Math.max(0, i.required - counted.length);
  const from = `${i.allowed ? i.allowedText ?? 'the allowed approvers' : 'any project member'}${i.allowAuthor ? '' : ` (not the author @${i.author})`}`;
  return { satisfied: missing === 0, required: i.required, counted, ignored, missing, from };
}

/** the report lines of a gate result */
export function formatGateReport(r: GateResult, what: string): string[] {
  const lines: string[] = [];
  const when = (x?: string) => (x ? ` at ${x}` : '');
  lines.push(`${what}: ${r.counted.length} of ${r.required} required approval${r.required === 1 ? '' : 's'}`);
  for (const c of r.counted) lines.push(`  counted: @${c.username}${when(c.approvedAt)}${c.via ? ` (${c.via})` : ''}`);
  for (const g of r.ignored) lines.push(`  ignored: @${g.username}${when(g.approvedAt)}: ${g.reason}`);
  if (!r.satisfied) lines.push(`  missing: ${r.missing} more approval${r.missing === 1 ? '' : 's'} from ${r.from}`);
  return lines;
}

/** the newest diff version, and whether it is the MR's head */
export function latestPush(versions: MergeRequestVersion[], headSha: string): { at?: string; sha?: string } {
  const newest = [...versions].sort((a, b) => t(b.createdAt) - t(a.createdAt) || b.id - a.id)[0];
  if (!newest || (headSha && newest.headCommitSha !== headSha)) return {};
  return { at: newest.createdAt, sha: newest.headCommitSha };
}

/**
 * Expands --approver values: `user` (checked to exist) and `@group` (its members). Unknown names are a
 * usage error (exit 2): a typo must not silently make the gate unpassable or open.
 */
export async function resolveApprovers(gl: GitlabClient, approvers: string[]): Promise<{ allowed?: Map<string, string>; text?: string }> {
  if (!approvers.length) return {};
  const allowed = new Map<string, string>();
  const users: string[] = [];
  const groups: string[] = [];
  for (const raw of approvers) {
    const a = raw.trim();
    if (!a) continue;
    if (a.startsWith('@')) {
      const g = a.slice(1).replace(/^\/+|\/+$/g, '');
      let members;
      try {
        members = await gl.groupMembers(g);
      } catch (e) {
        if (isGitlabApiError(e, 404)) throw fail.usage(GitlabErrors.UNKNOWN_APPROVER, `--approver @${g}: no such GitLab group (or the token cannot see it)`, { hint: 'use the group\'s full path, e.g. @my-org/release-managers' });
        throw e;
      }
      groups.push(`@${g}`);
      for (const m of members) if (m.state === 'active' || !m.state) if (!allowed.has(m.username.toLowerCase())) allowed.set(m.username.toLowerCase(), `member of @${g}`);
    } else {
      const u = await gl.findUser(a);
      if (!u) throw fail.usage(GitlabErrors.UNKNOWN_APPROVER, `--approver ${a}: no such GitLab user`, { hint: 'give the username (write @group for a group)' });
      users.push(u.username);
      allowed.set(u.username.toLowerCase(), `--approver ${u.username}`);
    }
  }
  const parts = [...users.map((u) => `@${u}`), ...groups.map((g) => `a member of ${g}`)];
  const text = parts.length <= 1 ? parts.join('') : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
  return { allowed, text };
}

export interface CheckApprovalsInput {
  project: string | number;
  /** the MR, or its IID */
  mr: number | MergeRequest;
  required: number;
  approvers: string[];
  allowAuthor: boolean;
  /** approvals after the merge do not count (the --commit path) */
  beforeMerge?: boolean;
}

/** Gathers the data (MR, approvals, versions, approvers) and evaluates the gate. */
export async function checkMergeRequestApprovals(gl: GitlabClient, i: CheckApprovalsInput): Promise<GateResult & { mr: MergeRequest; lastPushAt?: string }> {
  const mr = typeof i.mr === 'number' ? await gl.getMergeRequest(i.project, i.mr) : i.mr;
  const [approvals, versions, who] = await Promise.all([gl.approvals(i.project, mr.iid), gl.mergeRequestVersions(i.project, mr.iid), resolveApprovers(gl, i.approvers)]);
  const push = latestPush(versions, mr.sha);
  const r = evaluateApprovals({
    required: i.required,
    allowAuthor: i.allowAuthor,
    author: mr.author.username,
    approvals: approvals.approvedBy,
    lastPushAt: push.at,
    mergedAt: i.beforeMerge ? mr.mergedAt : undefined,
    allowed: who.allowed,
    allowedText: who.text,
  });
  return { ...r, mr, lastPushAt: push.at };
}
