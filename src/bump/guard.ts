/**
 * The stale-pipeline guard: never replace an image with one built from an older source commit than the
 * one already in the overlay.
 *
 * Where the "already there" provenance comes from: the trailers of the bump commit that set the image to
 * its current value (`Gitops-Image: <name>=<ref>` plus Gitops-Source-Commit / Gitops-Pipeline-Id). We walk
 * `git log -- <overlay's kustomization>` in the shallow clone and deepen it on demand, bounded. Why history
 * and not a state file: commits are immutable and already written by every bump, a hand edit of the file
 * cannot leave a stale record behind (the trailer's ref must equal the value now in the file, else the value
 * has no known provenance and the guard stands aside), and the config repo gets no extra file. The cost is
 * a deepen round trip when the last bump of that image is not near the tip; the walk stops at --history-depth.
 *
 * Order: ancestry in the source repo when it is available locally and holds both commits
 * (`git merge-base --is-ancestor`); otherwise CI_PIPELINE_ID order (instance-wide, increasing).
 *
 * Trust (issue 18): a `Gitops-*` trailer is a claim anyone who can get a commit onto the branch can write, and
 * one forged claim of a huge pipeline id made every later bump "skipped, stale" (exit 0, nothing deployed).
 * So provenance is believed only when
 *   1. the commit was made (committer name and email) by the write-back identity, GITOPS_WRITEBACK_NAME /
 *      GITOPS_WRITEBACK_EMAIL (default `gitops-ci <gitops-ci@noreply.invalid>`), which bump and promote commit
 *      as; any other commit's trailers are ignored, with a warning. A committer is only a name git records:
 *      anyone can set it, so this keeps out honest mistakes and commits made by people, not a forger;
 *   2. where a GitLab API token is available (GITOPS_GITLAB_READ_TOKEN > GITOPS_GITLAB_TOKEN > GITLAB_TOKEN,
 *      with CI_API_V4_URL/CI_SERVER_URL), the recorded pipeline is asked for: it must exist in the recorded
 *      project (GET /projects/:id/pipelines/:pipeline_id; https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline)
 *      and have run the recorded source commit. A pipeline GitLab does not know (404), hides (403), or that ran
 *      another commit is not trusted, whatever the committer. GitLab that cannot be asked (5xx, timeout) fails
 *      the bump (75/4): nothing is pushed on a guess.
 * Untrusted provenance makes the guard stand aside (the bump goes ahead), the direction a forger gains nothing
 * from; a skip names the commit and pipeline it trusted and whether the API confirmed them.
 */
import { readFileSync } from 'node:fs';
import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { addSecret } from '../core/mask.js';
import { compareCommits } from '../git/ancestry.js';
import type { Identity, LogEntry, SparseClone } from '../git/clone.js';

/**
 * Where the guard reads history from: the sparse clone (git write-back), or the repository API (src/writeback/api.ts:
 * commits listed by path, ancestry through merge_base; never shallow, so it is never deepened).
 */
export type HistorySource = Pick<SparseClone, 'head' | 'isAncestor' | 'logTrailers' | 'isShallow' | 'deepen'>;
import { BumpErrors } from './errors.js';
import { parseTrailers, provenanceFor, type Origin, type Provenance } from './message.js';
import { retryAttempts } from '../core/flags.js';

export interface Verdict {
  stale: boolean;
  by: 'ancestry' | 'pipeline-id' | 'same-source' | 'none' | 'untrusted';
  why: string;
}

// ------------------------------------------------------------------------------------------ identity

export const DEFAULT_WRITEBACK: Identity = { name: 'gitops-ci', email: 'gitops-ci@noreply.invalid' };

/**
 * The identity bump and promote commit as (the committer; the author stays the pipeline's user), and the only
 * one whose trailers the guard reads: GITOPS_WRITEBACK_NAME / GITOPS_WRITEBACK_EMAIL, else gitops-ci.
 * Set them once for the group or project, so that every job that writes or reads the config repo agrees.
 */
export function writebackIdentity(env: NodeJS.ProcessEnv): Identity {
  const name = env.GITOPS_WRITEBACK_NAME?.trim() || DEFAULT_WRITEBACK.name;
  const email = env.GITOPS_WRITEBACK_EMAIL?.trim() || DEFAULT_WRITEBACK.email;
  if (/[<>\n\r]/.test(name) || /[<>\s]/.test(email)) {
    throw fail.usage(BumpErrors.CONFIG, 'GITOPS_WRITEBACK_NAME/GITOPS_WRITEBACK_EMAIL must not contain <, > or line breaks (nor spaces in the email)', { where: 'GITOPS_WRITEBACK_NAME/GITOPS_WRITEBACK_EMAIL', hint: 'e.g. GITOPS_WRITEBACK_NAME=gitops-ci GITOPS_WRITEBACK_EMAIL=gitops-ci@noreply.invalid' });
  }
  return { name, email };
}

/** made (committed) by `id`: the same name and email (email case-insensitively) */
export function madeBy(e: Pick<LogEntry, 'committer'>, id: Identity): boolean {
  return e.committer.name === id.name && e.committer.email.toLowerCase() === id.email.toLowerCase();
}

const fmt = (id: Identity) => `${id.name} <${id.email}>`;

/**
 * The kustomization history a bump reads for the guard, kept across push attempts. A retry fetches the new
 * tip on top of the commits already here (not `--depth=1`), so what was read stays true: the commits that
 * touched a file before the old tip do not change. Only the commits after the tip last read are logged, and
 * the clone is deepened at most once per step, however many attempts the bump needs.
 */
export class History {
  private readonly clone: HistorySource;
  private readonly maxDepth: number;
  /** per file: the tip it was last read at, and its commits (newest first) up to then */
  private readonly files = new Map<string, { tip: string; entries: LogEntry[] }>();
  /** commits of history fetched behind the first tip */
  private depth = 1;
  private step = 16;
  private complete = false;
  private tip?: string;

  private readonly writeback: Identity;
  /** identities trusted beside the write-back identity: the API write-back's committer (the token's user) */
  private readonly also: Identity[];
  private readonly log?: Logger;
  /**
   * the last provenance() found nothing because the history read stopped at the depth limit (older commits
   * exist that were not read), rather than because no commit records it
   */
  limited = false;
  /** commits whose trailers were ignored (warned about once each) */
  private readonly ignored = new Set<string>();

  constructor(clone: HistorySource, maxDepth: number, o: { writeback?: Identity; also?: Identity[]; log?: Logger } = {}) {
    this.clone = clone;
    this.maxDepth = maxDepth;
    this.writeback = o.writeback ?? DEFAULT_WRITEBACK;
    this.also = o.also ?? [];
    this.log = o.log;
  }

  /** the clone moved to `tip`: keep what was read when `tip` descends from the tip it was read at */
  async moved(tip: string): Promise<void> {
    const before = this.tip;
    this.tip = tip;
    if (!before || before === tip || !this.files.size) return;
    // the branch was rewritten (force-pushed) under us: the history read before may not be on it any more
    if (!(await this.clone.isAncestor(before, tip))) this.files.clear();
  }

  private async entries(path: string): Promise<LogEntry[]> {
    const tip = this.tip ?? (this.tip = await this.clone.head());
    const known = this.files.get(path);
    if (known?.tip === tip) return known.entries;
    const entries = known ? [...(await this.clone.logTrailers(path, this.maxDepth, known.tip)), ...known.entries].slice(0, this.maxDepth) : await this.clone.logTrailers(path, this.maxDepth);
    this.files.set(path, { tip, entries });
    return entries;
  }

  /**
   * The provenance of image `name` at `ref` in the file `path`, from history: the newest commit made by the
   * write-back identity that records it; undefined when unknown. Commits by anyone else are skipped.
   */
  async provenance(path: string, name: string, ref: string): Promise<Provenance | undefined> {
    this.limited = false;
    for (;;) {
      const entries = await this.entries(path);
      for (const e of entries) {
        const p = provenanceFor(parseTrailers(e.trailers), name, ref);
        if (!p) continue;
        if (!madeBy(e, this.writeback) && !this.also.some((id) => madeBy(e, id))) {
          if (!this.ignored.has(e.sha)) {
            this.ignored.add(e.sha);
            this.log?.warn(`commit ${e.sha.slice(0, 12)} records ${name}=${ref} in Gitops-* trailers, but was committed by ${fmt(e.committer)}, not the write-back identity ${[this.writeback, ...this.also].map(fmt).join(' or ')}: its trailers are ignored`);
          }
          continue;
        }
        return { ...p, commit: e.sha };
      }
      if (this.complete || this.depth >= this.maxDepth) {
        this.limited = entries.length >= this.maxDepth || !this.complete;
        return undefined;
      }
      if (!(await this.clone.isShallow())) {
        this.complete = true;
        this.limited = entries.length >= this.maxDepth;
        return undefined;
      }
      const n = Math.min(this.step, this.maxDepth - this.depth);
      await this.clone.deepen(n);
      this.depth += n;
      this.step *= 4;
      // older commits are here now, for every file
      this.files.clear();
    }
  }
}

const short = (s?: string) => (s ? s.slice(0, 12) : '?');

export async function judge(ours: Origin, theirs: Provenance, sourceRepo: string | undefined): Promise<Verdict> {
  if (ours.commit && theirs.sourceCommit && ours.commit === theirs.sourceCommit) return { stale: false, by: 'same-source', why: 'built from the same source commit' };
  const sameProject = !ours.project || !theirs.project || ours.project === theirs.project;
  if (sameProject && sourceRepo && ours.commit && theirs.sourceCommit) {
    const order = await compareCommits(sourceRepo, ours.commit, theirs.sourceCommit);
    if (order === 'older') {
      return { stale: true, by: 'ancestry', why: `source commit ${short(ours.commit)} is an ancestor of ${short(theirs.sourceCommit)}, which is already deployed there` };
    }
    if (order === 'newer') return { stale: false, by: 'ancestry', why: `source commit ${short(ours.commit)} descends from ${short(theirs.sourceCommit)}` };
    if (order === 'same') return { stale: false, by: 'same-source', why: 'built from the same source commit' };
  }
  const a = Number(ours.pipelineId);
  const b = Number(theirs.pipelineId);
  if (ours.pipelineId && theirs.pipelineId && Number.isSafeInteger(a) && Number.isSafeInteger(b)) {
    if (a < b) return { stale: true, by: 'pipeline-id', why: `pipeline ${a} is older than pipeline ${b}, whose image is already deployed there` };
    return { stale: false, by: 'pipeline-id', why: `pipeline ${a} is not older than pipeline ${b}` };
  }
  return { stale: false, by: 'none', why: 'no comparable provenance' };
}

// ------------------------------------------------------------------------------------------ API check

/** what the guard asks GitLab (src/gitlab/client.ts behind it) */
export interface PipelineApi {
  getPipeline(project: string, id: number): Promise<{ id: number; projectId: number; sha: string; webUrl: string }>;
  getProject(project: string): Promise<{ id: number }>;
  close(): void;
}

export interface Trust {
  trusted: boolean;
  /** what was trusted, or why not: for logs, skip reasons and the promotion MR */
  how: string;
}

const nz = (v: string | undefined) => (v && v.trim() ? v.trim() : undefined);

/**
 * The GitLab API, when a token and a server are available (undefined otherwise: provenance is then taken from
 * the write-back identity alone). Loaded lazily: a bump without a token never loads the GitLab client.
 */
export async function pipelineApi(env: NodeJS.ProcessEnv, log: Logger): Promise<PipelineApi | undefined> {
  const found = (['GITOPS_GITLAB_READ_TOKEN', 'GITOPS_GITLAB_TOKEN', 'GITLAB_TOKEN'] as const).map((k) => [k, nz(env[k])] as const).find(([, v]) => v);
  const server = nz(env.CI_API_V4_URL) ?? nz(env.CI_SERVER_URL);
  if (!found || !server) {
    log.debug(`stale guard: ${found ? 'no GitLab server (CI_API_V4_URL/CI_SERVER_URL)' : 'no GitLab token (GITOPS_GITLAB_READ_TOKEN, GITOPS_GITLAB_TOKEN or GITLAB_TOKEN)'}: recorded pipelines are not checked against the API`);
    return undefined;
  }
  const [tokenSource, token] = found;
  addSecret(token);
  const { normalizeApiUrl } = await import('../gitlab/config.js');
  const { gitlabClient } = await import('../gitlab/client.js');
  const caFile = nz(env.GITOPS_GITLAB_CA_FILE) ?? nz(env.CI_SERVER_TLS_CA_FILE);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw fail.usage(BumpErrors.CONFIG, `cannot read the GitLab CA file ${caFile}: ${(e as Error).message}`, { where: caFile, hint: 'fix GITOPS_GITLAB_CA_FILE / CI_SERVER_TLS_CA_FILE' });
    }
  }
  const apiUrl = normalizeApiUrl(server);
  const gl = gitlabClient({ apiUrl, token: token!, tokenSource, project: nz(env.CI_PROJECT_PATH) ?? '', caFile, ca, insecure: /^(1|true|yes|on)$/i.test(env.GITOPS_GITLAB_INSECURE ?? '') || undefined, requestTimeoutMs: 30_000 }, { log, attempts: retryAttempts(env) });
  log.debug(`stale guard: recorded pipelines are checked against ${apiUrl} (token from ${tokenSource})`);
  return { getPipeline: (p, id) => gl.getPipeline(p, id), getProject: (p) => gl.getProject(p), close: () => gl.close() };
}

/**
 * Is `p` (from a write-back commit) what it says? Without an API: trusted on the identity alone, and said so.
 * With one: the pipeline must exist in the recorded project and have run the recorded commit.
 */
export async function verifyProvenance(p: Provenance, api: PipelineApi | undefined): Promise<Trust> {
  const commit = `commit ${p.commit?.slice(0, 12) ?? '?'}`;
  const pipeline = `pipeline ${p.pipelineId ?? '?'}${p.project ? ` of ${p.project}` : ''}`;
  if (!api) return { trusted: true, how: `${pipeline} at ${p.sourceCommit?.slice(0, 12) ?? '?'}, recorded by write-back ${commit}; not checked against the GitLab API (no token)` };
  if (!p.project || !p.pipelineId || !/^[1-9][0-9]{0,15}$/.test(p.pipelineId)) {
    return { trusted: false, how: `${commit} records no project and pipeline id the GitLab API can check (${pipeline})` };
  }
  let pl;
  let project;
  try {
    pl = await api.getPipeline(p.project, Number(p.pipelineId));
    project = await api.getProject(p.project);
  } catch (e) {
    // 404/403: GitLab does not know it, or will not show it to us: indistinguishable from a forgery
    if (isGitopsError(e) && (e.code === 'EGITLAB_NOT_FOUND' || (e as { status?: number }).status === 403)) {
      return { trusted: false, how: `the GitLab API does not confirm ${pipeline} recorded by ${commit} (${e.message})` };
    }
    throw e;
  }
  if (pl.projectId !== project.id) return { trusted: false, how: `${pipeline} recorded by ${commit} belongs to project ${pl.projectId}, not ${p.project} (${project.id})` };
  if (p.sourceCommit && pl.sha !== p.sourceCommit) return { trusted: false, how: `${pipeline} recorded by ${commit} ran ${pl.sha.slice(0, 12)}, not the recorded source commit ${p.sourceCommit.slice(0, 12)}` };
  return { trusted: true, how: `${pipeline} at ${pl.sha.slice(0, 12)}, recorded by write-back ${commit}, verified with the GitLab API` };
}

/**
 * The guard of one bump: history, the API check and the verdicts, kept across push attempts (a verdict depends
 * only on our origin and the provenance, so a retry asks neither the source repo nor GitLab again).
 */
export class Guard {
  readonly history: History;
  private readonly verdicts = new Map<string, Verdict & Trust>();
  private api?: Promise<PipelineApi | undefined>;

  constructor(
    clone: HistorySource,
    private readonly o: { historyDepth: number; env: NodeJS.ProcessEnv; log: Logger; origin: Origin; sourceRepo?: string; also?: Identity[] },
  ) {
    this.history = new History(clone, o.historyDepth, { writeback: writebackIdentity(o.env), also: o.also, log: o.log });
  }

  /**
   * The verdict for replacing `ref` (now in `file`) of image `name`; undefined when no trusted commit records
   * it (the guard stands aside).
   */
  async check(file: string, name: string, ref: string): Promise<(Verdict & Trust & { commit?: string; rollbackTo?: string }) | undefined> {
    const prov = await this.history.provenance(file, name, ref);
    if (!prov) return undefined;
    const key = JSON.stringify([prov.commit, prov.project, prov.sourceCommit, prov.pipelineId]);
    let v = this.verdicts.get(key);
    if (!v) {
      this.api ??= pipelineApi(this.o.env, this.o.log);
      const trust = await verifyProvenance(prov, await this.api);
      if (!trust.trusted) {
        this.o.log.warn(`stale guard: ${trust.how}: not trusted, the guard stands aside for ${name}`);
        v = { stale: false, by: 'untrusted', why: trust.how, ...trust };
      } else v = { ...(await judge(this.o.origin, prov, this.o.sourceRepo)), ...trust };
      this.verdicts.set(key, v);
    }
    return { ...v, commit: prov.commit, rollbackTo: prov.rollbackTo };
  }

  async close(): Promise<void> {
    (await this.api?.catch(() => undefined))?.close();
  }
}
