/**
 * `gitops-ci gate (--mr IID | --commit SHA) --approvals N [--approver USER|@GROUP]... [--allow-author]
 *  [--project ID|PATH]`: the merge-request approval gate that GitLab Free does not enforce.
 *
 *  --mr (default CI_MERGE_REQUEST_IID): the MR has N qualifying approvals now.
 *  --commit (default CI_COMMIT_SHA): the merged MR that brought the commit to the branch had N qualifying
 *  approvals before it merged; a commit without such an MR fails.
 * Qualifying: distinct approvers, not the author (unless --allow-author), only --approver users / @group
 * members when any are given, given after the MR's latest push (src/gitlab/approvals.ts).
 */
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { fail, GitopsError } from '../core/errors.js';
import { checkMergeRequestApprovals, formatGateReport } from '../gitlab/approvals.js';
import { gitlabClient } from '../gitlab/client.js';
import { gitlabOptions, resolveGitlabConfig } from '../gitlab/config.js';
import { GitlabErrors } from '../gitlab/errors.js';
import { findMergeRequestForCommit } from '../gitlab/mr.js';

export const spec: CommandSpec = {
  name: 'gate',
  usage: 'gitops-ci gate (--mr IID | --commit SHA) --approvals N [--approver USER|@GROUP]... [--allow-author] [--project ID|PATH]',
  description: `
Check merge-request approvals as GitLab Free does not enforce them: N distinct approvers, never the author
(unless --allow-author), only the --approver users and @group members when given, and only approvals given
after the MR's latest push. With --mr, the MR of a merge-request pipeline; with --commit, the merged MR that
brought the commit to the branch, approved before it merged (a commit pushed without an MR fails).
Exit 0 when satisfied, 1 with what is missing, 3 for a bad or under-scoped token.`,
  options: {
    mr: { type: 'string', value: 'IID', description: 'the merge request to check', env: ['CI_MERGE_REQUEST_IID'] },
    commit: { type: 'string', value: 'SHA', description: 'check the merged MR that brought this commit', env: ['CI_COMMIT_SHA'] },
    approvals: { type: 'string', value: 'N', description: 'qualifying approvals required' },
    approver: { type: 'string', multiple: true, value: 'USER|@GROUP', description: 'who may approve (repeat, or comma-separated); anyone when not given' },
    'allow-author': { type: 'boolean', description: "count the MR author's own approval" },
    branch: { type: 'string', value: 'BRANCH', description: 'with --commit: the branch the commit must have reached through an MR', env: ['CI_COMMIT_BRANCH'] },
    dotenv: { type: 'string', value: 'FILE', description: 'write GATE_* outputs to this dotenv file' },
    ...gitlabOptions,
  },
  examples: [
    'gitops-ci gate --approvals 2 --approver @release-managers          # in an MR pipeline',
    'gitops-ci gate --commit "$CI_COMMIT_SHA" --approvals 1              # before the production deploy',
  ],
};

const nz = (v: string | undefined) => (v && v.trim() ? v.trim() : undefined);

export async function run(ctx: CommandContext, { values, positionals }: ParsedArgs): Promise<CommandResult> {
  const problems: string[] = [];
  if (positionals.length) problems.push(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const mrFlag = nz(str(values, 'mr'));
  const commitFlag = nz(str(values, 'commit'));
  if (mrFlag && commitFlag) problems.push('give --mr or --commit, not both');
  let mode: 'mr' | 'commit' | undefined;
  let iid: number | undefined;
  let sha: string | undefined;
  if (mrFlag) mode = 'mr';
  else if (commitFlag) mode = 'commit';
  else if (nz(ctx.env.CI_MERGE_REQUEST_IID)) mode = 'mr';
  else if (nz(ctx.env.CI_COMMIT_SHA)) mode = 'commit';
  else problems.push('nothing to check: give --mr IID or --commit SHA (in a pipeline CI_MERGE_REQUEST_IID / CI_COMMIT_SHA are used)');
  if (mode === 'mr') {
    const raw = mrFlag ?? nz(ctx.env.CI_MERGE_REQUEST_IID)!;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) problems.push(`--mr ${JSON.stringify(raw)} is not a merge request IID (a positive number)`);
    else iid = Number(raw);
  }
  if (mode === 'commit') {
    sha = commitFlag ?? nz(ctx.env.CI_COMMIT_SHA)!;
    if (!/^[0-9a-f]{7,64}$/i.test(sha)) problems.push(`--commit ${JSON.stringify(sha)} is not a commit SHA`);
  }
  const n = nz(str(values, 'approvals'));
  let required = 0;
  if (n === undefined) problems.push('--approvals N is required');
  else if (!/^\d+$/.test(n)) problems.push(`--approvals ${JSON.stringify(n)} is not a whole number`);
  else if (Number(n) < 1) problems.push(`--approvals ${n} would let every merge request through: a gate needs at least 1 approval`);
  else required = Number(n);
  const approvers = strs(values, 'approver').flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  for (const a of approvers) if (!/^@?[A-Za-z0-9_.][A-Za-z0-9_.\-/]*$/.test(a)) problems.push(`--approver ${JSON.stringify(a)} is not a username or @group path`);
  let cfg;
  try {
    cfg = resolveGitlabConfig(ctx.env, values);
  } catch (e) {
    if (e instanceof GitopsError && e.kind === 'usage' && !problems.length) throw e;
    if (e instanceof GitopsError && e.kind !== 'usage') throw e;
    problems.push(...((e as GitopsError).details ?? [(e as Error).message]));
  }
  if (problems.length) {
    throw fail.usage(GitlabErrors.CONFIG, problems.length === 1 ? problems[0] : `${problems.length} problems with the gate's configuration`, {
      details: problems.length > 1 ? problems : undefined,
      hint: 'see `gitops-ci gate --help` and docs/commands/gate.md',
    });
  }
  const gl = gitlabClient(cfg!, { log: ctx.log, attempts: Number(ctx.env.GITOPS_RETRY_ATTEMPTS) || undefined });
  const project = cfg!.project;
  const allowAuthor = bool(values, 'allow-author');
  try {
    let mr;
    if (mode === 'commit') {
      const branch = nz(str(values, 'branch')) ?? nz(ctx.env.CI_COMMIT_BRANCH);
      mr = await findMergeRequestForCommit(gl, { project, sha: sha!, targetBranch: branch });
      if (!mr) {
        throw fail.failed(GitlabErrors.NO_MERGE_REQUEST, `commit ${sha!.slice(0, 12)} reached ${branch ? `branch ${branch}` : 'its branch'} without a merged merge request`, {
          where: `project ${project}`,
          hint: 'changes to this branch must go through an approved MR; revert the direct push and open an MR (protect the branch: Allowed to push = No one)',
        });
      }
      ctx.log.info(`commit ${sha!.slice(0, 12)} was merged by !${mr.iid} (${mr.webUrl}) at ${mr.mergedAt}`);
    }
    const r = await checkMergeRequestApprovals(gl, { project, mr: mr ?? iid!, required, approvers, allowAuthor, beforeMerge: mode === 'commit' });
    const what = `!${r.mr.iid} ${JSON.stringify(r.mr.title)}`;
    if (mode === 'mr' && r.mr.state !== 'opened' && r.mr.state !== 'merged') {
      // a closed MR will never merge: its approvals prove nothing about what reaches the branch
      throw fail.failed(GitlabErrors.NOT_OPEN, `!${r.mr.iid} is ${r.mr.state}: a closed merge request passes no gate`, {
        where: r.mr.webUrl || `merge request !${r.mr.iid}`,
        hint: 'reopen the merge request (or open a new one) and re-run this job',
      });
    }
    const report = formatGateReport(r, what);
    if (r.lastPushAt) report.splice(1, 0, `  latest push: ${r.lastPushAt} (${r.mr.sha.slice(0, 12)})`);
    const outputs = {
      GATE_MR_IID: String(r.mr.iid),
      GATE_MR_URL: r.mr.webUrl,
      GATE_APPROVALS: String(r.counted.length),
      GATE_APPROVERS: r.counted.map((c) => c.username).join(','),
    };
    if (!r.satisfied) {
      throw fail.failed(GitlabErrors.NOT_APPROVED, `!${r.mr.iid} ${mode === 'commit' ? 'was not approved as required before it merged' : 'is not approved as required'}: ${r.counted.length} of ${r.required} approvals, ${r.missing} more needed from ${r.from}`, {
        where: r.mr.webUrl || `merge request !${r.mr.iid}`,
        details: report.slice(1).map((l) => l.trim()),
        hint: mode === 'commit' ? 'the change reached the branch without the required approvals: revert it, or approve a new MR that re-applies it' : 'ask for the missing approvals, then re-run this job',
      });
    }
    for (const l of report) ctx.log.info(l);
    return {
      summary: `!${r.mr.iid} approved: ${r.counted.length} of ${r.required}${r.counted.length ? ` (${r.counted.map((c) => '@' + c.username).join(', ')})` : ''}`,
      outputs,
    };
  } finally {
    gl.close();
  }
}
