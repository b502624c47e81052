/**
 * Fork merge requests, read from GitLab's predefined variables (shared by `gate` and `preview`).
 *
 * A merge request pipeline of a fork runs in the fork by default: CI_PROJECT_ID is the fork,
 * CI_MERGE_REQUEST_PROJECT_ID the target project the MR belongs to, CI_MERGE_REQUEST_SOURCE_PROJECT_ID the fork,
 * and the fork's pipeline sees none of the target's CI/CD variables (so no token).
 * https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/#use-with-forked-projects
 * A maintainer of the parent project can run the pipeline in the parent project instead, where its variables exist:
 * https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/#run-pipelines-in-the-parent-project
 */

export const PARENT_PIPELINE_DOC = 'https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/#run-pipelines-in-the-parent-project';

export interface ForkContext {
  /** a merge request pipeline whose source project is not the MR's project */
  fork: boolean;
  /** CI_MERGE_REQUEST_PROJECT_ID: the project the MR belongs to (the target) */
  mrProjectId?: string;
  /** CI_MERGE_REQUEST_SOURCE_PROJECT_ID: where the MR's branch lives */
  sourceProjectId?: string;
  /** CI_PROJECT_ID: where this pipeline runs */
  pipelineProjectId?: string;
  /** the pipeline runs in the fork (not in the parent project), so the parent's variables are absent */
  runsInFork: boolean;
  /** one sentence: how to run the pipeline where the token is (for hints and the preview's "skipped" line) */
  hint: string;
}

const nz = (v: string | undefined) => (v != null && v.trim() !== '' ? v.trim() : undefined);

export function forkContext(env: NodeJS.ProcessEnv): ForkContext {
  const mrProjectId = nz(env.CI_MERGE_REQUEST_PROJECT_ID);
  const sourceProjectId = nz(env.CI_MERGE_REQUEST_SOURCE_PROJECT_ID);
  const pipelineProjectId = nz(env.CI_PROJECT_ID);
  const fork = !!mrProjectId && !!sourceProjectId && mrProjectId !== sourceProjectId;
  const runsInFork = fork && (!pipelineProjectId || pipelineProjectId !== mrProjectId);
  // GitLab's own warning: the fork's code (and, with the CI file in the repository, its CI configuration) then runs
  // with the parent's CI/CD variables, so the changes are reviewed first (PARENT_PIPELINE_DOC)
  const hint = `after reviewing the merge request's changes (they then run with the parent's CI/CD variables, tokens included), a maintainer of the parent project runs the pipeline there (merge request → Pipelines → Run pipeline), where its CI/CD variables exist: ${PARENT_PIPELINE_DOC}`;
  return { fork, mrProjectId, sourceProjectId, pipelineProjectId, runsInFork, hint };
}
