/**
 * Promotion: set in --to the digest references read from --from.
 *
 * --via push hands the edit to bump (src/bump/bump.ts): the same sparse clone, edit, commit with trailers, and
 * push retried on a moving branch. The stale guard stands aside (a promotion moves exactly what the source
 * runs, newer or older), and the commit records where the images came from (Gitops-Promoted-* trailers) and
 * the provenance of the promoted image (its source project, commit and pipeline), so bump's guard keeps
 * working on the target overlay afterwards.
 *
 * --via mr makes the same commit on top of BRANCH's tip, force-pushes it to our own branch
 * gitops-ci/promote/<env> (never to BRANCH; skipped when that branch already holds the same change on the
 * same base) and upserts one merge request into BRANCH, whose description carries the change list, the
 * provenance and the rendered diff of the target overlay (src/render/diff.ts).
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fail, GitopsError, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { bump, type BumpOutcome } from '../bump/bump.js';
import { checkoutReferences, KUSTOMIZATION_FILES } from '../bump/closure.js';
import { buildMessage, envOf, refOf, shortImageOf, shortRefOf, tersely, type Change, type Origin, type SkipCi } from '../bump/message.js';
import { SparseClone, type Identity } from '../git/clone.js';
import { GitSession } from '../git/session.js';
import { classifyGitFailure, tailLines } from '../git/errors.js';
import type { Remote } from '../git/url.js';
import { editKustomizationText } from '../kustomize/edit.js';
import type { ImageExpr } from '../kustomize/image-expr.js';
import { unifiedDiff } from '../kustomize/diff.js';
import { renderOverlay } from '../kustomize/overlay.js';
import { diffRendered, formatDiffs, redactRenderError, type DiffSection } from '../render/diff.js';
import { PromoteErrors } from './errors.js';
import { codeSpan, escapeMarkdown, mdLink } from '../core/markdown.js';
import { writebackIdentity } from '../bump/guard.js';
import type { Pinned, Source } from './source.js';

export const TRAILER_FROM = 'Gitops-Promoted-From';
export const TRAILER_FROM_COMMIT = 'Gitops-Promoted-From-Commit';
export const TRAILER_FROM_APP = 'Gitops-Promoted-From-App';
export const TRAILER_VERIFIED_BY = 'Gitops-Verified-By';
export const MR_MARKER = '<!-- gitops-ci:promote -->';

export interface MergeRequestOptions {
  labels: string[];
  assignees: string[];
  reviewers: string[];
  draft: boolean;
  autoMerge: boolean;
  autoMergeTimeoutMs: number;
  title?: string;
}

/** What promote needs of GitLab (src/gitlab/mr.ts behind it); injected so that the flow does not load gitbeaker. */
export interface MergeRequestApi {
  upsert(o: { sourceBranch: string; targetBranch: string; title: string; description: string; labels?: string[]; assignees?: string[]; reviewers?: string[]; draft?: boolean }): Promise<{ iid: number; webUrl: string; created: boolean; updated: boolean }>;
  autoMerge(o: { iid: number; sha: string; timeoutMs: number }): Promise<void>;
  /** close the open MR(s) of our branch, with `reason` as a note */
  closeSuperseded(o: { sourceBranch: string; targetBranch: string; reason: string }): Promise<Array<{ iid: number; webUrl: string }>>;
}

export interface PromoteConfig {
  remote: Remote;
  branch: string;
  from: string;
  to: string;
  source: Source;
  pinned: Pinned[];
  exprs: ImageExpr[];
  fromApp?: string;
  /** the job that verified the source environment (argocd wait), for the provenance */
  verifyJob?: string;
  via: 'push' | 'mr';
  skipCi: SkipCi;
  dryRun: boolean;
  author: Identity;
  /** the promote job's own CI variables */
  job: Origin;
  maxAttempts: number;
  deadline: number;
  sshAcceptNew: boolean;
  /** render the target overlay before/after (always with --via mr) */
  render: boolean;
  mr?: MergeRequestOptions;
  mrApi?: () => Promise<MergeRequestApi>;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

export interface PromoteOutcome {
  changed: boolean;
  dryRun: boolean;
  changes: Change[];
  /** the commit on BRANCH (push) or on the promotion branch (mr) */
  commit?: string;
  /** BRANCH's tip the change was made on (or found at) */
  head: string;
  /** file diff of the kustomization */
  diff?: string;
  /** the rendered diff in Markdown (mr, dry run with render) */
  rendered?: string;
  mr?: { iid: number; webUrl: string; created: boolean; updated: boolean; branch: string; pushed: boolean };
  attempts: number;
}

/** the origin recorded in the commit: where the promoted image was built (from the source's bump commit) */
export function originOf(pinned: Pinned[], source: Source, job: Origin): Origin {
  const prov = source.images.find((i) => i.name === pinned[0]?.name)?.provenance;
  if (!prov) return { ...job, ref: undefined };
  return { project: prov.project, commit: prov.sourceCommit, pipelineId: prov.pipelineId, pipelineUrl: prov.pipelineUrl, jobUrl: job.jobUrl };
}

export function trailersOf(cfg: Pick<PromoteConfig, 'from' | 'source' | 'fromApp' | 'verifyJob'>): Array<[string, string | undefined]> {
  return [
    [TRAILER_FROM, cfg.from],
    [TRAILER_FROM_COMMIT, cfg.source.commit],
    [TRAILER_FROM_APP, cfg.fromApp],
    [TRAILER_VERIFIED_BY, cfg.verifyJob],
  ];
}

export function templateOf(cfg: Pick<PromoteConfig, 'from'>): string {
  return `promote {images} from ${envOf(cfg.from).replace(/[{}]/g, '')} to {envs}`;
}

export async function promote(cfg: PromoteConfig): Promise<PromoteOutcome> {
  return cfg.via === 'mr' ? promoteByMr(cfg) : promoteByPush(cfg);
}

async function promoteByPush(cfg: PromoteConfig): Promise<PromoteOutcome> {
  const out: BumpOutcome = await bump({
    remote: cfg.remote,
    branch: cfg.branch,
    overlays: [cfg.to],
    exprs: cfg.exprs,
    template: templateOf(cfg),
    skipCi: cfg.skipCi,
    render: cfg.render,
    // a promotion moves exactly what the source runs: the stale guard does not apply
    allowDowngrade: true,
    dryRun: cfg.dryRun,
    author: cfg.author,
    origin: originOf(cfg.pinned, cfg.source, cfg.job),
    maxAttempts: cfg.maxAttempts,
    deadline: cfg.deadline,
    historyDepth: 1,
    sshAcceptNew: cfg.sshAcceptNew,
    env: cfg.env,
    log: cfg.log,
    trailers: trailersOf(cfg),
  });
  return { changed: out.changed, dryRun: out.dryRun, changes: out.changes, commit: out.commit, head: out.head, diff: out.diff, attempts: out.attempts };
}

async function findFile(root: string, overlay: string): Promise<string | undefined> {
  for (const f of KUSTOMIZATION_FILES) {
    const s = await stat(join(root, overlay, f)).catch(() => undefined);
    if (s?.isFile()) return posix.join(overlay, f);
  }
  return undefined;
}

export function promotionBranch(to: string): string {
  return `gitops-ci/promote/${envOf(to).replace(/[^A-Za-z0-9._-]/g, '-')}`;
}

/**
 * The MR description: change list, provenance, rendered diff; under 100,000 characters. Everything in it that
 * comes from a manifest (image names and references), a commit (the provenance trailers) or a variable goes
 * through src/core/markdown.ts: it shows as text, never as a heading, link, image, HTML or reference.
 */
export function mrDescription(o: { cfg: Pick<PromoteConfig, 'from' | 'to' | 'branch' | 'source' | 'pinned' | 'fromApp' | 'job' | 'verifyJob'>; changes: Change[]; sections: DiffSection[] }): string {
  const { cfg } = o;
  const env = (overlay: string) => escapeMarkdown(envOf(overlay));
  const cell = (text: string) => codeSpan(text, { table: true });
  const lines: string[] = [];
  lines.push(`Promotes ${o.changes.length === 1 ? 'one image' : `${o.changes.length} images`} from **${env(cfg.from)}** (${codeSpan(cfg.from)}) to **${env(cfg.to)}** (${codeSpan(cfg.to)}). Only digests move: nothing is rebuilt.`, '');
  lines.push('| image | before | after | source |', '|---|---|---|---|');
  for (const c of o.changes) {
    const p = cfg.pinned.find((x) => x.name === c.image);
    lines.push(`| ${cell(c.image)} | ${c.before ? cell(tersely(c.image, c.before)) : '(new)'} | ${cell(tersely(c.image, c.after))} | ${p ? `${cell(p.from)}${p.how === 'resolved' ? ' (tag resolved)' : p.how === 'copied' ? ' (copied)' : ''}` : ''} |`);
  }
  lines.push('', '**Provenance**', '');
  lines.push(`- config commit of ${env(cfg.from)}: ${codeSpan(cfg.source.commit)}${cfg.fromApp ? ` (deployed, synced and healthy in Argo CD app ${codeSpan(cfg.fromApp)})` : ` (tip of ${codeSpan(cfg.branch)})`}`);
  for (const im of cfg.source.images) {
    const pv = im.provenance;
    if (!pv) continue;
    const pipeline = `pipeline ${pv.pipelineId ?? ''}`.trim();
    const by = pv.pipelineUrl ? mdLink(pipeline, pv.pipelineUrl) : pv.pipelineId ? escapeMarkdown(pipeline) : 'an unknown pipeline';
    lines.push(`- ${codeSpan(shortImageOf(im.name))} built by ${by}${pv.project ? ` of ${codeSpan(pv.project)}` : ''}${pv.sourceCommit ? ` at ${codeSpan(pv.sourceCommit.slice(0, 12))}` : ''}; pinned by config commit ${codeSpan(pv.commit?.slice(0, 12) ?? '?')}${pv.verified ? ` (${escapeMarkdown(pv.verified)})` : ''}`);
  }
  if (cfg.verifyJob) lines.push(`- ${env(cfg.from)} verified by ${mdLink('this job', cfg.verifyJob)}`);
  if (cfg.job.jobUrl) lines.push(`- ${cfg.verifyJob ? '' : 'verified and '}promoted by ${mdLink('this job', cfg.job.jobUrl)}${cfg.job.pipelineUrl ? ` of ${mdLink(`pipeline ${cfg.job.pipelineId ?? ''}`.trim(), cfg.job.pipelineUrl)}` : ''}`);
  lines.push('', `### Rendered diff of ${env(cfg.to)}`);
  return formatDiffs(o.sections, { header: lines.join('\n'), footer: `${MR_MARKER}\n<sub>Opened by gitops-ci promote. A newer promotion to ${env(cfg.to)} updates this merge request.</sub>` }).body;
}

export function mrTitle(cfg: Pick<PromoteConfig, 'from' | 'to'>, changes: Change[]): string {
  const images = [...new Set(changes.map((c) => `${shortImageOf(c.image)}@${shortRefOf(c.after).replace(/^sha256:/, '')}`))];
  return `Promote ${images.join(', ')} from ${envOf(cfg.from)} to ${envOf(cfg.to)}`;
}

async function render(dir: string, overlay: string, log: Logger, when: string): Promise<string> {
  try {
    return await log.section(`kustomize build ${overlay} (${when})`, () => renderOverlay(join(dir, overlay)), { collapsed: true });
  } catch (e) {
    // kustomize quotes generator literals (Secret values) in its errors
    if (isGitopsError(e) && e.details) throw new GitopsError({ kind: e.kind, code: e.code, message: e.message, where: e.where, hint: e.hint, cause: e.cause, details: e.details.map(redactRenderError) });
    throw e;
  }
}

async function promoteByMr(cfg: PromoteConfig): Promise<PromoteOutcome> {
  const { log } = cfg;
  const session = await GitSession.open(cfg.remote, { env: cfg.env, log, sshAcceptNew: cfg.sshAcceptNew, deadline: cfg.deadline });
  const parent = await mkdtemp(join(tmpdir(), 'gitops-ci-promote-'));
  try {
    const dir = join(parent, 'config');
    const clone = await log.section(`clone ${cfg.remote.display} ${cfg.branch} (shallow, sparse: ${cfg.to})`, async () => {
      const c = await SparseClone.clone(session, { dir, branch: cfg.branch, paths: [cfg.to] });
      if ((await c.typeOf(cfg.to)) !== 'tree' || !(await findFile(dir, cfg.to))) {
        throw fail.usage('EBUMP_OVERLAY_NOT_FOUND', `overlay not found on branch ${cfg.branch}: ${cfg.to}`, { where: `${cfg.remote.display} (${cfg.branch})`, hint: '--to is relative to the config repo root and must hold a kustomization.yaml' });
      }
      await checkoutReferences([cfg.to], { root: dir, typeOf: (p) => c.typeOf(p), add: (d) => c.addSparse(d) });
      return c;
    });
    const head = await clone.head();
    const file = (await findFile(dir, cfg.to))!;
    const text = await readFile(join(dir, file), 'utf8');
    const res = editKustomizationText(text, cfg.exprs, file);
    const changes: Change[] = res.changes.filter((c) => c.changed).map((c) => ({ overlay: cfg.to, env: envOf(cfg.to), image: c.name, before: c.before ? refOf(c.before) : undefined, after: refOf(c.after) }));
    if (res.text === text || !changes.length) {
      // an open promotion MR proposes something the source no longer runs (or that is there already): merging
      // it later would move what was not verified, so it is closed as superseded
      if (!cfg.dryRun) {
        const api = await cfg.mrApi!();
        const reason = `Superseded: ${escapeMarkdown(envOf(cfg.to))} already runs what ${escapeMarkdown(envOf(cfg.from))} runs (config commit ${codeSpan(cfg.source.commit)}), so this promotion is no longer wanted. Closed by gitops-ci promote${cfg.job.jobUrl ? ` (${mdLink('job', cfg.job.jobUrl)})` : ''}.`;
        for (const c of await api.closeSuperseded({ sourceBranch: promotionBranch(cfg.to), targetBranch: cfg.branch, reason })) log.info(`closed !${c.iid} (${c.webUrl}): it proposed content ${envOf(cfg.from)} no longer runs`);
      }
      return { changed: false, dryRun: cfg.dryRun, changes: [], head, attempts: 1 };
    }
    const before = await render(dir, cfg.to, log, 'before');
    await writeFile(join(dir, file), res.text);
    const after = await render(dir, cfg.to, log, 'after');
    const sections: DiffSection[] = [{ title: `${envOf(cfg.to)} (${cfg.to})`, diffs: diffRendered(before, after, cfg.to) }];
    const description = mrDescription({ cfg, changes, sections });
    const diff = unifiedDiff(text, res.text, file);
    const branch = promotionBranch(cfg.to);
    if (cfg.dryRun) return { changed: false, dryRun: true, changes, head, diff, rendered: description, attempts: 1 };

    // the MR API first: a configuration or token problem fails before anything is pushed
    const api = await cfg.mrApi!();
    const message = buildMessage({ changes, origin: originOf(cfg.pinned, cfg.source, cfg.job), skipCi: cfg.skipCi, template: templateOf(cfg), trailers: trailersOf(cfg) });
    let commit = await clone.commit([file], message, cfg.author, writebackIdentity(cfg.env));
    // our branch as it is on the server: the same change on the same base is not pushed again
    const ls = await session.must('fetch', ['ls-remote', '--heads', 'origin', `refs/heads/${branch}`], { cwd: dir, branch });
    const old = ls.trim().split(/\s+/)[0] || undefined;
    let pushed = false;
    if (old && (await sameChange(session, dir, old, commit))) {
      log.info(`${branch} already holds this promotion on ${head.slice(0, 12)} (${old.slice(0, 12)}); not pushed again`);
      commit = old;
    } else {
      // force, but only our own branch, and only over what we just saw there
      const r = await session.run(['push', '--porcelain', '--no-verify', `--force-with-lease=refs/heads/${branch}:${old ?? ''}`, 'origin', `HEAD:refs/heads/${branch}`], { cwd: dir });
      if (r.code !== 0) {
        const e = classifyGitFailure({ op: 'push', stderr: r.stderr, stdout: r.stdout, where: cfg.remote.display, branch });
        if (e.kind === 'auth' || e.kind === 'transient' || e.kind === 'timeout') throw e;
        throw fail.failed(PromoteErrors.PUSH, `the push of ${branch} was refused`, { where: `${cfg.remote.display} (${branch})`, details: tailLines(`${r.stdout}\n${r.stderr}`, 4), hint: 'another promotion to this environment ran at the same time, or the branch is protected; re-run', cause: e });
      }
      pushed = true;
      log.info(`pushed ${commit.slice(0, 12)} to ${branch}${old ? ` (replacing ${old.slice(0, 12)})` : ''}`);
    }
    const mrOpts = cfg.mr!;
    let mr;
    try {
      mr = await api.upsert({ sourceBranch: branch, targetBranch: cfg.branch, title: mrOpts.title ?? mrTitle(cfg, changes), description, labels: mrOpts.labels, assignees: mrOpts.assignees, reviewers: mrOpts.reviewers, draft: mrOpts.draft });
    } catch (e) {
      // no half-done promotion: our branch goes back to what it was (the open MR keeps describing what it holds)
      if (pushed) await restoreBranch(session, dir, branch, commit, old, log);
      throw e;
    }
    log.info(`merge request !${mr.iid} ${mr.created ? 'opened' : mr.updated ? 'updated' : 'already up to date'}: ${mr.webUrl}`);
    if (mrOpts.autoMerge) await api.autoMerge({ iid: mr.iid, sha: commit, timeoutMs: mrOpts.autoMergeTimeoutMs });
    return { changed: true, dryRun: false, changes, commit, head, diff, rendered: description, mr: { ...mr, branch, pushed }, attempts: 1 };
  } finally {
    await session.close();
    await rm(parent, { recursive: true, force: true });
  }
}

/** Puts our promotion branch back to `old` (deleted when there was none), only over `ours`; says what it did. */
async function restoreBranch(session: GitSession, dir: string, branch: string, ours: string, old: string | undefined, log: Logger): Promise<void> {
  // pushing `old` needs it here, and not as a shallow boundary: the server refuses a shallow update of a
  // commit no ref of its own reaches; with depth 2 the boundary is old's parent, an ancestor of BRANCH
  if (old) await session.run(['fetch', '--quiet', '--depth=2', '--filter=blob:none', '--no-tags', 'origin', old], { cwd: dir });
  const r = await session.run(['push', '--porcelain', '--no-verify', `--force-with-lease=refs/heads/${branch}:${ours}`, 'origin', `${old ?? ''}:refs/heads/${branch}`], { cwd: dir });
  if (r.code === 0) log.warn(old ? `${branch} reset to ${old.slice(0, 12)} (what it held before this run)` : `${branch} removed again (this run created it)`);
  else log.warn(`could not restore ${branch} (${tailLines(`${r.stdout}\n${r.stderr}`, 4).join(' ')}): it holds ${ours.slice(0, 12)}; the next run reuses or replaces it`);
}

/** `old` (the tip of our branch on the server) has the same tree and the same parent as `ours` */
async function sameChange(session: GitSession, dir: string, old: string, ours: string): Promise<boolean> {
  const f = await session.run(['fetch', '--quiet', '--depth=1', '--filter=blob:none', '--no-tags', 'origin', old], { cwd: dir });
  if (f.code !== 0) return false;
  const info = async (c: string) => {
    const r = await session.run(['cat-file', 'commit', c], { cwd: dir });
    if (r.code !== 0) return undefined;
    const hdr = r.stdout.split('\n\n')[0]!;
    return { tree: /^tree (\S+)/m.exec(hdr)?.[1], parents: [...hdr.matchAll(/^parent (\S+)/gm)].map((m) => m[1]).join(' ') };
  };
  const a = await info(old);
  const b = await info(ours);
  return !!a && !!b && a.tree === b.tree && a.parents === b.parents;
}
