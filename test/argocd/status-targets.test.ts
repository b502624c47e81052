/**
 * `status` and `rollback` read an environment through the one write-back checkout and the edit layer, so they
 * work for every kind of file that pins an image, not only kustomizations: here Helm values (the target is
 * detected as `bump --target-kind auto` detects it). Local bare repos, no Argo CD (rollback --allow-unverified).
 */
import { describe, expect, it } from 'vitest';
import { bareRepo, git, pushTree } from '../helpers/config-repo.js';
import { runCli } from '../helpers/cli.js';

const REPO = 'registry.example.com/shovel/api';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const values = (tag: string, digest: string) => `# production values
replicaCount: 2
image:
  repository: ${REPO}
  tag: "${tag}" # set by the pipeline
  digest: ${digest}
`;
const ENV = { GIT_TERMINAL_PROMPT: '0' };

describe('status and rollback on a Helm values environment', () => {
  it('status reads the tag and digest the values file pins; rollback returns it to the earlier state with a new commit that edits only those lines', async () => {
    const repo = bareRepo({ 'envs/production/values.yaml': values('1.0.0', D1), 'envs/production/Chart.yaml': 'apiVersion: v2\nname: api\nversion: 0.1.0\n' });
    const first = git(repo, ['rev-parse', 'refs/heads/main']);
    pushTree(repo, { 'envs/production/values.yaml': values('1.1.0', D2) }, { message: 'release 1.1.0' });

    const s = await runCli(['status', '--repo', repo, '--branch', 'main', '--overlays', 'envs', '--json'], { env: ENV });
    expect(s.code, s.all).toBe(0);
    const out = JSON.parse(s.stdout) as { environments: Array<{ env: string; file: string; images: Array<Record<string, unknown>> }> };
    expect(out.environments).toHaveLength(1);
    expect(out.environments[0]).toMatchObject({ env: 'production', file: 'envs/production/values.yaml' });
    expect(out.environments[0]!.images).toEqual([expect.objectContaining({ image: REPO, tag: '1.1.0', digest: D2, ref: `${REPO}:1.1.0@${D2}` })]);

    const dry = await runCli(['rollback', '--repo', repo, '--branch', 'main', '--overlays', 'envs', '--env', 'production', '--to', first, '--allow-unverified', '--dry-run'], { env: ENV });
    expect(dry.code, dry.all).toBe(0);
    expect(dry.stderr).toContain(first.slice(0, 12));
    const before = git(repo, ['rev-parse', 'refs/heads/main']);
    expect(git(repo, ['rev-parse', 'refs/heads/main'])).toBe(before);

    const r = await runCli(['rollback', '--repo', repo, '--branch', 'main', '--overlays', 'envs', '--env', 'production', '--to', first, '--allow-unverified'], { env: ENV });
    expect(r.code, r.all).toBe(0);
    const after = git(repo, ['show', 'refs/heads/main:envs/production/values.yaml']);
    // the digest moves back (promote pins by digest: the tag stays as it was, as promote leaves it)
    expect(after).toContain(`digest: ${D1}`);
    expect(after).toContain('# production values\nreplicaCount: 2\n');
    expect(after).toContain('# set by the pipeline');
    expect(git(repo, ['log', '-1', '--format=%B', 'refs/heads/main'])).toContain(`Gitops-Rollback-To: ${first}`);
  });

  it('an environment whose overlay holds no file that pins images is a usage error naming it', async () => {
    const repo = bareRepo({ 'envs/qa/README.md': 'nothing here\n' });
    const s = await runCli(['status', '--repo', repo, '--branch', 'main', '--overlays', 'envs'], { env: ENV });
    expect(s.code, s.all).toBe(2);
    expect(s.stderr).toContain('ESTATUS_OVERLAY');
    expect(s.stderr).toContain('envs/qa holds no file that pins images');
  });
});
