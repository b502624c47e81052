/** The GitLab side of promote --via mr (src/gitlab/*), behind promote's MergeRequestApi. */
import type { CommandContext, Values } from '../core/command.js';
import { redactUrl } from '../core/mask.js';
import type { Remote } from '../git/url.js';
import { gitlabClient } from '../gitlab/client.js';
import { resolveGitlabConfig } from '../gitlab/config.js';
import { autoMerge, closeOpenMergeRequests, upsertMergeRequest } from '../gitlab/mr.js';
import type { MergeRequestApi } from './promote.js';
import { retryAttempts } from '../core/flags.js';

export async function mergeRequestApi(ctx: CommandContext, values: Values, remote: Remote): Promise<MergeRequestApi> {
  const cfg = resolveGitlabConfig(ctx.env, values, { repoUrl: remote.kind === 'local' ? undefined : remote.url });
  const gl = gitlabClient(cfg, { log: ctx.log, attempts: retryAttempts(ctx.env) });
  // verify before mutating: the token and the project are checked before anything is pushed
  await gl.getProject(cfg.project);
  ctx.log.debug(`GitLab ${redactUrl(cfg.apiUrl)}, project ${cfg.project}, token from ${cfg.tokenSource}`);
  return {
    upsert: (o) => upsertMergeRequest(gl, { project: cfg.project, ...o }),
    closeSuperseded: (o) => closeOpenMergeRequests(gl, { project: cfg.project, ...o }),
    autoMerge: async (o) => {
      const r = await autoMerge(gl, { project: cfg.project, iid: o.iid, sha: o.sha, timeoutMs: o.timeoutMs, onWait: (m) => ctx.log.info(m) });
      ctx.log.info(r.state === 'merged' ? `merge request !${o.iid} merged (${r.mergeCommitSha?.slice(0, 12) ?? '?'})` : `merge request !${o.iid} set to merge when the pipeline succeeds`);
    },
  };
}
