/**
 * Empty means unset (issue #9 item 1): an empty variable or flag value falls through to the next default, as a
 * GitLab user expects from an input left empty. Applied once in the CLI, to ctx.env and to the parsed flags.
 */
import { describe, expect, it } from 'vitest';
import { withoutEmptyValues, withoutEmptyVars } from '../../src/core/command.js';
import { runCli } from '../helpers/cli.js';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';

describe('empty means unset', () => {
  it('drops empty variables and empty flag values, keeps everything else', () => {
    expect(withoutEmptyVars({ A: '', B: 'b', C: undefined, D: ' ' })).toEqual({ B: 'b', D: ' ' });
    expect(withoutEmptyValues({ repo: '', branch: 'main', dry: true, off: false, image: ['', 'a=b:1', ''], dir: [''] })).toEqual({
      branch: 'main',
      dry: true,
      off: false,
      image: ['a=b:1'],
    });
  });

  it('the README example\'s empty config-repo and config-branch reach bump as unset: it uses this project and its default branch', async () => {
    const repo = bareRepo(seedLayout('registry.example.com/shovel/app'));
    const r = await runCli(
      ['bump', '--repo', '', '--branch', '', '--dir', '.kubernetes/overlays/staging', '--image', `registry.example.com/shovel/app@sha256:${'a'.repeat(64)}`, '--dry-run'],
      { cwd: tmp(), env: { GITOPS_CONFIG_REPO: '', GITOPS_CONFIG_BRANCH: '', GITOPS_SKIP_CI: '', CI_REPOSITORY_URL: repo, CI_DEFAULT_BRANCH: 'main' } },
    );
    expect(r.code, r.all).toBe(0);
    expect(r.stdout).toContain(`+    digest: sha256:${'a'.repeat(64)}`);
    expect(r.all).not.toContain('EBUMP_CONFIG');
  });
});
