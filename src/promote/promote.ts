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
 *
 * Both go through the shared write-back checkout (src/writeback/): the clone in a cleanup temp dir, every path
 * through resolveInside, the edit through the edit layer with the pins as objects (Pinned.pin).
 */
import type { ServerLockChoice } from '../writeback/server-lock.js';
import { fail } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { bump, type BumpOutcome } from '../bump/bump.js';
import { BumpErrors } from '../bump/errors.js';
import { buildMessage, envOf, shortImageOf, shortRefOf, tersely, type Change, type Origin, type SkipCi } from '../bump/message.js';
import type { Identity } from '../git/clone.js';
import type { Remote } from '../git/url.js';
import { unifiedDiff } from '../kustomize/diff.js';
import { diffRendered, formatDiffs, type DiffSection } from '../render/diff.js';
import { Checkout, type KindChoice, type Located } from '../writeback/checkout.js';
import { refString } from '../writeback/pins.js';
import { pushOwnBranch, restoreOwnBranch } from '../writeback/push.js';
import { PromoteErrors } from './errors.js';
import { codeSpan, escapeMarkdown, mdLink } from '../core/markdown.js';
import { writebackIdentity } from '../bump/guard.js';
import type { Pinned, Source } from './source.js';
import type { ApiWriteback } from '../writeback/api.js';

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
  /** what moves: each image's digest, as a pin object (Pinned.pin) from the source read to the edit */
  pinned: Pinned[];
  /** which file in --to is edited: auto (the one kind found there) or a kind of src/edit/registry.ts */
  targetKind: KindChoice;
  fromApp?: string;
  /** the job that verified the source environment (argocd wait), for the provenance */
  verifyJob?: string;
  via: 'push' | 'mr' | 'api';
  skipCi: SkipCi;
  dryRun: boolean;
  author: Identity;
  /** the promote job's own CI variables */
  job: Origin;
  maxAttempts: number;
  /** --lock-file (--via push/api): take turns with this host's other writers (src/writeback/lock.ts) */
  lockFile?: string;
  /** --server-lock (--via push/api): take turns with every writer of the branch (src/writeback/server-lock.ts) */
  serverLock?: ServerLockChoice;
  deadline: number;
  sshAcceptNew: boolean;
  /** render the target overlay before/after (always with --via mr) */
  render: boolean;
  mr?: MergeRequestOptions;
  /** --via mr: our branch (default promotionBranch(to); a rollback has its own, rollbackBranch) */
  mrBranch?: string;
  mrApi?: () => Promise<MergeRequestApi>;
  /** --via push/api through GitLab's commits API (src/writeback/api.ts), decided by the command */
  api?: ApiWriteback;
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

/**
 * The origin recorded in the commit: where the promoted images were built (from the source's bump commits). One
 * set of Gitops-Source-* trailers speaks for every Gitops-Image of the commit, and bump's stale guard reads it
 * for each: when the images were built by different pipelines (or only some provenance is known), none is
 * recorded, else a newer build of one image would be refused as older than another image's pipeline.
 */
export function originOf(pinned: Pinned[], source: Source, job: Origin): Origin {
  const provs = pinned.map((p) => source.images.find((i) => i.name === p.name)?.provenance);
  const id = (p: (typeof provs)[number]) => JSON.stringify(p ? [p.project, p.sourceCommit, p.pipelineId] : null);
  const prov = provs[0];
  if (provs.some((p) => id(p) !== id(prov))) return { jobUrl: job.jobUrl };
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
    pins: cfg.pinned.map((p) => p.pin),
    targetKind: cfg.targetKind,
    template: templateOf(cfg),
    skipCi: cfg.skipCi,
    render: cfg.render,
    // a promotion moves exactly what the source runs: the stale guard does not apply
    allowDowngrade: true,
    dryRun: cfg.dryRun,
    author: cfg.author,
    origin: originOf(cfg.pinned, cfg.source, cfg.job),
    maxAttempts: cfg.maxAttempts,
    lockFile: cfg.lockFile,
    serverLock: cfg.serverLock,
    deadline: cfg.deadline,
    historyDepth: 1,
    sshAcceptNew: cfg.sshAcceptNew,
    env: cfg.env,
    log: cfg.log,
    trailers: trailersOf(cfg),
    api: cfg.api,
  });
  return { changed: out.changed, dryRun: out.dryRun, changes: out.changes, commit: out.commit, head: out.head, diff: out.diff, attempts: out.attempts };
}

export function promotionBranch(to: string): string {
  return `gitops-ci/promote/${envOf(to).replace(/[^A-Za-z0-9._-]/g, '-')}`;
}

/**
 * rollback --via mr's own branch: a promotion run must neither take over a pending rollback MR (force-push its
 * branch, retitle it) nor close it as superseded
 */
export function rollbackBranch(to: string): string {
  return `gitops-ci/rollback/${envOf(to).replace(/[^A-Za-z0-9._-]/g, '-')}`;
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

/** --to in the checkout: its file and target; a usage error when it holds none */
async function openTarget(cfg: PromoteConfig): Promise<{ co: Checkout; located: Located }> {
  let located: Located | undefined;
  const co = await Checkout.open({ remote: cfg.remote, branch: cfg.branch, paths: [cfg.to], env: cfg.env, log: cfg.log, sshAcceptNew: cfg.sshAcceptNew, deadline: cfg.deadline, purpose: 'promote' }, async (c) => {
    located = (await c.typeOf(cfg.to)) === 'tree' ? await c.locate(cfg.to, cfg.targetKind) : undefined;
    if (!located) {
      throw fail.usage(BumpErrors.OVERLAY_NOT_FOUND, `overlay not found on branch ${cfg.branch}: ${cfg.to}`, { where: `${cfg.remote.display} (${cfg.branch})`, hint: '--to is relative to the config repo root and must hold a kustomization.yaml' });
    }
    await c.closure([cfg.to]);
  });
  return { co, located: located! };
}

/** The edit of --to, in memory: the new text and the changes (nothing written yet). */
function editTarget(cfg: PromoteConfig, located: Located, text: string): { text: string; changes: Change[] } {
  const res = located.target.edit(text, cfg.pinned.map((p) => p.pin), located.file);
  for (const w of res.warnings) cfg.log.warn(`${located.file}: ${w}`);
  const changes: Change[] = res.changes.filter((c) => c.changed).map((c) => ({ overlay: cfg.to, env: envOf(cfg.to), image: c.pin.name, before: c.before ? refString(c.before) : undefined, after: refString(c.after) }));
  return { text: res.text, changes: res.text === text ? [] : changes };
}

/**
 * Nothing to promote: an open promotion MR proposes something the source no longer runs (or that is there
 * already); merging it later would move what was not verified, so it is closed as superseded.
 */
async function closeSuperseded(cfg: PromoteConfig): Promise<void> {
  const api = await cfg.mrApi!();
  const reason = `Superseded: ${escapeMarkdown(envOf(cfg.to))} already runs what ${escapeMarkdown(envOf(cfg.from))} runs (config commit ${codeSpan(cfg.source.commit)}), so this promotion is no longer wanted. Closed by gitops-ci promote${cfg.job.jobUrl ? ` (${mdLink('job', cfg.job.jobUrl)})` : ''}.`;
  for (const c of await api.closeSuperseded({ sourceBranch: cfg.mrBranch ?? promotionBranch(cfg.to), targetBranch: cfg.branch, reason })) cfg.log.info(`closed !${c.iid} (${c.webUrl}): it proposed content ${envOf(cfg.from)} no longer runs`);
}

/** The rendered diff of --to, before and after the edit (the edit is written in between). */
async function renderedChange(co: Checkout, cfg: PromoteConfig, located: Located, after: string): Promise<DiffSection[]> {
  const before = await co.render(cfg.to, { when: 'before', target: located.target });
  await co.write(located.file, after);
  const rendered = await co.render(cfg.to, { when: 'after', target: located.target });
  if (before === undefined || rendered === undefined) return [{ title: `${envOf(cfg.to)} (${cfg.to})`, diffs: [], error: `${located.target.kind} files have no renderer here: the merge request shows the file diff only` }];
  return [{ title: `${envOf(cfg.to)} (${cfg.to})`, diffs: diffRendered(before, rendered, cfg.to) }];
}

/** Commit on BRANCH's tip, push our promotion branch, upsert the MR; the branch is put back if the MR API fails. */
async function proposeByMr(co: Checkout, cfg: PromoteConfig, o: { file: string; changes: Change[]; description: string }): Promise<{ commit: string; mr: NonNullable<PromoteOutcome['mr']> }> {
  const { log } = cfg;
  // the MR API first: a configuration or token problem fails before anything is pushed
  const api = await cfg.mrApi!();
  const message = buildMessage({ changes: o.changes, origin: originOf(cfg.pinned, cfg.source, cfg.job), skipCi: cfg.skipCi, template: templateOf(cfg), trailers: trailersOf(cfg) });
  // the write-back identity commits (the author stays the pipeline's user): the stale guard trusts only its trailers
  const ours = await co.clone.commit([o.file], message, cfg.author, writebackIdentity(cfg.env));
  const branch = cfg.mrBranch ?? promotionBranch(cfg.to);
  const p = await pushOwnBranch(co, branch, ours, { code: PromoteErrors.PUSH });
  if (!p.pushed) log.info(`${branch} already holds this promotion on the same base (${p.commit.slice(0, 12)}); not pushed again`);
  else log.info(`pushed ${p.commit.slice(0, 12)} to ${branch}${p.old ? ` (replacing ${p.old.slice(0, 12)})` : ''}`);
  const mrOpts = cfg.mr!;
  let mr;
  try {
    mr = await api.upsert({ sourceBranch: branch, targetBranch: cfg.branch, title: mrOpts.title ?? mrTitle(cfg, o.changes), description: o.description, labels: mrOpts.labels, assignees: mrOpts.assignees, reviewers: mrOpts.reviewers, draft: mrOpts.draft });
  } catch (e) {
    // no half-done promotion: our branch goes back to what it was (the open MR keeps describing what it holds)
    if (p.pushed) {
      const r = await restoreOwnBranch(co, branch, p.commit, p.old);
      log.warn(r.detail);
    }
    throw e;
  }
  log.info(`merge request !${mr.iid} ${mr.created ? 'opened' : mr.updated ? 'updated' : 'already up to date'}: ${mr.webUrl}`);
  if (mrOpts.autoMerge) await api.autoMerge({ iid: mr.iid, sha: p.commit, timeoutMs: mrOpts.autoMergeTimeoutMs });
  return { commit: p.commit, mr: { ...mr, branch, pushed: p.pushed } };
}

async function promoteByMr(cfg: PromoteConfig): Promise<PromoteOutcome> {
  const { co, located } = await openTarget(cfg);
  try {
    const head = await co.clone.head();
    const text = await co.read(located.file);
    const edit = editTarget(cfg, located, text);
    if (!edit.changes.length) {
      if (!cfg.dryRun) await closeSuperseded(cfg);
      return { changed: false, dryRun: cfg.dryRun, changes: [], head, attempts: 1 };
    }
    const sections = await renderedChange(co, cfg, located, edit.text);
    const description = mrDescription({ cfg, changes: edit.changes, sections });
    const diff = unifiedDiff(text, edit.text, located.file);
    if (cfg.dryRun) return { changed: false, dryRun: true, changes: edit.changes, head, diff, rendered: description, attempts: 1 };
    const { commit, mr } = await proposeByMr(co, cfg, { file: located.file, changes: edit.changes, description });
    return { changed: true, dryRun: false, changes: edit.changes, commit, head, diff, rendered: description, mr, attempts: 1 };
  } finally {
    await co.close();
  }
}
