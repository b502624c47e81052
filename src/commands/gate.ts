/**
 * `gitops-ci gate (--mr IID | --commit SHA) --approvals N [--approver USER|@GROUP]... [--allow-author]
 *  [--allow-committer-approval | --committer-check strict|gitlab|off] [--sha SHA] [--settings-file PATH]
 *  [--project ID|PATH]`: the merge-request approval gate that GitLab Free does not enforce. It fails closed.
 *
 *  --mr (default CI_MERGE_REQUEST_IID): the MR has N qualifying approvals for the pipeline's own commit
 *  (--sha, default CI_MERGE_REQUEST_SOURCE_BRANCH_SHA in merged-results pipelines, else CI_COMMIT_SHA); when the
 *  MR's head has moved past it, the gate fails: the newer pipeline decides.
 *  --commit (default CI_COMMIT_SHA): the merged MR that brought the commit into the branch (its merge, squash or
 *  fast-forward head commit; the earliest such MR) had N qualifying approvals before it merged.
 * Qualifying: src/gitlab/approvals.ts. Settings the MR cannot change: src/gitlab/gate-settings.ts (stricter wins).
 */
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { fail, GitopsError } from '../core/errors.js';
import { checkMergeRequestApprovals, COMMITTER_CHECKS, formatGateReport, type CommitterCheck } from '../gitlab/approvals.js';
import { gitlabClient, type MergeRequest } from '../gitlab/client.js';
import { gitlabOptions, resolveGitlabConfig, tokenVariables } from '../gitlab/config.js';
import { GitlabErrors } from '../gitlab/errors.js';
import { forkContext } from '../gitlab/fork.js';
import { mergeSettings, settingsFromEnv, settingsFromFile, type SourcedSettings } from '../gitlab/gate-settings.js';
import { findMergeRequestForCommit } from '../gitlab/mr.js';
import { retryAttempts, tuning } from '../core/flags.js';

export const spec: CommandSpec = {
  name: 'gate',
  usage:
    'gitops-ci gate (--mr IID | --commit SHA) --approvals N [--approver USER|@GROUP]... [--allow-author] [--allow-committer-approval | --committer-check MODE] [--sha SHA] [--settings-file PATH] [--project ID|PATH]',
  description: `
Check merge-request approvals as GitLab Free does not enforce them, failing closed: N distinct approvers,
never the author (unless --allow-author), never the gate token's own user or a bot, by default never a user
who added commits to the MR, only the --approver users and @group members when given, and only approvals
given after the latest push that changed the diff. With --mr, the MR of a merge-request pipeline, for the
pipeline's own commit; with --commit, the merged MR that brought the commit into the branch, approved before
it merged (a commit pushed without an MR fails). Protected settings (GITOPS_GATE_* variables, the target
branch's .gitops-ci.yml) apply too; the stricter wins.
Exit 0 when satisfied, 1 with what is missing, 2 for bad settings, 3 for a bad or missing token.`,
  options: {
    mr: { type: 'string', value: 'IID', description: 'the merge request to check', env: ['CI_MERGE_REQUEST_IID'] },
    commit: { type: 'string', value: 'SHA', description: 'check the merged MR that brought this commit', env: ['CI_COMMIT_SHA'] },
    approvals: { type: 'string', value: 'N', description: 'qualifying approvals required' },
    approver: { type: 'string', multiple: true, value: 'USER|@GROUP', description: 'who may approve (repeat, or comma-separated); anyone when not given' },
    'allow-author': { type: 'boolean', description: "count the MR author's own approval" },
    'allow-committer-approval': { type: 'boolean', description: 'count approvals by users who added commits to the MR (same as --committer-check off)' },
    'committer-check': { type: 'string', value: 'MODE', description: 'gitlab (default): identified committers and pushers do not count; strict: also no one while a commit email maps to no visible user; off' },
    sha: { type: 'string', value: 'SHA', description: "with --mr: the pipeline's commit; the gate fails when the MR's head moved past it", env: ['CI_MERGE_REQUEST_SOURCE_BRANCH_SHA', 'CI_COMMIT_SHA'] },
    'settings-file': { type: 'string', value: 'PATH', description: "settings file read from the MR's target branch through the API (its `gate:` section)", default: '.gitops-ci.yml', env: ['GITOPS_GATE_SETTINGS_FILE'] },
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
  let flagRequired: number | undefined;
  if (n === undefined) {
    if (!nz(ctx.env.GITOPS_GATE_APPROVALS)) problems.push('--approvals N is required (or the protected variable GITOPS_GATE_APPROVALS)');
  } else if (!/^\d+$/.test(n)) problems.push(`--approvals ${JSON.stringify(n)} is not a whole number`);
  else if (Number(n) < 1) problems.push(`--approvals ${n} would let every merge request through: a gate needs at least 1 approval`);
  else flagRequired = Number(n);
  let pipelineSha: string | undefined;
  const shaFlag = nz(str(values, 'sha'));
  if (mode === 'mr') {
    // the pipeline's own commit: only when the MR is the pipeline's MR (merged-results pipelines: the source head)
    // https://docs.gitlab.com/ci/variables/predefined_variables/#predefined-variables-for-merge-request-pipelines
    const pipelineMr = nz(ctx.env.CI_MERGE_REQUEST_IID);
    pipelineSha = shaFlag ?? (pipelineMr && Number(pipelineMr) === iid ? nz(ctx.env.CI_MERGE_REQUEST_SOURCE_BRANCH_SHA) ?? nz(ctx.env.CI_COMMIT_SHA) : undefined);
    if (pipelineSha && !/^[0-9a-f]{40}([0-9a-f]{24})?$/i.test(pipelineSha)) problems.push(`--sha ${JSON.stringify(pipelineSha)} is not a full commit SHA`);
  } else if (shaFlag) problems.push('--sha goes with --mr (with --commit, the commit is the SHA)');
  let committerCheck: CommitterCheck | undefined;
  const cc = nz(str(values, 'committer-check'));
  if (cc && !(COMMITTER_CHECKS as string[]).includes(cc)) problems.push(`--committer-check ${JSON.stringify(cc)} is not one of ${COMMITTER_CHECKS.join(', ')}`);
  else if (cc) committerCheck = cc as CommitterCheck;
  if (bool(values, 'allow-committer-approval')) {
    if (committerCheck && committerCheck !== 'off') problems.push(`--allow-committer-approval contradicts --committer-check ${committerCheck}`);
    committerCheck = 'off';
  }
  let envSettings: SourcedSettings | undefined;
  try {
    envSettings = settingsFromEnv(ctx.env);
  } catch (e) {
    problems.push((e as Error).message);
  }
  const settingsFile = nz(str(values, 'settings-file')) ?? nz(ctx.env.GITOPS_GATE_SETTINGS_FILE) ?? '.gitops-ci.yml';
  if (settingsFile.startsWith('/') || settingsFile.split('/').includes('..')) problems.push(`--settings-file ${JSON.stringify(settingsFile)} must be a path inside the repository`);
  const approvers = strs(values, 'approver').flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  for (const a of approvers) if (!/^@?[A-Za-z0-9_.][A-Za-z0-9_.\-/]*$/.test(a)) problems.push(`--approver ${JSON.stringify(a)} is not a username or @group path`);
  let cfg;
  const fork = forkContext(ctx.env);
  const noToken = !tokenVariables('read').some((v) => nz(ctx.env[v]));
  if (noToken && fork.runsInFork) {
    // a fork's pipeline sees none of the parent's variables: no token, so nothing can be checked: fail closed
    throw fail.auth(GitlabErrors.FORK_NO_TOKEN, `merge request !${nz(ctx.env.CI_MERGE_REQUEST_IID) ?? '?'} comes from a fork (project ${fork.sourceProjectId}) and this pipeline runs in the fork, without a GitLab token: the gate cannot check approvals`, {
      where: `project ${fork.pipelineProjectId ?? fork.sourceProjectId} (fork of ${fork.mrProjectId})`,
      hint: fork.hint,
    });
  }
  try {
    cfg = resolveGitlabConfig(ctx.env, values, { token: 'read', mrProject: true });
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
  const gl = gitlabClient(cfg!, { log: ctx.log, attempts: retryAttempts(ctx.env), maxPages: tuning(ctx.env, 'GITOPS_GITLAB_MAX_PAGES') });
  const project = cfg!.project;
  const host = new URL(cfg!.apiUrl).hostname;
  try {
    let mr: MergeRequest | undefined;
    if (mode === 'commit') {
      const branch = nz(str(values, 'branch')) ?? nz(ctx.env.CI_COMMIT_BRANCH);
      mr = await findMergeRequestForCommit(gl, { project, sha: sha!, targetBranch: branch });
      if (!mr) {
        throw fail.failed(GitlabErrors.NO_MERGE_REQUEST, `commit ${sha!.slice(0, 12)} reached ${branch ? `branch ${branch}` : 'its branch'} without a merged merge request`, {
          where: `project ${project}`,
          hint: 'changes to this branch must go through an approved MR: revert the direct push and open an MR. Let only the MR merge and the promote job push to it (docs/security.md, branch protection)',
        });
      }
      ctx.log.info(`commit ${sha!.slice(0, 12)} was brought into ${mr.targetBranch} by !${mr.iid} (${mr.webUrl}) at ${mr.mergedAt}`);
    } else mr = await gl.getMergeRequest(project, iid!);
    const where = mr.webUrl || `merge request !${mr.iid}`;
    if (mode === 'mr' && mr.state !== 'opened' && mr.state !== 'merged') {
      // a closed MR will never merge: its approvals prove nothing about what reaches the branch
      throw fail.failed(GitlabErrors.NOT_OPEN, `!${mr.iid} is ${mr.state}: a closed merge request passes no gate`, {
        where,
        hint: 'reopen the merge request (or open a new one) and re-run this job',
      });
    }
    if (mode === 'mr' && pipelineSha && mr.sha.toLowerCase() !== pipelineSha.toLowerCase()) {
      // a retried old pipeline must not pass on approvals given to a later head
      throw fail.failed(GitlabErrors.HEAD_MOVED, `!${mr.iid}'s head is ${mr.sha.slice(0, 12)}, not this pipeline's commit ${pipelineSha.slice(0, 12)}: the merge request moved on, and the pipeline of its new head decides`, {
        where,
        hint: "run the gate job of the MR's latest pipeline (or start a new pipeline for the MR)",
      });
    }
    if (mode === 'mr' && !pipelineSha) ctx.log.info(`judging !${mr.iid} at its current head ${mr.sha.slice(0, 12)} (no pipeline commit given: --sha)`);
    // a merged MR, whichever way it was named, is judged as --commit judges the merge: approvals given after it
    // merged prove nothing about what reached the branch (they used to count with --mr), and the settings are the
    // target's as the MR found it
    const merged = mode === 'commit' || mr.state === 'merged';
    if (mode === 'mr' && merged) ctx.log.info(`!${mr.iid} is merged (${mr.mergedAt ?? 'time unknown'}): only approvals given before it merged count`);
    // settings the MR cannot change: the target branch's file (for a merged MR: the target as the MR found it)
    const versions = merged ? await gl.mergeRequestVersions(project, mr.iid) : [];
    const start = merged ? [...versions].sort((a, b) => b.id - a.id)[0]?.startCommitSha : undefined;
    // read at a commit, never by the branch's bare name: GitLab resolves a bare ref as git does, a tag of that name
    // first, and a Developer may push a tag `main` that points at a settings file of their own
    // (https://gitlab.com/groups/gitlab-org/-/epics/11540); the branches API names the branch's own commit
    const ref = start || (await gl.branchHead(project, mr.targetBranch));
    if (!ref) {
      throw fail.failed(GitlabErrors.NOT_FOUND, `!${mr.iid}'s target branch ${mr.targetBranch} does not exist: its protected settings (${settingsFile}) cannot be read`, {
        where,
        hint: 'the gate does not run without the target branch\'s settings; retarget the merge request to an existing branch',
      });
    }
    const protectedSources: SourcedSettings[] = [];
    if (envSettings) protectedSources.push(envSettings);
    const text = await gl.fileAtRef(project, settingsFile, ref);
    if (text !== undefined) {
      const f = settingsFromFile(text, `${settingsFile} on ${start ? `${mr.targetBranch} at ${ref.slice(0, 12)}` : mr.targetBranch}`);
      if (f) protectedSources.push(f);
    }
    const eff = mergeSettings({ approvals: flagRequired, approvers: approvers.length ? approvers : undefined, allowAuthor: bool(values, 'allow-author') || undefined, committerCheck }, protectedSources);
    if ('missing' in eff) throw fail.usage(GitlabErrors.CONFIG, '--approvals N is required (or GITOPS_GATE_APPROVALS, or gate.approvals in the settings file)');
    for (const l of eff.sources) ctx.log.info(`protected setting: ${l}`);
    const r = await checkMergeRequestApprovals(gl, { project, mr, required: eff.required, approverSets: eff.approverSets, allowAuthor: eff.allowAuthor, committerCheck: eff.committerCheck, beforeMerge: merged, host });
    const what = `!${r.mr.iid} ${JSON.stringify(r.mr.title)}`;
    const report = formatGateReport(r, what);
    if (r.lastPushAt) report.splice(1, 0, `  latest push that changed the diff: ${r.lastPushAt} (${r.mr.sha.slice(0, 12)}${r.keptBy ? `; later pushes ${r.keptBy.map((x) => x.slice(0, 12)).join(', ')} left the diff unchanged, approvals kept` : ''})`);
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
        hint: mode === 'commit' ? 'the change reached the branch without the required approvals: revert it, or approve a new MR that re-applies it' : r.unattributed.length ? 'commit emails that map to no GitLab user hide who wrote them: make them match a profile (public email or the GitLab noreply address), or relax with --committer-check gitlab (docs/commands/gate.md); then re-run this job' : 'ask for the missing approvals, then re-run this job',
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
