/**
 * What the runner image (images/runner/Dockerfile) needs to be built here, offline: no Docker Hub, no GitHub.
 *
 * - `makeNodeBase`: a Node 20 base image assembled from this machine's own binaries (static busybox, node, git
 *   with its helpers, ssh, CA certificates and the shared libraries they load) and imported into the engine:
 *   machine recipe "node-git:slim", plus ssh. It has no apt-get, and it does not need it: it has git, ssh and CA
 *   certificates already, which the Dockerfile checks before it would install them.
 * - `kustomizeArchive`: a stand-in for kustomize's release archive. The machine has no kustomize release, but
 *   its kubectl carries kustomize v5.5.0 built in (`kubectl kustomize`, the same code as `kustomize build`). The
 *   archive holds that kubectl and a `kustomize` script that runs it; the Dockerfile extracts the archive into
 *   /usr/local/bin after checking its sha256, exactly as it does with the real release.
 * - `serveFile`: the archive over http://127.0.0.1 for the build argument KUSTOMIZE_URL (the engine fetches it).
 * - `runIn`: run a command in a container of an image (host network, so that loopback services are reachable).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { tmp } from './services.js';

export const NODE_BASE = 'gci-test/node-git:slim';

function sh(script: string, env: Record<string, string>): void {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`base image assembly failed (${r.status}):\n${r.stderr.slice(-3000)}`);
}

/** a Node 20 + git + ssh + CA certificates base image from the machine's own binaries; reused when present */
export async function makeNodeBase(docker: Docker, tag = NODE_BASE): Promise<string> {
  try {
    await docker.getImage(tag).inspect();
    return tag;
  } catch {
    /* assemble it */
  }
  const R = join(tmp('gci-rootfs-'), 'r');
  sh(
    `
mkdir -p "$R"/{bin,usr/bin,usr/local/bin,usr/lib/git-core,usr/share,etc/ssl/certs,tmp,root,lib64}
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
ln -s /bin/busybox "$R/usr/bin/env"
cp "$(readlink -f "$(command -v node)")" "$R/usr/local/bin/node"
cp /usr/bin/git "$R/usr/bin/git"
cp -a /usr/lib/git-core/. "$R/usr/lib/git-core/"
cp -a /usr/share/git-core "$R/usr/share/"
cp /usr/bin/ssh "$R/usr/bin/ssh"
cp -L /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
libs() { for f in "$@"; do ldd "$f" 2>/dev/null | awk '/=> \\//{print $3} /^\\t\\/lib/{print $1}'; done | sort -u; }
BINS=$(find "$R/usr/lib/git-core" "$R/usr/bin/git" "$R/usr/bin/ssh" "$R/usr/local/bin/node" -type f -perm -u+x)
for l in $(libs $BINS); do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
for l in $(libs $(find "$R/lib" "$R/usr/lib" -name '*.so*' -type f 2>/dev/null)); do
  [ -e "$R$l" ] || { mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; }
done
for l in /lib/x86_64-linux-gnu/libnss_dns.so.2 /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libresolv.so.2; do
  [ -e "$l" ] && { mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; } || true
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
echo 'hosts: files dns' > "$R/etc/nsswitch.conf"
`,
    { R },
  );
  const tar = spawn('tar', ['-C', R, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const body = new PassThrough();
  tar.stdout.pipe(body);
  const [repo, t] = tag.split(':');
  const stream = (await docker.importImage(body as never, { repo, tag: t, changes: ['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'CMD ["sh"]'] } as never)) as unknown as NodeJS.ReadableStream;
  await new Promise<void>((res, rej) => docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => (err ? rej(err) : out.find((o) => o.error) ? rej(new Error(out.find((o) => o.error)!.error)) : res())));
  spawnSync('rm', ['-rf', dirname(R)]);
  return tag;
}

/** the machine's real kubectl (a google-cloud-sdk "dispatcher" kubectl has the real ones beside it as kubectl.1.NN) */
export function realKubectl(): string {
  const k = realpathSync(execFileSync('sh', ['-c', 'command -v kubectl']).toString().trim());
  const v = execFileSync(k, ['version', '--client']).toString();
  const m = /Client Version: v1\.(\d+)\.\d+-dispatcher/.exec(v);
  if (m && existsSync(`${k}.1.${m[1]}`)) return `${k}.1.${m[1]}`;
  if (m) {
    const any = readdirSync(dirname(k)).filter((f) => /^kubectl\.1\.\d+$/.test(f)).sort();
    if (any.length) return join(dirname(k), any[any.length - 1]!);
  }
  return k;
}

export interface KustomizeArchive {
  file: string;
  sha256: string;
  /** the kustomize version inside (from kubectl version --client) */
  version: string;
}

/** the stand-in release archive: `kustomize` (a script running kubectl's built-in kustomize) + kubectl */
export function kustomizeArchive(): KustomizeArchive {
  const dir = tmp('gci-kustomize-');
  const src = join(dir, 'src');
  mkdirSync(src);
  const kubectl = realKubectl();
  const version = /Kustomize Version: (v[\d.]+)/.exec(execFileSync(kubectl, ['version', '--client']).toString())?.[1] ?? 'unknown';
  copyFileSync(kubectl, join(src, 'kubectl'));
  chmodSync(join(src, 'kubectl'), 0o755);
  writeFileSync(
    join(src, 'kustomize'),
    `#!/bin/sh
# test stand-in for the kustomize release binary: kustomize ${version} as built into kubectl
here=$(dirname "$0")
case "$1" in
  build) shift; exec "$here/kubectl" kustomize "$@" ;;
  version) echo "${version}" ;;
  *) echo "this stand-in runs 'kustomize build' and 'kustomize version' only" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
  const file = join(dir, 'kustomize_linux_amd64.tar.gz');
  execFileSync('tar', ['-C', src, '--owner=0', '--group=0', '-czf', file, 'kustomize', 'kubectl']);
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  return { file, sha256, version };
}

/** serve one file at http://127.0.0.1:<port>/<name> */
export async function serveFile(file: string): Promise<{ url: string; requests: number; stop(): Promise<void> }> {
  const name = file.split('/').pop()!;
  const s: { url: string; requests: number; stop(): Promise<void> } = { url: '', requests: 0, stop: async () => undefined };
  const server = http.createServer((req, res) => {
    s.requests++;
    if (req.url !== `/${name}`) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}`;
  s.stop = () => new Promise<void>((r) => server.close(() => r()));
  return s;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  all: string;
}

/** run `cmd` in a new container of `image` (host network), removed afterwards */
export async function runIn(docker: Docker, image: string, cmd: string[], opts: { env?: Record<string, string>; binds?: string[]; user?: string } = {}): Promise<RunResult> {
  const c = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(opts.user ? { User: opts.user } : {}),
    HostConfig: { NetworkMode: 'host', Binds: opts.binds ?? [] },
  });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const logs = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    // multiplexed: 8-byte headers (stream, 0, 0, 0, size32)
    let stdout = '';
    let stderr = '';
    for (let i = 0; i + 8 <= logs.length; ) {
      const size = logs.readUInt32BE(i + 4);
      const chunk = logs.subarray(i + 8, i + 8 + size).toString('utf8');
      if (logs[i] === 2) stderr += chunk;
      else stdout += chunk;
      i += 8 + size;
    }
    return { code: StatusCode, stdout, stderr, all: stdout + stderr };
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}
