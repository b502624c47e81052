/**
 * `gitops-ci review down --env review/NAME`: remove the review overlay of a merge request from the config repo
 * (Argo CD's ApplicationSet then deletes the app), through bump's race-safe write-back. See
 * docs/commands/review.md.
 */
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import type { GitopsError } from '../core/errors.js';
import { reviewConfig, reviewOptions, runReview, throwProblems, type ReviewConfig } from '../review/command.js';

export const spec: CommandSpec = {
  name: 'review down',
  usage: 'gitops-ci review down --env review/NAME [flags]',
  description: `
Remove the review app of a merge request from the config repo: <review-root>/<slug>/ goes in one commit
([skip ci]) pushed through bump's race-safe loop, and the ApplicationSet that generated the app deletes it.
Already gone: no commit, exit 0. A stop job of an older pipeline does not remove what a newer pipeline of
the MR deployed (skipped, exit 0) unless --force. Wait for the deletion with \`gitops-ci argocd wait --gone\`.`,
  options: { ...reviewOptions },
  examples: ['gitops-ci review down --env review/mr-$CI_MERGE_REQUEST_IID --dotenv review.env'],
};

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const problems: string[] = [];
  const errors: GitopsError[] = [];
  const cfg = await reviewConfig(ctx, values, problems, errors);
  throwProblems('review down', problems, errors);
  const c = cfg as ReviewConfig;
  return runReview(ctx, values, c, undefined, [c.name.dir]);
}
