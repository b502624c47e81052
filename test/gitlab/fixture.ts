/**
 * Shared set-up of the GitLab tests: the harness's real git server with a config repo, the GitLab double in
 * front of it (users alice, bob, carol, dave; groups release (bob, carol) and org/ops (dave, inheriting
 * org's erin)), a contract recorder on every response, and a client through gitbeaker for the bot.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { pushTree } from '../helpers/config-repo.js';
import { startGitlabDouble, type GitlabDouble, type GitlabDoubleOptions } from '../doubles/gitlab/server.js';
import { gitlabClient, type ClientOptions, type GitlabClient } from '../../src/gitlab/client.js';
import { resolveGitlabConfig } from '../../src/gitlab/config.js';
import { gitlabContractRecorder } from './contract.js';

export const PROJECT = 'group/config';

export interface GitlabFixture {
  git: GitServer;
  gl: GitlabDouble;
  recorder: ReturnType<typeof gitlabContractRecorder>;
  /** gitbeaker-backed client as the bot (or as `user`) */
  client(user?: string, opts?: ClientOptions): GitlabClient;
  /** env for the CLI: CI_API_V4_URL, GITOPS_GITLAB_TOKEN, CI_PROJECT_ID… */
  env: NodeJS.ProcessEnv;
  repoUrl: string;
  stop(): Promise<void>;
}

export async function setupGitlab(o: Partial<GitlabDoubleOptions> = {}): Promise<GitlabFixture> {
  const git = await startGitServer();
  const repoUrl = git.createRepo('group/config.git');
  pushTree(git.authUrl('group/config.git'), { 'README.md': '# config\n', 'apps/web/overlays/production/kustomization.yaml': 'images:\n- name: web\n  newTag: "1.0"\n' });
  const recorder = gitlabContractRecorder();
  const gl = await startGitlabDouble({
    git,
    projects: [{ path: PROJECT, repo: 'group/config.git', id: 42 }],
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }, { username: 'alice' }, { username: 'bob' }, { username: 'carol' }, { username: 'dave' }, { username: 'erin' }, { username: 'rita', accessLevel: 20 }],
    groups: [
      { path: 'release', members: ['bob', 'carol'] },
      { path: 'org', members: ['erin'] },
      { path: 'org/ops', members: ['dave'], parent: 'org' },
    ],
    ...o,
    onResponse: (r) => {
      recorder.onResponse(r);
      o.onResponse?.(r);
    },
  });
  const env: NodeJS.ProcessEnv = { CI_API_V4_URL: gl.apiUrl, CI_SERVER_URL: gl.url, GITOPS_GITLAB_TOKEN: gl.token, CI_PROJECT_ID: '42', CI_PROJECT_PATH: PROJECT };
  return {
    git,
    gl,
    recorder,
    env,
    repoUrl,
    client: (user, opts = {}) => gitlabClient(resolveGitlabConfig({ ...env, GITOPS_GITLAB_TOKEN: user ? gl.tokenOf(user) : gl.token }, {}), { attempts: 2, backoffMs: 10, ...opts }),
    stop: async () => {
      await gl.stop();
      await git.stop();
    },
  };
}

/**
 * One fixture for the enclosing describe (or the file): set up before its tests, and after them every response the
 * double gave checked against the contract (no violation) and stopped. Used as `const fx = useGitlab()`; the fixture's
 * members are there from the first test or hook on.
 */
export function useGitlab(o: Partial<GitlabDoubleOptions> = {}): GitlabFixture {
  let fx: GitlabFixture | undefined;
  beforeAll(async () => {
    fx = await setupGitlab(o);
  });
  afterAll(async () => {
    if (!fx) return;
    expect(fx.recorder.violations).toEqual([]);
    await fx.stop();
  });
  return new Proxy({} as GitlabFixture, {
    get(_t, key) {
      if (!fx) throw new Error(`useGitlab: ${String(key)} read before the fixture was set up (use it inside a test or a hook)`);
      const v = Reflect.get(fx, key) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(fx) : v;
    },
  });
}
