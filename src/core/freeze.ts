/**
 * Deploy freezes. GitLab sets CI_DEPLOY_FREEZE in every job of a pipeline that runs inside a freeze period
 * (Settings → CI/CD → Deploy freezes), and does nothing else: jobs must test it themselves
 * (https://docs.gitlab.com/ci/environments/deployment_safety/#prevent-deployments-during-deploy-freeze-windows).
 * The commands that change an environment (bump, promote) call checkDeployFreeze first, before they touch
 * anything, so a freeze stops them with one clear error; a team overrides it on purpose with the component input
 * `deploy-freeze: ignore` (flag --ignore-deploy-freeze).
 */
import { fail } from './errors.js';

export const FREEZE_CODE = 'EFREEZE_ACTIVE';

/** throws EFREEZE_ACTIVE (exit 1) when CI_DEPLOY_FREEZE is non-empty and not ignored; returns whether a freeze was ignored */
export function checkDeployFreeze(env: NodeJS.ProcessEnv, opts: { ignore?: boolean; command: string }): { frozen: boolean } {
  const frozen = !!(env.CI_DEPLOY_FREEZE ?? '').trim();
  if (!frozen || opts.ignore) return { frozen };
  throw fail.failed('EFREEZE_ACTIVE', `a deploy freeze is in effect (CI_DEPLOY_FREEZE is set): ${opts.command} changes nothing during a freeze`, {
    where: 'CI_DEPLOY_FREEZE',
    hint: 'wait until the freeze period ends and run the job again, or override on purpose: component input `deploy-freeze: ignore` (flag --ignore-deploy-freeze)',
  });
}
