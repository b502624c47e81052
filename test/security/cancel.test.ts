/**
 * A cancelled job leaves nothing behind (High 6 of issue #10): SIGTERM (a GitLab cancel or job timeout) or
 * SIGINT during an ssh bump, caught while the push hangs in the server's pre-receive hook (real sshd): the
 * CLI exits 143/130, the deploy key and the clone are gone from TMPDIR, no git/ssh child of ours is left
 * (none carries our TMPDIR in its environment), and the remote is unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI } from '../helpers/cli.js';
import { bareRepo, seedLayout } from '../helpers/config-repo.js';
import { startSshd, tmp, type SshServer } from '../helpers/services.js';
import { headOf, installHook, PROD } from '../bump/fixture.js';

let ssh: SshServer;
beforeAll(async () => {
  ssh = await startSshd();
});
afterAll(() => ssh?.stop());

/** pids of live processes whose environment holds `marker` (our children inherit TMPDIR) */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(marker)) out.push(Number(d));
    } catch {
      /* gone, or not ours */
    }
  }
  return out;
}

async function until(what: string, f: () => boolean, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('a silent server', () => {
  for (const scheme of ['ssh', 'http'] as const) {
    it(`bump to a${scheme === 'ssh' ? 'n ssh' : 'n http'} server that accepts and never speaks ends at --timeout (exit 4), leaving no ${scheme === 'ssh' ? 'ssh' : 'git-remote-http (which holds the password)'} or git behind`, async () => {
    const net = await import('node:net');
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const tmpdir = tmp('gci-silent-tmp-');
    try {
      const p = spawn(process.execPath, [CLI, 'bump', '--repo', scheme === 'ssh' ? `ssh://git@127.0.0.1:${port}/x.git` : `http://127.0.0.1:${port}/x.git`, '--branch', 'main', '--dir', PROD, '--image', 'app:1', '--timeout', '3'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmpdir, SSH_PRIVATE_KEY: ssh.privateKey, SSH_KNOWN_HOSTS: ssh.knownHosts, GITOPS_GIT_TOKEN: 'silent-server-token-1234' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
      expect(code, stderr).toBe(4);
      expect(stderr).toContain('EGIT_TIMEOUT');
      await until('the children to be gone', () => processesWith(`TMPDIR=${tmpdir}`).length === 0, 5_000);
      expect(readdirSync(tmpdir)).toEqual([]);
    } finally {
      silent.close();
    }
  });
  }
});

describe('GIT_SSH_COMMAND quoting', () => {
  it('a HOME holding $(…) is not run by the shell that runs ssh (SSH_KNOWN_HOSTS unset)', async () => {
    const base = tmp('gci-home-');
    const marker = join(base, 'pwned');
    const home = join(base, `h$(touch ${marker})`);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(home, { recursive: true });
    const bare = bareRepo(seedLayout());
    const p = spawn(process.execPath, [CLI, 'bump', '--repo', ssh.url(bare), '--branch', 'main', '--dir', PROD, '--image', 'app:q', '--timeout', '30'], {
      env: { PATH: process.env.PATH, HOME: home, TMPDIR: tmp('gci-q-tmp-'), SSH_PRIVATE_KEY: ssh.privateKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    // the host is unknown to the (empty) known_hosts files: refused, as it should be
    expect(code, stderr).toBe(3);
    expect(stderr).toContain('EGIT_HOST_KEY');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('cancel', () => {
  for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`${sig} during an ssh push: exit ${code}, no key file, no clone, no orphan git/ssh, remote unchanged`, async () => {
      const bare = bareRepo(seedLayout());
      const before = headOf(bare);
      const mark = join(tmp('gci-hook-'), 'in-hook');
      // the push hangs in the hook until the test is done
      installHook(bare, 'pre-receive', `echo $$ > ${mark}; sleep 20; exit 1`);
      const tmpdir = tmp('gci-cancel-tmp-');
      const p = spawn(process.execPath, [CLI, 'bump', '--repo', ssh.url(bare), '--branch', 'main', '--dir', PROD, '--image', 'app:cancel', '--timeout', '120'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmpdir, SSH_PRIVATE_KEY: ssh.privateKey, SSH_KNOWN_HOSTS: ssh.knownHosts },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => p.on('close', (c) => r(c)));
      try {
        await until('the push to reach the hook', () => existsSync(mark));
        // mid-way: the key file and the clone exist, git and ssh run
        expect(readdirSync(tmpdir).some((n) => n.startsWith('gitops-ci-ssh-'))).toBe(true);
        expect(readdirSync(tmpdir).some((n) => n.startsWith('gitops-ci-bump-'))).toBe(true);
        expect(processesWith(`TMPDIR=${tmpdir}`).length).toBeGreaterThan(1);
        p.kill(sig);
        const c = await exited;
        expect(c, stderr).toBe(code);
        expect(stderr).toContain(`cancelled by ${sig}`);
        expect(readdirSync(tmpdir)).toEqual([]);
        await until('the children to be gone', () => processesWith(`TMPDIR=${tmpdir}`).length === 0, 5_000);
        expect(headOf(bare)).toBe(before);
      } finally {
        p.kill('SIGKILL');
        try {
          process.kill(Number(readFileSync(mark, 'utf8').trim()), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
});
