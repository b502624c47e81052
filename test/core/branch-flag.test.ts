/**
 * --branch of every command that reads or writes the config repo goes through one check (src/git/url.ts
 * configBranch / checkBranch): a name git would take as an option, a range or a ref path is a usage error (exit 2)
 * reported with the command's other problems, before anything is cloned or asked of a server. The repo is a
 * local path that does not exist: had the branch been taken, the command would have failed on the repo instead.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const REPO = join(mkdtempSync(join(tmpdir(), 'gci-branch-')), 'absent.git');
const IMAGE = `registry.example.com/team/app@sha256:${'ab'.repeat(32)}`;

const COMMANDS: Array<[string, string[]]> = [
  ['bump', ['bump', '--repo', REPO, '--dir', 'envs/staging', '--image', IMAGE]],
  ['promote', ['promote', '--repo', REPO, '--from', 'envs/staging', '--to', 'envs/production']],
  ['review up', ['review', 'up', '--repo', REPO, '--env', 'review/mr-1', '--base', 'envs/staging', '--image', IMAGE]],
  ['review down', ['review', 'down', '--repo', REPO, '--env', 'review/mr-1']],
  ['status', ['status', '--repo', REPO, '--env', 'staging']],
  ['rollback', ['rollback', '--repo', REPO, '--env', 'staging', '--to', 'a'.repeat(40)]],
  ['preview', ['preview', '--repo', REPO, '--dir', 'envs/staging', '--image', IMAGE, '--dry-run']],
];

describe('--branch is checked the same way by every config-repo command', () => {
  for (const [name, args] of COMMANDS) {
    it(`${name}: an option-like, range or ref-path branch is refused with exit 2`, async () => {
      for (const bad of ['--upload-pack=touch /tmp/x', 'main..evil', 'refs/heads/main']) {
        const r = await runCli([...args, `--branch=${bad}`], { env: { GITOPS_GITLAB_TOKEN: 'glpat-unused', ARGOCD_SERVER: '127.0.0.1:9', ARGOCD_AUTH_TOKEN: 'unused' } });
        expect(r.code, `${name} --branch ${bad}\n${r.all}`).toBe(2);
        expect(r.stderr).toContain(`--branch ${JSON.stringify(bad)} is not a valid branch name`);
      }
    });
  }
});
