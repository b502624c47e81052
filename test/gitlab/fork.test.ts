/**
 * Pure parts shared by gate and preview: forkContext(env) (src/gitlab/fork.ts), the token order of read and write
 * commands, and the MR's project for MR commands (src/gitlab/config.ts).
 */
import { describe, expect, it } from 'vitest';
import { forkContext, PARENT_PIPELINE_DOC } from '../../src/gitlab/fork.js';
import { resolveGitlabConfig, tokenVariables } from '../../src/gitlab/config.js';
import { mergeSettings, settingsFromEnv, settingsFromFile } from '../../src/gitlab/gate-settings.js';

describe('forkContext', () => {
  it('a fork pipeline: source project differs from the MR project, and the pipeline runs in the fork', () => {
    const f = forkContext({ CI_MERGE_REQUEST_PROJECT_ID: '42', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '77', CI_PROJECT_ID: '77' });
    expect(f).toMatchObject({ fork: true, runsInFork: true, mrProjectId: '42', sourceProjectId: '77' });
    expect(f.hint).toContain(PARENT_PIPELINE_DOC);
    // run in the parent project by a maintainer: a fork MR, but the parent's variables are there
    expect(forkContext({ CI_MERGE_REQUEST_PROJECT_ID: '42', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '77', CI_PROJECT_ID: '42' })).toMatchObject({ fork: true, runsInFork: false });
    expect(forkContext({ CI_MERGE_REQUEST_PROJECT_ID: '42', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '42', CI_PROJECT_ID: '42' })).toMatchObject({ fork: false, runsInFork: false });
    expect(forkContext({ CI_PROJECT_ID: '42', CI_MERGE_REQUEST_PROJECT_ID: '' })).toMatchObject({ fork: false, runsInFork: false });
  });
});

describe('tokens and the MR project', () => {
  const base = { CI_SERVER_URL: 'https://gl.example.com', CI_PROJECT_ID: '77', CI_MERGE_REQUEST_PROJECT_ID: '42' };
  it('read commands: READ > GITOPS_GITLAB_TOKEN > GITLAB_TOKEN; write commands never use the read token', () => {
    expect(tokenVariables('read')).toEqual(['GITOPS_GITLAB_READ_TOKEN', 'GITOPS_GITLAB_TOKEN', 'GITLAB_TOKEN']);
    const env = { ...base, GITOPS_GITLAB_READ_TOKEN: 'glpat-read-token-0001', GITOPS_GITLAB_TOKEN: 'glpat-write-token-0001' };
    expect(resolveGitlabConfig(env, {}, { token: 'read' })).toMatchObject({ token: 'glpat-read-token-0001', tokenSource: 'GITOPS_GITLAB_READ_TOKEN' });
    expect(resolveGitlabConfig(env, {})).toMatchObject({ token: 'glpat-write-token-0001', tokenSource: 'GITOPS_GITLAB_TOKEN' });
    expect(() => resolveGitlabConfig({ ...base, GITOPS_GITLAB_READ_TOKEN: 'glpat-read-token-0001' }, {})).toThrow(/no GitLab token: set GITOPS_GITLAB_TOKEN or GITLAB_TOKEN/);
  });
  it('MR commands address CI_MERGE_REQUEST_PROJECT_ID before CI_PROJECT_ID; --project still wins', () => {
    const env = { ...base, GITOPS_GITLAB_TOKEN: 'glpat-write-token-0001' };
    expect(resolveGitlabConfig(env, {}, { mrProject: true }).project).toBe(42);
    expect(resolveGitlabConfig(env, {}).project).toBe(77);
    expect(resolveGitlabConfig(env, { project: 'g/p' }, { mrProject: true }).project).toBe('g/p');
  });
});

describe('gate settings: the stricter wins', () => {
  it('approvals the largest, every approver list a constraint, allow-author only if nobody forbids, strict > gitlab > off', () => {
    const env = settingsFromEnv({ GITOPS_GATE_APPROVALS: '2', GITOPS_GATE_APPROVERS: '@release, bob', GITOPS_GATE_ALLOW_AUTHOR: 'false' })!;
    const file = settingsFromFile('gate:\n  approvals: 3\n  committer-check: gitlab\n', '.gitops-ci.yml on main')!;
    const eff = mergeSettings({ approvals: 1, approvers: ['carol'], allowAuthor: true, committerCheck: 'off' }, [env, file]);
    expect(eff).toMatchObject({ required: 3, approverSets: [['carol'], ['@release', 'bob']], allowAuthor: false, committerCheck: 'gitlab' });
    expect(mergeSettings({}, [])).toEqual({ missing: true });
    expect(mergeSettings({ approvals: 1 }, [])).toMatchObject({ committerCheck: 'gitlab', allowAuthor: false });
  });
  it('malformed protected settings are a usage error, never ignored', () => {
    for (const text of ['gate:\n  approvals: 0\n', 'gate: [1]\n', 'gate:\n  approvers: 5\n', 'gate:\n  typo: 1\n', 'gate:\n  committer-check: lax\n', ': : :\n  - ]']) {
      expect(() => settingsFromFile(text, 'f'), text).toThrow(/malformed/);
    }
    expect(settingsFromFile('# nothing\n', 'f')).toBeUndefined();
    expect(settingsFromFile('other: 1\n', 'f')).toBeUndefined();
    expect(() => settingsFromEnv({ GITOPS_GATE_APPROVALS: 'two' })).toThrow(/GITOPS_GATE_\*/);
  });
});
