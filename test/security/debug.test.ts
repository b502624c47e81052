/**
 * Debug switches that would bypass masking (High 7 of issue #10), and argv that is not what it seems (Low):
 * NODE_DEBUG (node prints http headers and the spawn environment itself, past the masker) is dropped by
 * running again without it; -v and --help count only where they stand as flags, not as a flag's value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startGitServer, type GitServer } from '../helpers/services.js';
import { runAbused } from './abuse.js';

const PW = `nd+pw=${Math.random().toString(36).slice(2, 10)}`;
let srv: GitServer;
beforeAll(async () => {
  srv = await startGitServer({ user: 'bot', password: PW });
});
afterAll(() => srv?.stop());

describe('NODE_DEBUG', () => {
  it('is dropped with a warning: a failing bump with NODE_DEBUG=http,net,child_process,tls shows no trace of the token', async () => {
    const url = srv.createRepo(`group/nd-${Date.now()}.git`);
    const res = await runAbused(['bump', '--repo', url, '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1', '-v'], {
      env: { NODE_DEBUG: 'http,net,child_process,tls,fetch', GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: PW },
      secret: PW,
      users: ['bot'],
    });
    expect(res.code, res.all).toBe(2); // the empty repo has no branch main
    expect(res.stderr).toContain('NODE_DEBUG is set and ignored');
    expect(res.stderr).not.toMatch(/^(HTTP|NET|CHILD_PROCESS|TLS) \d+:/m);
  });

  it('the re-run without NODE_DEBUG keeps the exit code and stdout (--version)', async () => {
    const res = await runCli(['--version'], { env: { NODE_DEBUG: 'http' } });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('flags that are values', () => {
  it('--dir --help is a --dir, not a request for help', async () => {
    const res = await runCli(['set-image', '--dir', '--help', 'app:1']);
    expect(res.code, res.all).toBe(2);
    expect(res.stdout).not.toContain('Usage:');
  });

  it('-v as the value of a flag does not turn on debug output, and is not removed from argv', async () => {
    const res = await runCli(['bump', '--message', '-v', '--dir', 'x', '--image', 'a:1', '--repo', '/nonexistent', '--branch', 'main']);
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('--message');
  });

  it('-v as a flag still turns on debug output', async () => {
    const res = await runCli(['set-image', '-v', '--dir', '/nonexistent', 'app:1']);
    expect(res.code, res.all).toBe(2);
  });
});
