/** bump, promote and preview find their config repo the same way (configRemote, src/git/url.ts). */
import { describe, expect, it } from 'vitest';
import type { GitopsError } from '../../src/core/errors.js';
import { compareRepos, configRemote } from '../../src/git/url.js';

function resolve(flag: string | undefined, env: NodeJS.ProcessEnv) {
  const problems: string[] = [];
  const errors: GitopsError[] = [];
  const remote = configRemote(flag, env, '/work', problems, errors);
  return { remote, problems, errors };
}

describe('configRemote', () => {
  const ci = { CI_REPOSITORY_URL: 'https://gitlab.example.com/shovel/app.git', CI_SERVER_URL: 'https://gitlab.example.com', CI_PROJECT_PATH: 'shovel/app' };

  it('takes --repo, then GITOPS_CONFIG_REPO, then the pipeline\'s own repo (CI_REPOSITORY_URL, then CI_SERVER_URL/CI_PROJECT_PATH)', () => {
    expect(resolve('https://h.example/flag.git', { ...ci, GITOPS_CONFIG_REPO: 'https://h.example/var.git' }).remote?.url).toBe('https://h.example/flag.git');
    expect(resolve(undefined, { ...ci, GITOPS_CONFIG_REPO: 'https://h.example/var.git' }).remote?.url).toBe('https://h.example/var.git');
    expect(resolve(undefined, ci).remote?.url).toBe('https://gitlab.example.com/shovel/app.git');
    expect(resolve(undefined, { CI_SERVER_URL: ci.CI_SERVER_URL, CI_PROJECT_PATH: ci.CI_PROJECT_PATH }).remote?.url).toBe('https://gitlab.example.com/shovel/app.git');
  });

  it('records a missing repo as a problem and a malformed one as an error, without throwing', () => {
    const none = resolve(undefined, {});
    expect(none.remote).toBeUndefined();
    expect(none.problems).toEqual([expect.stringMatching(/^no config repo: pass --repo/)]);
    const bad = resolve('ext::sh -c evil', {});
    expect(bad.remote).toBeUndefined();
    expect(bad.errors.map((e) => e.code)).toEqual(['EGIT_URL']);
  });

  it('takes the credentials out of the URL it hands to git', () => {
    const r = resolve('https://oauth2:glpat-secret123@gitlab.example.com/g/config.git', {}).remote!;
    expect(r.url).toBe('https://gitlab.example.com/g/config.git');
    expect(r.display).not.toContain('glpat-secret123');
  });
});

describe('compareRepos', () => {
  it('one repo, however it is spelled: credentials, port, .git, trailing slash, case, ssh or scp-like', () => {
    const a = 'https://gitlab.example.com/shovel/config.git';
    expect(compareRepos(a, 'https://oauth2:tok@GitLab.example.com:443/Shovel/config/')).toBe('same');
    expect(compareRepos(a, 'git@gitlab.example.com:shovel/config.git')).toBe('same');
    expect(compareRepos(a, 'ssh://git@gitlab.example.com:2222/shovel/config')).toBe('same');
    expect(compareRepos('/srv/git/config.git', 'file:///srv/git/config.git')).toBe('same');
  });

  it('another host with the same path is told apart from another repo', () => {
    expect(compareRepos('https://gitlab.example.com/shovel/config.git', 'https://gitlab.internal/shovel/config.git')).toBe('other-host');
    expect(compareRepos('https://gitlab.example.com/shovel/config.git', 'https://gitlab.example.com/shovel/other.git')).toBe('different');
    expect(compareRepos('https://gitlab.example.com/shovel/config.git', 'https://gitlab.example.com/shovel/config/sub.git')).toBe('different');
    expect(compareRepos('/srv/git/config.git', 'https://gitlab.example.com/srv/git/config.git')).toBe('different');
    expect(compareRepos('', 'https://gitlab.example.com/shovel/config.git')).toBe('unknown');
  });
});
