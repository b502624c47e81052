/**
 * GitLab's "Rollback environment" button re-runs the deploy job of an earlier successful deployment
 * (https://docs.gitlab.com/ci/environments/deployments/#retry-or-roll-back-a-deployment). That job's bump
 * wants the older image back, so the stale-pipeline guard would skip it (exit 0) and nothing would roll
 * back while GitLab records a successful rollback. This tells the two cases apart without a token:
 *
 *   - a late older pipeline, on its FIRST run, never landed its own trailer: no write-back commit of its
 *     pipeline set the wanted reference; the guard's skip is right;
 *   - a re-run of an old deploy job finds its own pipeline's trailer (Gitops-Pipeline-Id, and the same
 *     Gitops-Image name=ref) already in the overlay's history, with newer ones after it (the guard found the
 *     current value newer).
 *
 * A re-run is refused (EROLLBACK_RERUN_REFUSED, exit 1) with the rollback command to use, unless
 * GITOPS_ON_RERUN=rollback, which lets it roll back: the bump goes ahead as a deliberate downgrade.
 */
import { fail } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { envOf, type Origin } from './message.js';
import type { History } from './guard.js';
import { RollbackErrors } from '../rollback/errors.js';

export type OnRerun = 'refuse' | 'rollback';

export function onRerunOf(env: NodeJS.ProcessEnv): OnRerun {
  const v = (env.GITOPS_ON_RERUN ?? '').trim().toLowerCase();
  if (v === '' || v === 'refuse') return 'refuse';
  if (v === 'rollback') return 'rollback';
  throw fail.usage(RollbackErrors.CONFIG, `GITOPS_ON_RERUN must be refuse or rollback (got ${JSON.stringify(env.GITOPS_ON_RERUN)})`, { where: 'GITOPS_ON_RERUN', hint: 'refuse (the default) or rollback' });
}

/**
 * Called when the guard found `wanted` stale against `current`. Returns true when this job is a re-run that
 * may roll back (GITOPS_ON_RERUN=rollback), false for a late pipeline (the guard skips); throws when it is a
 * re-run and re-runs are refused.
 */
export async function rerunMayRollBack(history: History, o: { file: string; overlay: string; image: string; wanted: string; current: string; origin: Origin; env: NodeJS.ProcessEnv; log: Logger }): Promise<boolean> {
  if (!o.origin.pipelineId) return false;
  const mine = await history.provenance(o.file, o.image, o.wanted);
  if (!mine || mine.pipelineId !== o.origin.pipelineId || (mine.project && o.origin.project && mine.project !== o.origin.project)) return false;
  const env = envOf(o.overlay);
  const mode = onRerunOf(o.env);
  if (mode === 'rollback') {
    o.log.warn(`this job is a re-run of pipeline ${o.origin.pipelineId} (GitLab's "Rollback environment"?): its ${o.image} ${o.wanted} was deployed by ${mine.commit?.slice(0, 12)} and replaced since by ${o.current}; rolling ${env} back to it (GITOPS_ON_RERUN=rollback)`);
    return true;
  }
  throw fail.failed(RollbackErrors.RERUN_REFUSED, `this job re-runs pipeline ${o.origin.pipelineId}'s deploy to ${env} (GitLab's "Rollback environment" button?): ${o.image} ${o.wanted} was deployed by config commit ${mine.commit?.slice(0, 12)} and has been replaced since by ${o.current}; a re-run does not roll back by itself`, {
    where: `${o.file} (${env})`,
    hint: `roll back through the rollback job, or \`gitops-ci rollback --env ${env} --to ${mine.commit ?? 'CONFIG-COMMIT'}\`; to let re-runs of deploy jobs roll back directly, set GITOPS_ON_RERUN=rollback`,
  });
}

/**
 * Called when the current value was set by a rollback (its commit records Gitops-Rollback-To) and the guard let
 * `wanted` through. When this job is a re-run of a deploy job whose `wanted` was landed before (its own pipeline's
 * trailer in the history), it would silently undo the rollback: refused (EROLLBACK_RERUN_REFUSED) unless
 * GITOPS_ON_RERUN=rollback (re-runs set what they deploy). A new pipeline, or a first run, is not a re-run.
 */
export async function rerunOverRollback(history: History, o: { file: string; overlay: string; image: string; wanted: string; current: string; origin: Origin; env: NodeJS.ProcessEnv; log: Logger; rollback?: string; rollbackTo: string }): Promise<void> {
  if (!o.origin.pipelineId) return;
  const mine = await history.provenance(o.file, o.image, o.wanted);
  if (!mine || mine.pipelineId !== o.origin.pipelineId || (mine.project && o.origin.project && mine.project !== o.origin.project)) return;
  const env = envOf(o.overlay);
  const what = `${o.image} ${o.wanted} was deployed by config commit ${mine.commit?.slice(0, 12)}, and ${env} was rolled back from it on purpose by ${o.rollback?.slice(0, 12) ?? 'a rollback commit'} (to ${o.rollbackTo.slice(0, 12)})`;
  if (onRerunOf(o.env) === 'rollback') {
    o.log.warn(`this job is a re-run of pipeline ${o.origin.pipelineId}: ${what}; deploying it again (GITOPS_ON_RERUN=rollback)`);
    return;
  }
  throw fail.failed(RollbackErrors.RERUN_REFUSED, `this job re-runs pipeline ${o.origin.pipelineId}'s deploy to ${env}: ${what}; a re-run does not undo a rollback`, {
    where: `${o.file} (${env})`,
    hint: 'deploy it again with a new pipeline, or set GITOPS_ON_RERUN=rollback to let re-runs of deploy jobs set what they deploy',
  });
}
