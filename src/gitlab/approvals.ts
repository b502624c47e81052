/**
 * The merge-request approval gate GitLab Free does not enforce, as a pure function over API data
 * (evaluateApprovals) and a fetcher that gathers that data (checkMergeRequestApprovals).
 *
 * Rules (each fails closed: what cannot be established does not count, a malformed answer fails the gate):
 *  - distinct approvers from the approvals endpoint's `approved_by` (one user id counts once);
 *  - the MR author never counts unless allowAuthor;
 *  - never the token's own user (GET /user), never a bot (GET /users/:id `bot`, or a project/group access token
 *    user or service account by its username), and by default never a user who added commits to the MR
 *    (committers(): pushers from GitLab's "added N commits" system notes, and the users the commits'
 *    author/committer emails belong to, as GitLab's "Prevent approvals by users who add commits" does
 *    https://docs.gitlab.com/user/project/merge_requests/approvals/settings/#prevent-approvals-by-users-who-add-commits);
 *  - when --approver users or @groups are given, only those users and the groups' members (direct and
 *    inherited, GET /groups/:id/members/all) count;
 *  - only approvals given after the MR's latest push count (Free does not reset approvals on push), and for
 *    a merged MR only those given before it merged.
 *
 * The latest push: GitLab records a diff version (GET …/merge_requests/:iid/versions) for every push to the
 * source branch, with `head_commit_sha` and `created_at` set by the server when it received the push. We take
 * the newest version's `created_at` when its head is the MR's head. A push that leaves the diff as it was (a
 * rebase: same `patch_id_sha`, the git patch-id of base..head) keeps the approvals, as GitLab decides its
 * approval resets by patch-id (https://gitlab.com/gitlab-org/gitlab/-/issues/461938,
 * https://docs.gitlab.com/user/project/merge_requests/approvals/settings/#remove-all-approvals-when-commits-are-added-to-the-source-branch):
 * the time that counts is that of the oldest version in the newest run of equal, non-null patch-ids whose diffs are
 * also equal byte for byte (verbatimPush: the patch-id may ignore whitespace). Commit dates (…/commits) are NOT used:
 * authored/committed dates are written by the client and a force-push of an old commit carries old dates.
 * When the MR's head has no version yet (GitLab is still processing a push), no approval counts yet.
 * An approval without `approved_at` (GitLab before it exposed the field) cannot be placed in time and is
 * ignored, with that reason.
 */
import { fail } from '../core/errors.js';
import type { Approval, Commit, GitlabClient, GitlabUser, MergeRequest, MergeRequestVersion, Note } from './client.js';
import { isGitlabApiError, userProblem } from './client.js';
import { GitlabErrors } from './errors.js';

export interface GateInput {
  required: number;
  allowAuthor: boolean;
  /** the MR author's username */
  author: string;
  /** the MR author's id (compared by id when given; usernames can be renamed) */
  authorId?: number;
  /** user id → why their approval never counts (the token's own user, a bot, a committer) */
  excluded?: Map<number, string>;
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
    const k = a.user.id > 0 ? `#${a.user.id}` : a.user.username.toLowerCase();
    if (!byUser.has(k)) byUser.set(k, []);
    byUser.get(k)!.push(a);
  }
  for (const [k, list] of byUser) {
    const a = [...list].sort((x, y) => (t(y.approvedAt) || 0) - (t(x.approvedAt) || 0))[0];
    const username = a.user.username;
    const name = username.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    const ign = (reason: string) => ignored.push({ username, approvedAt: a.approvedAt, reason });
    const isAuthor = i.authorId !== undefined && a.user.id > 0 ? a.user.id === i.authorId : name === i.author.toLowerCase();
    if (!i.allowAuthor && isAuthor) ign('the author of the MR (pass --allow-author to count it)');
    else if (i.excluded?.has(a.user.id)) ign(i.excluded.get(a.user.id)!);
    else if (i.allowed && !i.allowed.has(name)) ign(`not an allowed approver (${i.allowedText ?? 'see --approver'})`);
    else if (!a.approvedAt || Number.isNaN(t(a.approvedAt))) ign('GitLab gave no approval time (approved_at), so it cannot be placed after the latest push');
    else if (Number.isNaN(pushAt)) ign('GitLab has not recorded the latest push yet (no diff version for the head): approve again in a moment');
    else if (t(a.approvedAt) <= pushAt) ign(`given before the latest push (${i.lastPushAt})`);
    else if (!Number.isNaN(mergedAt) && t(a.approvedAt) > mergedAt) ign(`given after the MR merged (${i.mergedAt})`);
    else counted.push({ username, approvedAt: a.approvedAt, via: i.allowed?.get(name) });
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

/**
 * The push whose approvals count: the newest diff version when it is the MR's head, or, when the pushes after an
 * earlier version left the diff as it was (equal non-null patch_id_sha, i.e. rebases), that earlier version.
 * `keptBy` lists the heads of the later, diff-preserving versions.
 */
export function latestPush(versions: MergeRequestVersion[], headSha: string): { at?: string; sha?: string; keptBy?: string[] } {
  const sorted = [...versions].sort((a, b) => t(b.createdAt) - t(a.createdAt) || b.id - a.id);
  const newest = sorted[0];
  if (!newest || (headSha && newest.headCommitSha !== headSha)) return {};
  let i = 0;
  while (newest.patchIdSha && sorted[i + 1]?.patchIdSha === newest.patchIdSha) i++;
  const eff = sorted[i];
  return { at: eff.createdAt, sha: eff.headCommitSha, keptBy: i ? sorted.slice(0, i).map((v) => v.headCommitSha) : undefined };
}

/**
 * latestPush's run of equal patch-ids, kept only as far as the diffs are equal byte for byte (hunk headers aside):
 * Gitaly computes patch_id_sha with `git patch-id --stable`, which ignores whitespace, unless its verbatim_patch_id
 * feature flag is on (internal/gitaly/service/diff/get_patch_id.go), and indentation is meaningful in YAML. A diff
 * GitLab leaves out (too large, collapsed) counts as changed.
 */
export async function verbatimPush(gl: GitlabClient, project: string | number, iid: number, versions: MergeRequestVersion[], push: ReturnType<typeof latestPush>): Promise<ReturnType<typeof latestPush>> {
  if (!push.keptBy?.length) return push;
  const sorted = [...versions].sort((a, b) => t(b.createdAt) - t(a.createdAt) || b.id - a.id);
  const run = sorted.slice(0, push.keptBy.length + 1);
  const text = async (v: MergeRequestVersion) => {
    const diffs = await gl.mergeRequestVersionDiffs(project, iid, v.id);
    return diffs?.map((d) => `${d.oldPath}\0${d.newPath}\0${d.diff.replace(/^@@.*$/gm, '@@')}`).sort().join('\0\0');
  };
  const newest = await text(run[0]!);
  let k = 0;
  for (let j = 1; j < run.length && newest !== undefined; j++) {
    if ((await text(run[j]!)) !== newest) break;
    k = j;
  }
  return { at: run[k]!.createdAt, sha: run[k]!.headCommitSha, keptBy: k ? run.slice(0, k).map((v) => v.headCommitSha) : undefined };
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** fails the gate (EGITLAB_BAD_ANSWER) on an answer it cannot judge */
export function badAnswer(what: string, where: string): never {
  throw fail.failed(GitlabErrors.BAD_ANSWER, `GitLab's answer cannot be judged: ${what}`, {
    where,
    hint: 'the gate fails closed on a malformed answer; check the GitLab version and any proxy in front of it, then re-run the job',
  });
}

/** the fields the gate relies on, checked: a closed-world check before anything is counted */
export function checkMergeRequestShape(mr: MergeRequest, where: string): void {
  if (!Number.isInteger(mr.iid) || mr.iid <= 0) badAnswer('the merge request has no iid', where);
  const ap = userProblem(mr.author && mr.author.id ? mr.author : null);
  if (ap) badAnswer(`merge request !${mr.iid} has no author (${ap})`, where);
  if (!['opened', 'closed', 'merged', 'locked'].includes(mr.state)) badAnswer(`merge request !${mr.iid} has state ${JSON.stringify(mr.state)}`, where);
  if (!SHA.test(mr.sha)) badAnswer(`merge request !${mr.iid} has no head commit (sha ${JSON.stringify(mr.sha)})`, where);
}

export function checkVersionsShape(versions: MergeRequestVersion[], where: string): void {
  for (const v of versions) {
    if (!Number.isInteger(v.id) || v.id <= 0) badAnswer('a diff version without an id', where);
    if (!SHA.test(v.headCommitSha)) badAnswer(`diff version ${v.id} has no head_commit_sha`, where);
    if (Number.isNaN(t(v.createdAt))) badAnswer(`diff version ${v.id} has no created_at`, where);
  }
}

/** project access token and group access token users (`project_<id>_bot_<hex>`, older `project_<id>_bot<n>`), service accounts */
const BOT_NAME = /^(project|group)_\d+_bot(_[0-9a-f]+|\d*)$|^service_account_/i;

/** why a user is a bot, or undefined (GET /users/:id `bot`; the username patterns GitLab gives token users and service accounts) */
export function botReason(u: { username: string; bot?: boolean }): string | undefined {
  if (u.bot === true) return 'a bot user (GitLab marks it `bot`): a token, not a reviewer';
  if (BOT_NAME.test(u.username)) return 'a bot user (an access token user or a service account): a token, not a reviewer';
  return undefined;
}

export type CommitterCheck = 'strict' | 'gitlab' | 'off';
export const COMMITTER_CHECKS: CommitterCheck[] = ['strict', 'gitlab', 'off'];

/**
 * Who added commits to the MR, from what the API can show:
 *  - pushers: the authors of GitLab's "added N commit(s)" system notes (server-recorded; not forgeable);
 *  - email owners: the users whose email is a commit's author_email or committer_email: an approver's
 *    public_email or GitLab's private commit address (`<id>-<username>@users.noreply.<host>`), or a user
 *    GitLab's user search finds for that email (public emails; every email with an administrator's token).
 * `unattributed` lists emails no visible user has: with a non-administrator token they may still be an
 * approver's private email, so `strict` counts no approval while any remains.
 */
export interface Committers {
  /** user id → the evidence */
  byId: Map<number, string>;
  unattributed: Array<{ email: string; commit: string }>;
}

export async function committers(
  gl: GitlabClient,
  i: { commits: Commit[]; notes: Note[]; approvers: Array<{ id: number; username: string; publicEmail?: string | null }>; host: string; admin: boolean; where: string },
): Promise<Committers> {
  const byId = new Map<number, string>();
  for (const n of i.notes) {
    if (!n.system || !/^added \d+( new)? commits?\b/.test(n.body)) continue;
    const p = userProblem(n.author && n.author.id ? n.author : null);
    if (p) badAnswer(`a system note about added commits has no author (${p})`, i.where);
    if (!byId.has(n.author.id)) byId.set(n.author.id, `pushed commits to the MR (${n.createdAt})`);
  }
  const emails = new Map<string, string>();
  for (const c of i.commits) {
    if (!SHA.test(c.id)) badAnswer('a commit of the MR without an id', i.where);
    for (const e of [c.authorEmail, c.committerEmail]) {
      const k = e.trim().toLowerCase();
      if (!k) badAnswer(`commit ${c.id.slice(0, 12)} has no author or committer email`, i.where);
      if (!emails.has(k)) emails.set(k, c.id);
    }
  }
  const unattributed: Committers['unattributed'] = [];
  for (const [email, commit] of emails) {
    let found = false;
    for (const a of i.approvers) {
      const own = [a.publicEmail, `${a.id}-${a.username}@users.noreply.${i.host}`].filter((x): x is string => !!x).map((x) => x.toLowerCase());
      if (own.includes(email)) {
        found = true;
        if (!byId.has(a.id)) byId.set(a.id, `added commits to the MR (commit ${commit.slice(0, 12)} carries their email)`);
      }
    }
    if (found) continue;
    const users = await gl.usersByEmail(email);
    for (const u of users) if (!byId.has(u.id)) byId.set(u.id, `added commits to the MR (commit ${commit.slice(0, 12)} carries their email)`);
    // an administrator's search covers every email: no match means no user has it
    if (!users.length && !i.admin) unattributed.push({ email, commit });
  }
  return { byId, unattributed };
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
  mr: MergeRequest;
  required: number;
  /** allowed approvers: each list is one constraint, an approver must satisfy all (flags, protected settings) */
  approverSets: string[][];
  allowAuthor: boolean;
  committerCheck: CommitterCheck;
  /** approvals after the merge do not count (the --commit path) */
  beforeMerge?: boolean;
  /** the GitLab host, for private commit emails */
  host: string;
}

export interface CheckApprovalsResult extends GateResult {
  mr: MergeRequest;
  lastPushAt?: string;
  /** heads of pushes that kept the approvals (the diff did not change) */
  keptBy?: string[];
  /** commit emails no visible user has (strict: nothing counts) */
  unattributed: Array<{ email: string; commit: string }>;
  versions: MergeRequestVersion[];
}

/** Gathers the data (approvals, versions, approvers, the token's user, bots, committers) and evaluates the gate. */
export async function checkMergeRequestApprovals(gl: GitlabClient, i: CheckApprovalsInput): Promise<CheckApprovalsResult> {
  const mr = i.mr;
  const where = mr.webUrl || `merge request !${mr.iid}`;
  checkMergeRequestShape(mr, where);
  const wantCommits = i.committerCheck !== 'off';
  const [approvals, versions, me, commits, notes] = await Promise.all([
    gl.approvals(i.project, mr.iid),
    gl.mergeRequestVersions(i.project, mr.iid),
    gl.currentUser(),
    wantCommits ? gl.mergeRequestCommits(i.project, mr.iid) : Promise.resolve([] as Commit[]),
    wantCommits ? gl.listNotes(i.project, mr.iid) : Promise.resolve([] as Note[]),
  ]);
  if (approvals.problems.length) badAnswer(`the approvals of !${mr.iid}: ${approvals.problems.join('; ')}`, where);
  const meProblem = userProblem(me && me.id ? me : null);
  if (meProblem) badAnswer(`the token's user (GET /user): ${meProblem}`, where);
  checkVersionsShape(versions, where);

  const sets = i.approverSets.filter((x) => x.length);
  const resolved = [];
  for (const set of sets) resolved.push(await resolveApprovers(gl, set));
  let allowed: Map<string, string> | undefined;
  for (const r of resolved) {
    if (!r.allowed) continue;
    if (!allowed) allowed = new Map(r.allowed);
    else for (const k of [...allowed.keys()]) if (!r.allowed.has(k)) allowed.delete(k);
  }
  const allowedText = resolved.length ? resolved.map((r) => r.text).join(' who is also ') : undefined;

  const excluded = new Map<number, string>();
  excluded.set(me.id, `the gate's own token user (@${me.username}): anyone who can run a pipeline can use that token`);
  // distinct approvers other than the token's user: their details (bot flag, public email)
  const ids = [...new Set(approvals.approvedBy.map((a) => a.user.id))].filter((id) => id !== me.id);
  const details: Array<{ id: number; username: string; publicEmail?: string | null }> = [];
  for (const id of ids) {
    const u = await gl.getUser(id);
    const bot = botReason(u);
    if (bot) excluded.set(id, bot);
    details.push({ id, username: u.username, publicEmail: u.publicEmail });
  }
  let unattributed: Committers['unattributed'] = [];
  if (wantCommits) {
    const c = await committers(gl, { commits, notes, approvers: details, host: i.host, admin: (me as GitlabUser & { isAdmin?: boolean }).isAdmin === true, where });
    // --allow-author: the author's own commits are what makes them the author; other exclusions still apply
    for (const [id, why] of c.byId) if (!excluded.has(id) && !(i.allowAuthor && id === mr.author.id)) excluded.set(id, `${why} (GitLab's "prevent approvals by users who add commits"; --allow-committer-approval counts it)`);
    if (i.committerCheck === 'strict' && c.unattributed.length) {
      unattributed = c.unattributed;
      const list = c.unattributed.slice(0, 3).map((u) => `${u.email} (${u.commit.slice(0, 12)})`).join(', ');
      for (const d of details) {
        if (!excluded.has(d.id) && !(i.allowAuthor && d.id === mr.author.id)) excluded.set(d.id, `cannot tell whether they added commits: ${list}${c.unattributed.length > 3 ? ` and ${c.unattributed.length - 3} more` : ''} belong${c.unattributed.length === 1 ? 's' : ''} to no user the token can see (see docs/commands/gate.md, committers)`);
      }
    }
  }
  const push = await verbatimPush(gl, i.project, mr.iid, versions, latestPush(versions, mr.sha));
  const r = evaluateApprovals({
    required: i.required,
    allowAuthor: i.allowAuthor,
    author: mr.author.username,
    authorId: mr.author.id,
    approvals: approvals.approvedBy,
    lastPushAt: push.at,
    mergedAt: i.beforeMerge ? mr.mergedAt : undefined,
    allowed,
    allowedText,
    excluded,
  });
  return { ...r, mr, lastPushAt: push.at, keptBy: push.keptBy, unattributed, versions };
}
