/**
 * Proves each service of the harness works for real: git over smart HTTP with auth, sshd with a deploy key,
 * the config-repo builder, and dockerd + registry (an image built FROM scratch, pushed and pulled back).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startGitServer, startRegistry, startSshd, tmp, useDocker, type GitServer, type Registry } from '../helpers/services.js';
import { bareRepo, git, pushTree, seedLayout } from '../helpers/config-repo.js';

describe('git smart-HTTP server', () => {
  let srv: GitServer;
  beforeAll(async () => {
    srv = await startGitServer();
  });
  afterAll(() => srv.stop());

  it('clones and pushes with basic auth, and refuses bad credentials', () => {
    srv.createRepo('group/config.git');
    const sha = pushTree(srv.authUrl('group/config.git'), { 'README.md': 'hello\n' });
    const dir = tmp();
    git(dir, ['clone', '-q', srv.authUrl('group/config.git'), 'c']);
    expect(git(join(dir, 'c'), ['rev-parse', 'HEAD'])).toBe(sha);
    expect(readFileSync(join(dir, 'c', 'README.md'), 'utf8')).toBe('hello\n');
    const bad = srv.authUrl('group/config.git').replace(encodeURIComponent(srv.password), 'wrong');
    expect(() => git(dir, ['ls-remote', bad])).toThrow(/Authentication failed/);
    expect(() => git(dir, ['ls-remote', `${srv.url}/group/config.git`])).toThrow(/could not read Username/);
  });
});

describe('sshd with a deploy key', () => {
  it('clones over ssh with the key and a pinned host key', async () => {
    const ssh = await startSshd();
    try {
      const repo = bareRepo({ 'a.txt': 'over ssh\n' });
      const dir = tmp();
      writeFileSync(join(dir, 'known_hosts'), ssh.knownHosts + '\n');
      const sshCmd = `ssh -i ${ssh.privateKeyFile} -o IdentitiesOnly=yes -o UserKnownHostsFile=${join(dir, 'known_hosts')} -o StrictHostKeyChecking=yes`;
      git(dir, ['clone', '-q', ssh.url(repo), 'c'], { GIT_SSH_COMMAND: sshCmd });
      expect(readFileSync(join(dir, 'c', 'a.txt'), 'utf8')).toBe('over ssh\n');
      // an unknown host key is refused, not trusted on first use
      writeFileSync(join(dir, 'empty_known_hosts'), '');
      const strict = `ssh -i ${ssh.privateKeyFile} -o IdentitiesOnly=yes -o UserKnownHostsFile=${join(dir, 'empty_known_hosts')} -o StrictHostKeyChecking=yes`;
      expect(() => git(dir, ['ls-remote', ssh.url(repo)], { GIT_SSH_COMMAND: strict })).toThrow(/Host key verification failed/);
    } finally {
      await ssh.stop();
    }
  });
});

describe('config repo builder', () => {
  it('lays out the seed overlays, which kustomize renders', () => {
    const repo = bareRepo(seedLayout('registry.example.com/shovel/app'));
    const dir = tmp();
    git(dir, ['clone', '-q', repo, 'c']);
    const out = execFileSync('kubectl', ['kustomize', join(dir, 'c/.kubernetes/overlays/production')]).toString();
    expect(out).toContain('image: registry.example.com/shovel/app:3f2a9c1');
    expect(out).toContain('name: prod-shovel');
    expect(out).toContain('replicas: 3');
  });
});

describe('dockerd and registry', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(() => reg?.stop());

  it('builds an image FROM scratch, pushes it with auth and pulls it back', async () => {
    const d = await useDocker();
    const docker = new Docker({ socketPath: d.socketPath });
    const ctx = tmp();
    mkdirSync(join(ctx, 'bin'));
    copyFileSync('/bin/busybox', join(ctx, 'busybox'));
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox","echo","hi"]\n');
    const tag = `${reg.host}/harness/scratch:t1`;
    const follow = (s: NodeJS.ReadableStream) =>
      new Promise<Array<Record<string, unknown>>>((res, rej) =>
        docker.modem.followProgress(s, (err: Error | null, out: Array<Record<string, unknown>>) => {
          if (err) return rej(err);
          const e = out.find((o) => o.error);
          return e ? rej(new Error(String(e.error))) : res(out);
        }),
      );
    await follow(await docker.buildImage({ context: ctx, src: ['Dockerfile', 'busybox'] }, { t: tag }));
    const auth = { username: reg.user, password: reg.password, serveraddress: reg.host };
    const pushed = await follow(await docker.getImage(tag).push({ authconfig: auth }));
    const digest = pushed.map((o) => (o.aux as { Digest?: string } | undefined)?.Digest).find(Boolean);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    await docker.getImage(tag).remove();
    await follow(await docker.pull(tag, { authconfig: auth }));
    const info = await docker.getImage(tag).inspect();
    expect(info.RepoDigests).toContain(`${reg.host}/harness/scratch@${digest}`);
    // without credentials the registry refuses
    await expect(follow(await docker.getImage(tag).push({ authconfig: { ...auth, password: 'nope' } }))).rejects.toThrow(/unauthorized|authentication/i);
    await docker.getImage(tag).remove();
  });

  it('serves TLS with a self-signed CA', async () => {
    const tls = await startRegistry({ tls: true });
    try {
      const code = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', tls.caFile!, '-u', `${tls.user}:${tls.password}`, `${tls.url}/v2/`]).toString();
      expect(code).toBe('200');
    } finally {
      await tls.stop();
    }
  });
});
