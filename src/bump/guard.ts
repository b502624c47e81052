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
import type { SparseClone } from '../git/clone.js';
import { parseTrailers, provenanceFor, type Origin, type Provenance } from './message.js';

export interface Verdict {
  stale: boolean;
  by: 'ancestry' | 'pipeline-id' | 'same-source' | 'none';
  why: string;
}

/** The provenance of image `name` at `ref` in the file `path`, from history; undefined when unknown. */
export async function findProvenance(clone: SparseClone, path: string, name: string, ref: string, maxDepth: number): Promise<Provenance | undefined> {
  let depth = 1;
  let step = 16;
  for (;;) {
    const entries = await clone.logTrailers(path, maxDepth);
    for (const e of entries) {
      const p = provenanceFor(parseTrailers(e.trailers), name, ref);
      if (p) return { ...p, commit: e.sha };
    }
    if (depth >= maxDepth || !(await clone.isShallow())) return undefined;
    const n = Math.min(step, maxDepth - depth);
    await clone.deepen(n);
    depth += n;
    step *= 4;
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
