/**
 * The runner image, as the release builds it and as the components run it: built from the repository root with
 * images/runner/Dockerfile through `gitops-ci image build` (the bundle), offline: the base is a Node 20 image
 * assembled from this machine's binaries (build argument BASE_IMAGE) and kustomize comes from a local archive,
 * served on loopback and checked against its sha256 (KUSTOMIZE_URL, KUSTOMIZE_SHA256; see
 * test/helpers/runner-image.ts). Then the CLI runs IN the image, as a GitLab job would: --version, a bump over
 * ssh and over https with --render, an argocd wait against the Argo CD double.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import { bareRepo, pushTree, seedLayout } from '../helpers/config-repo.js';
import { startGitServer, startSshd, tmp, useDocker, type GitServer, type SshServer } from '../helpers/services.js';
import { kustomizeArchive, makeNodeBase, runIn, serveFile, type KustomizeArchive } from '../helpers/runner-image.js';
import { listContext } from '../../src/docker/context.js';
import { startArgoCdDouble } from '../doubles/argocd/server.js';
import { IMAGE, PROD, configRepo, headOf, show } from '../bump/fixture.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const DOCKERFILE = join(root, 'images/runner/Dockerfile');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const TAG = `gci-test/runner:t${process.pid}`;

let d: Docker;
let host: string;
let base: string;
let kz: KustomizeArchive;
let kzServer: Awaited<ReturnType<typeof serveFile>>;
let built: { code: number; stderr: string; all: string };

function buildArgs(sha = kz.sha256): string[] {
  return ['--build-arg', `BASE_IMAGE=${base}`, '--build-arg', `KUSTOMIZE_URL=${kzServer.url}`, '--build-arg', `KUSTOMIZE_SHA256=${sha}`];
}

beforeAll(async () => {
  const e = await useDocker();
  host = e.host;
  d = new Docker({ socketPath: e.socketPath });
  base = await makeNodeBase(d);
  kz = kustomizeArchive();
  kzServer = await serveFile(kz.file);
  built = await runCli(['image', 'build', '--context', '.', '--file', 'images/runner/Dockerfile', '--tag', TAG, ...buildArgs()], { env: { DOCKER_HOST: host }, cwd: root, timeoutMs: 300_000 });
}, 400_000);

afterAll(async () => {
  await kzServer?.stop();
  await d
    ?.getImage(TAG)
    .remove({ force: true })
    .catch(() => undefined);
});

describe('the runner image', () => {
  it('has a build context of only what the image needs (.dockerignore)', async () => {
    const ctx = await listContext(root, DOCKERFILE);
    const files = ctx.files.filter((f) => f.type === 'file').map((f) => f.name).sort();
    // the CLI's two files (scripts/build.mjs): the bundle and the commands' code it reads beside it
    expect(files).toEqual(['.dockerignore', 'dist/gitops-ci.chunks', 'dist/gitops-ci.cjs', 'images/runner/Dockerfile']);
    expect(ctx.ignored).toBeGreaterThan(100); // node_modules, .git, src, test... stayed out
  });

  it('builds through `gitops-ci image build` from the repository root, checking kustomize against its sha256', () => {
    expect(built.code, built.all).toBe(0);
    expect(built.stderr).toMatch(/context: 4 files/);
    expect(built.stderr).toMatch(/\/tmp\/kustomize\.tar\.gz: OK/);
    expect(built.stderr).toContain(kz.version);
    expect(kzServer.requests).toBeGreaterThan(0);
  });

  it('refuses a kustomize archive that does not match its checksum', async () => {
    const r = await runCli(['image', 'build', '--context', '.', '--file', 'images/runner/Dockerfile', '--tag', `${TAG}-bad`, ...buildArgs('0'.repeat(64))], { env: { DOCKER_HOST: host }, cwd: root, timeoutMs: 300_000 });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EIMAGE_BUILD_STEP');
    expect(r.stderr).toMatch(/sha256sum.*(FAILED|did NOT match)|WARNING: 1 computed checksum did NOT match|FAILED/);
    await expect(d.getImage(`${TAG}-bad`).inspect()).rejects.toThrow();
  });

  it('holds no kustomize archive in any layer: only the binary, copied from the stage that checked it', async () => {
    expect(built.code, built.all).toBe(0);
    const layers = (await d.getImage(TAG).history()) as Array<{ CreatedBy: string; Size: number }>;
    // the ADD of the archive happened in the first stage, which is not part of the image
    expect(layers.filter((l) => /\bADD\b/.test(l.CreatedBy)), JSON.stringify(layers.map((l) => l.CreatedBy))).toEqual([]);
    const copied = layers.find((l) => /COPY \/out\/ \/usr\/local\/bin\//.test(l.CreatedBy));
    expect(copied, 'the layer of the kustomize binary').toBeDefined();
    expect(copied!.Size).toBeGreaterThan(0);
  });

  it("carries the CLI's two files in one layer, side by side (the bundle reads its chunks beside its real path)", async () => {
    expect(built.code, built.all).toBe(0);
    const layers = (await d.getImage(TAG).history()) as Array<{ CreatedBy: string; Size: number }>;
    const cli = layers.filter((l) => /COPY .*gitops-ci/.test(l.CreatedBy));
    expect(cli.map((l) => l.CreatedBy.replace(/\s+#.*$/, '').trim())).toEqual(['COPY dist/gitops-ci.cjs dist/gitops-ci.chunks /usr/local/lib/gitops-ci/']);
    expect(cli[0]!.Size).toBeGreaterThan(statSync(join(root, 'dist/gitops-ci.chunks')).size);
  });

  it('runs as a non-root user; the CLI, git, ssh and kustomize are there', async () => {
    const info = await d.getImage(TAG).inspect();
    expect(info.Config.User).toBe('10001:10001');
    const r = await runIn(d, TAG, ['sh', '-c', 'id -u; gitops-ci --version; git --version; ssh -V 2>&1; kustomize version; test -s /etc/ssl/certs/ca-certificates.crt && echo certs; gitops-ci set-image --help | head -1; gitops-ci image build --help | head -1']);
    expect(r.code, r.all).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('10001');
    expect(lines[1]).toBe(version);
    expect(lines[2]).toMatch(/^git version \d/);
    expect(lines[3]).toMatch(/^OpenSSH_/);
    expect(lines[4]).toBe(kz.version);
    expect(lines[5]).toBe('certs');
    // a command's code, read through the /usr/local/bin link from beside the real bundle
    expect(lines[6]).toMatch(/^Usage: gitops-ci set-image /);
    // dockerode loads with no node_modules in the image (docker-modem's ssh2 is a stand-in: scripts/build.mjs)
    expect(lines[7], r.all).toMatch(/^Usage: gitops-ci image build /);
  });

  describe('bump in the image', () => {
    let ssh: SshServer;
    let srv: GitServer;
    let tlsFront: { port: number; caDir: string; stop(): Promise<void> };
    beforeAll(async () => {
      ssh = await startSshd();
      srv = await startGitServer();
      tlsFront = await tlsProxy(srv.port);
    });
    afterAll(async () => {
      await ssh?.stop();
      await tlsFront?.stop();
      await srv?.stop();
    });

    it('over ssh with a deploy key, --render', async () => {
      const bare = bareRepo(seedLayout(IMAGE));
      const r = await runIn(d, TAG, ['gitops-ci', 'bump', '--repo', ssh.url(bare), '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:in-image-ssh`, '--render'], {
        env: { SSH_PRIVATE_KEY: ssh.privateKey.trim(), SSH_KNOWN_HOSTS: ssh.knownHosts },
      });
      expect(r.code, r.all).toBe(0);
      expect(show(bare, `${PROD}/kustomization.yaml`)).toContain('newTag: "in-image-ssh"');
      expect(r.all).toContain(`kustomize build ${PROD}`); // rendered with the image's kustomize
      expect(r.all).not.toContain(ssh.privateKey.split('\n')[1]!);
    });

    it('over https with a token, --render', async () => {
      const repo = configRepo(srv);
      const url = `https://127.0.0.1:${tlsFront.port}/${repo.name}`;
      const r = await runIn(d, TAG, ['gitops-ci', 'bump', '--repo', url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:in-image-https`, '--render'], {
        env: { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, GIT_SSL_CAINFO: '/ca/ca.pem' },
        binds: [`${tlsFront.caDir}:/ca:ro`],
      });
      expect(r.code, r.all).toBe(0);
      expect(show(repo.path, `${PROD}/kustomization.yaml`)).toContain('newTag: "in-image-https"');
      expect(r.all).toContain(`kustomize build ${PROD}`);
      expect(headOf(repo.path)).not.toBe(repo.head);
      expect(r.all).not.toContain(srv.password);
    });
  });

  it('argocd wait against the Argo CD double', async () => {
    const repo = bareRepo(seedLayout(IMAGE));
    const STAGING = '.kubernetes/overlays/staging';
    const argo = await startArgoCdDouble({
      repoURL: repo,
      apps: [{ name: 'shovel-staging', path: STAGING, targetRevision: 'main', destinationNamespace: 'shovel-staging' }],
      pollIntervalMs: 60_000,
      delays: { refreshMs: 40, operationStartMs: 30, syncMs: 150, reconcileMs: 60, healthyMs: 150 },
    });
    try {
      const sha = pushTree(repo, { [`${STAGING}/kustomization.yaml`]: seedLayout(IMAGE, { tag: 'waited' })[`${STAGING}/kustomization.yaml`]! }, { message: 'bump waited [skip ci]' });
      const r = await runIn(d, TAG, ['gitops-ci', 'argocd', 'wait', '--app', 'shovel-staging', '--revision', sha, '--timeout', '60s'], {
        env: { ARGOCD_SERVER: argo.url, ARGOCD_AUTH_TOKEN: argo.token },
      });
      expect(r.code, r.all).toBe(0);
      expect(r.all).toContain(sha.slice(0, 8));
      expect(r.all).not.toContain(argo.token);
    } finally {
      await argo.stop();
    }
  });
});

/** TLS in front of the plain-HTTP git server, with a self-signed certificate for 127.0.0.1 (CA file in caDir/ca.pem) */
async function tlsProxy(port: number): Promise<{ port: number; caDir: string; stop(): Promise<void> }> {
  const caDir = tmp('gci-tls-');
  const keyFile = join(tmp('gci-tlskey-'), 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', join(caDir, 'ca.pem')], { stdio: 'ignore' });
  execFileSync('chmod', ['0644', join(caDir, 'ca.pem')]);
  execFileSync('chmod', ['0755', caDir]);
  const socks = new Set<net.Socket>();
  const server = tls.createServer({ key: readFileSync(keyFile), cert: readFileSync(join(caDir, 'ca.pem')) }, (s) => {
    const up = net.connect(port, '127.0.0.1');
    socks.add(s).add(up);
    s.pipe(up).pipe(s);
    const end = () => {
      s.destroy();
      up.destroy();
    };
    s.on('error', end);
    up.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    caDir,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}
