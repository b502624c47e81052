/**
 * A hostile audit of `gate` and `preview`: what a Developer (or a fork MR) can do to fool them, through the CLI bundle
 * with the real git server, the GitLab double (responses checked against test/contracts/) and the real kustomize.
 * Only cases no other test covers:
 *  - gate: a tag named like the target branch does not replace the target branch's protected settings file
 *    (GitLab resolves a bare ref name tag first: https://gitlab.com/groups/gitlab-org/-/epics/11540);
 *  - preview: a render error's code block is closed on a line of its own, so the next failing overlay's error text
 *    (which the MR writes) stays code, never Markdown (a heading, or a /merge quick action GitLab would run for the
 *    token's user: https://docs.gitlab.com/user/project/quick_actions/);
 *  - preview: generator inputs cannot read the job's environment: a builtin generator config naming
 *    /proc/self/environ, a configMapGenerator file symlinked to it, an env file naming variables, an exec KRM function.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { git } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { PROJECT, setupGitlab, type GitlabFixture } from '../gitlab/fixture.js';

describe('gate: the protected settings file cannot be swapped for a tag', () => {
  let fx: GitlabFixture;
  beforeAll(async () => {
    fx = await setupGitlab();
  });
  afterAll(async () => {
    expect(fx.recorder.violations).toEqual([]);
    await fx?.stop();
  });

  it('a tag `main` pointing at a lax .gitops-ci.yml does not replace the one on branch main', async () => {
    fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': 'gate:\n  approvals: 2\n  approvers: ["@release"]\n' } });
    // alice (Developer) pushes a commit whose settings say nothing, and tags it `main` over the real git server
    const lax = fx.gl.hooks.push(PROJECT, 'alice/lax-settings', { files: { '.gitops-ci.yml': '# no gate settings\n' }, author: 'alice' });
    const clone = tmp('gci-audit-tag-');
    git(clone, ['clone', '-q', fx.git.authUrl('group/config.git'), '.']);
    git(clone, ['push', '-q', 'origin', `${lax}:refs/tags/main`]);
    try {
      // the attack is real: the bare name resolves to the tag (git's and GitLab's order)
      expect(await fx.client().fileAtRef(PROJECT, '.gitops-ci.yml', 'main')).toBe('# no gate settings\n');
      const branch = 'alice/change';
      fx.gl.hooks.push(PROJECT, branch, { files: { 'change.txt': 'a change\n' }, author: 'alice' });
      const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: branch, targetBranch: 'main', title: 'A change' });
      fx.gl.hooks.approve(PROJECT, mr.iid, 'dave');
      const r = await runCli(['gate', '--mr', String(mr.iid), '--approvals', '1'], { env: fx.env });
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toMatch(/protected setting: \.gitops-ci\.yml on main: approvals 2, approvers @release/);
      expect(r.stderr).toMatch(/ignored: @dave .*not an allowed approver/);
      expect(r.stderr).toContain('EGITLAB_NOT_APPROVED');
    } finally {
      git(clone, ['push', '-q', 'origin', ':refs/tags/main']);
      fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': '# no gate settings here\n' } });
    }
  });
});
