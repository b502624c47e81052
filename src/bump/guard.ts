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
 */
import { compareCommits } from '../git/ancestry.js';
import type { LogEntry, SparseClone } from '../git/clone.js';
import { parseTrailers, provenanceFor, type Origin, type Provenance } from './message.js';

export interface Verdict {
  stale: boolean;
  by: 'ancestry' | 'pipeline-id' | 'same-source' | 'none';
  why: string;
}

/**
 * The kustomization history a bump reads for the guard, kept across push attempts. A retry fetches the new
 * tip on top of the commits already here (not `--depth=1`), so what was read stays true: the commits that
 * touched a file before the old tip do not change. Only the commits after the tip last read are logged, and
 * the clone is deepened at most once per step, however many attempts the bump needs.
 */
export class History {
  private readonly clone: SparseClone;
  private readonly maxDepth: number;
  /** per file: the tip it was last read at, and its commits (newest first) up to then */
  private readonly files = new Map<string, { tip: string; entries: LogEntry[] }>();
  /** commits of history fetched behind the first tip */
  private depth = 1;
  private step = 16;
  private complete = false;
  private tip?: string;

  constructor(clone: SparseClone, maxDepth: number) {
    this.clone = clone;
    this.maxDepth = maxDepth;
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

  /** The provenance of image `name` at `ref` in the file `path`, from history; undefined when unknown. */
  async provenance(path: string, name: string, ref: string): Promise<Provenance | undefined> {
    for (;;) {
      for (const e of await this.entries(path)) {
        const p = provenanceFor(parseTrailers(e.trailers), name, ref);
        if (p) return { ...p, commit: e.sha };
      }
      if (this.complete || this.depth >= this.maxDepth) return undefined;
      if (!(await this.clone.isShallow())) {
        this.complete = true;
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
