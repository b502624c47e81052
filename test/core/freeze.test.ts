/**
 * Deploy freezes: GitLab only sets CI_DEPLOY_FREEZE during a freeze period; jobs must test it themselves
 * (https://docs.gitlab.com/ci/environments/deployment_safety/#prevent-deployments-during-deploy-freeze-windows).
 * bump and promote refuse before they touch anything (EFREEZE_ACTIVE, exit 1) unless told to ignore it.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { bareRepo, git, seedLayout } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { checkDeployFreeze } from '../../src/core/freeze.js';

const STAGING = '.kubernetes/overlays/staging';
const IMAGE = 'registry.example.com/shovel/shovel-gitops';

describe('deploy freeze', () => {
  it('checkDeployFreeze: refuses when CI_DEPLOY_FREEZE is set, passes when unset, empty or ignored', () => {
    expect(checkDeployFreeze({}, { command: 'bump' })).toEqual({ frozen: false });
    expect(checkDeployFreeze({ CI_DEPLOY_FREEZE: '' }, { command: 'bump' })).toEqual({ frozen: false });
    expect(checkDeployFreeze({ CI_DEPLOY_FREEZE: 'true' }, { command: 'bump', ignore: true })).toEqual({ frozen: true });
    expect(() => checkDeployFreeze({ CI_DEPLOY_FREEZE: 'true' }, { command: 'bump' })).toThrow(/deploy freeze is in effect/);
  });

  it('bump refuses during a freeze and leaves the branch as it was; --ignore-deploy-freeze overrides', async () => {
    const repo = bareRepo(seedLayout(IMAGE), { branch: 'staging' });
    const before = git(repo, ['rev-parse', 'staging']);
    const dotenv = join(tmp('gci-freeze-'), 'bump.env');
    const args = ['bump', '--repo', repo, '--branch', 'staging', '--dir', STAGING, '--image', `${IMAGE}:1.2.3`, '--dotenv', dotenv];
    const env = { CI_DEPLOY_FREEZE: 'true', GITLAB_USER_NAME: 'ci', GITLAB_USER_EMAIL: 'ci@example.com' };
    const r = await runCli(args, { env });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EFREEZE_ACTIVE');
    expect(r.stderr).toMatch(/deploy freeze is in effect/);
    expect(r.stderr).toMatch(/deploy-freeze: ignore/);
    expect(git(repo, ['rev-parse', 'staging'])).toBe(before);
    expect(existsSync(dotenv)).toBe(false);

    const ok = await runCli([...args, '--ignore-deploy-freeze'], { env });
    expect(ok.code, ok.all).toBe(0);
    expect(ok.all).toMatch(/deploy freeze is in effect.*--ignore-deploy-freeze/);
    expect(git(repo, ['rev-parse', 'staging'])).not.toBe(before);
  });

  it('promote refuses during a freeze before reading anything; a dry run (the MR preview) is not stopped', async () => {
    const repo = bareRepo(seedLayout(IMAGE), { branch: 'main' });
    const before = git(repo, ['rev-parse', 'main']);
    const args = ['promote', '--repo', repo, '--branch', 'main', '--from', STAGING, '--to', '.kubernetes/overlays/production'];
    const r = await runCli(args, { env: { CI_DEPLOY_FREEZE: '1' } });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EFREEZE_ACTIVE');
    expect(git(repo, ['rev-parse', 'main'])).toBe(before);
    const dry = await runCli([...args, '--dry-run'], { env: { CI_DEPLOY_FREEZE: '1' } });
    expect(dry.stderr).not.toContain('EFREEZE_ACTIVE');
  });
});
