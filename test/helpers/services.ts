/**
 * The harness of real services for tests, the demo and the benches. Each service listens on a random
 * loopback port and is stopped by its `stop()`. dockerd is the exception: it is shared by the whole test
 * run (started on first use, stopped by global-setup's teardown), and reused from DOCKER_HOST when set.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function tmp(prefix = 'gci-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, proc?: ChildProcess, logFile?: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc && proc.exitCode !== null) break;
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  const log = logFile && existsSync(logFile) ? `\n${readFileSync(logFile, 'utf8').slice(-2000)}` : '';
  throw new Error(`${what} did not become ready${proc?.exitCode != null ? ` (exited with ${proc.exitCode})` : ''}${log}`);
}

// ---------------------------------------------------------------------------------------------- the run's record

/**
 * In a test run (vitest, with the run dir that scripts/run-tests.mjs or global-setup made), every service keeps
 * its log in `<run dir>/logs/` and is listed in `<run dir>/services.jsonl`, so that the log outlives the
 * service's own directory (removed by its stop()) and scripts/run-tests.mjs can say, when a test fails, which
 * services ran and where their logs are. Outside a test run (the demo, the benches) logs stay beside the service.
 */
export interface ServiceRecord {
  service: 'dockerd' | 'docker-registry' | 'git smart-HTTP' | 'sshd';
  /** where it listens: a URL, host:port or socket */
  at: string;
  /** its log file; absent for an engine this run did not start */
  log?: string;
  pid?: number;
  note?: string;
  /** the test file that started it (repository-relative), when known */
  file?: string;
}

function testRunDir(): string | undefined {
  return process.env.VITEST && process.env.GITOPS_TEST_RUN_DIR ? process.env.GITOPS_TEST_RUN_DIR : undefined;
}

let logSeq = 0;
/** the log file of a service called `name`: in the run dir's logs/ during a test run, else in `ownDir` */
function logPath(name: string, ownDir: string): string {
  const run = testRunDir();
  if (!run) return join(ownDir, `${name}.log`);
  mkdirSync(join(run, 'logs'), { recursive: true });
  return join(run, 'logs', `${name}-${process.pid}-${++logSeq}.log`);
}

function recordService(r: ServiceRecord): void {
  const run = testRunDir();
  if (!run) return;
  // vitest's worker state names the test file this worker runs (internal, hence optional)
  const file = (globalThis as { __vitest_worker__?: { filepath?: string } }).__vitest_worker__?.filepath;
  appendFileSync(join(run, 'services.jsonl'), JSON.stringify({ ...r, file: file ? relative(process.cwd(), file) : undefined }) + '\n');
}

function httpStatus(url: string, opts: { socketPath?: string; insecure?: boolean } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { socketPath: opts.socketPath, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------- dockerd

export interface DockerInfo {
  /** e.g. unix:///tmp/gci-run-x/d/docker.sock */
  host: string;
  socketPath: string;
}

function runDir(): string {
  let d = process.env.GITOPS_TEST_RUN_DIR;
  if (!d) {
    d = tmp('gci-run-');
    process.env.GITOPS_TEST_RUN_DIR = d;
  }
  return d;
}

function socketOf(host: string): string {
  return host.replace(/^unix:\/\//, '');
}

/**
 * A Docker engine for tests that need one. Uses DOCKER_HOST when set; else the machine's engine at
 * /var/run/docker.sock when it answers; else starts dockerd once per test run (the first test file to ask
 * starts it, the others wait for it).
 */
export async function useDocker(): Promise<DockerInfo> {
  if (process.env.DOCKER_HOST) {
    recordService({ service: 'dockerd', at: process.env.DOCKER_HOST, note: 'reused from DOCKER_HOST, not started by this run: its log is where that engine logs' });
    return { host: process.env.DOCKER_HOST, socketPath: socketOf(process.env.DOCKER_HOST) };
  }
  if (existsSync('/var/run/docker.sock') && (await httpStatus('http://d/_ping', { socketPath: '/var/run/docker.sock' }).catch(() => 0)) === 200) {
    recordService({ service: 'dockerd', at: 'unix:///var/run/docker.sock', note: "the machine's engine, reused, not started by this run: its log is in journalctl -u docker or /var/log/docker.log" });
    return { host: 'unix:///var/run/docker.sock', socketPath: '/var/run/docker.sock' };
  }
  const dir = join(runDir(), 'd');
  const sock = join(dir, 'docker.sock');
  const ready = join(runDir(), 'docker.ready');
  let owner = false;
  try {
    mkdirSync(join(runDir(), 'docker.lock'));
    owner = true;
  } catch {
    owner = false;
  }
  if (owner) {
    await startDockerd(dir);
    writeFileSync(ready, `unix://${sock}`);
  } else {
    await waitFor('shared dockerd', () => existsSync(ready), 90_000);
  }
  return { host: `unix://${sock}`, socketPath: sock };
}

export async function startDockerd(dir: string): Promise<{ host: string; stop: () => Promise<void> }> {
  mkdirSync(dir, { recursive: true });
  const sock = join(dir, 'docker.sock');
  const args = ['--host', `unix://${sock}`, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid')];
  // A second engine on a machine whose docker0 belongs to another dockerd needs its own bridge (never
  // --bridge=none: dockerd 20.10 deletes docker0 then).
  let bridge: string | undefined;
  let otherDockerd = false;
  try {
    otherDockerd = execFileSync('pgrep', ['-x', 'dockerd']).toString().trim().length > 0;
  } catch {
    otherDockerd = false;
  }
  if (otherDockerd) {
    bridge = `gci${process.pid % 100000}`;
    const net = 200 + (process.pid % 50);
    execFileSync('sh', ['-c', `ip link add ${bridge} type bridge && ip addr add 172.31.${net}.1/24 dev ${bridge} && ip link set ${bridge} up`]);
    args.push(`--bridge=${bridge}`, '--iptables=false');
  }
  // beside the engine (tests read it there); the shared engine's dir is in the run dir, kept on a failure
  const logFile = join(dir, 'dockerd.log');
  const out = openSync(logFile, 'a');
  const p = spawn('dockerd', args, { stdio: ['ignore', out, out], detached: true });
  p.unref();
  writeFileSync(join(dir, 'launcher.json'), JSON.stringify({ pid: p.pid, bridge }));
  recordService({ service: 'dockerd', at: `unix://${sock}`, log: logFile, pid: p.pid });
  await waitFor('dockerd', async () => (await httpStatus('http://d/_ping', { socketPath: sock })) === 200, 60_000, p, logFile);
  return { host: `unix://${sock}`, stop: () => stopDockerd(dir) };
}

export async function stopDockerd(dir: string): Promise<void> {
  const meta = join(dir, 'launcher.json');
  if (!existsSync(meta)) return;
  const { pid, bridge } = JSON.parse(readFileSync(meta, 'utf8')) as { pid: number; bridge?: string };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
      await sleep(50);
    } catch {
      break;
    }
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  try {
    execFileSync('sh', ['-c', `umount ${join(dir, 'exec/netns/default')} 2>/dev/null; true`]);
    if (bridge) execFileSync('sh', ['-c', `ip link del ${bridge} 2>/dev/null; true`]);
  } catch {
    /* best effort */
  }
  rmSync(meta, { force: true });
}

/** global-setup teardown: stop what this run started lazily */
export async function stopSharedServices(dir: string): Promise<void> {
  await stopDockerd(join(dir, 'd'));
}

// ---------------------------------------------------------------------------------------------- registry

export interface Registry {
  /** host:port, as used in image references */
  host: string;
  /** http(s)://host:port */
  url: string;
  user: string;
  password: string;
  tls: boolean;
  /** PEM CA certificate (self-signed) when tls */
  caFile?: string;
  dir: string;
  stop(): Promise<void>;
}

function htpasswd(user: string, password: string): string {
  // bcrypt is the only hash registry 2.8 accepts; the password goes on stdin, not the command line
  return execFileSync('htpasswd', ['-iBn', user], { input: password }).toString();
}

export async function startRegistry(opts: { tls?: boolean; user?: string; password?: string } = {}): Promise<Registry> {
  const user = opts.user ?? 'reguser';
  const password = opts.password ?? `regpass-${Math.random().toString(36).slice(2, 10)}`;
  const dir = tmp('gci-reg-');
  writeFileSync(join(dir, 'htpasswd'), htpasswd(user, password));
  let tlsBlock = '';
  if (opts.tls) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'reg.key'), '-out', join(dir, 'reg.crt')], { stdio: 'ignore' });
    tlsBlock = `  tls:\n    certificate: ${dir}/reg.crt\n    key: ${dir}/reg.key\n`;
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(
      join(dir, 'config.yml'),
      `version: 0.1\nlog: { level: warn, accesslog: { disabled: true } }\nstorage:\n  filesystem: { rootdirectory: ${dir}/data }\n  delete: { enabled: true }\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: s-${port}\n${tlsBlock}auth:\n  htpasswd:\n    realm: gci-registry\n    path: ${dir}/htpasswd\n`,
    );
    const logFile = logPath('registry', dir);
    const out = openSync(logFile, 'w');
    const p = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', out, out] });
    const scheme = opts.tls ? 'https' : 'http';
    recordService({ service: 'docker-registry', at: `${scheme}://127.0.0.1:${port}`, log: logFile, pid: p.pid });
    try {
      await waitFor(
        'docker-registry',
        async () => {
          if (opts.tls) {
            const r = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(dir, 'reg.crt'), `https://127.0.0.1:${port}/v2/`]).toString();
            return r === '401';
          }
          return (await httpStatus(`http://127.0.0.1:${port}/v2/`)) === 401;
        },
        15_000,
        p,
        logFile,
      );
    } catch (e) {
      p.kill('SIGKILL');
      if (attempt < 4) continue;
      throw e;
    }
    return {
      host: `127.0.0.1:${port}`,
      url: `${scheme}://127.0.0.1:${port}`,
      user,
      password,
      tls: !!opts.tls,
      caFile: opts.tls ? join(dir, 'reg.crt') : undefined,
      dir,
      stop: async () => {
        p.kill('SIGTERM');
        await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------------------------- git over smart HTTP

export interface GitServer {
  /** http://127.0.0.1:port (no credentials) */
  url: string;
  port: number;
  root: string;
  user: string;
  password: string;
  /** creates a bare repo `name` (e.g. 'group/config.git') with initial branch `branch`; returns its URL without credentials */
  createRepo(name: string, opts?: { branch?: string }): string;
  /** URL with credentials in it */
  authUrl(name: string): string;
  /** path of the bare repo on disk */
  repoPath(name: string): string;
  /** requests seen (method + path + user), for tests that count round trips; the Git LFS locks API's with their answer */
  readonly requests: Array<{ method: string; path: string; user: string; status?: number; response?: unknown }>;
  stop(): Promise<void>;
}

export async function startGitServer(
  opts: {
    user?: string;
    password?: string;
    users?: Record<string, string>;
    readOnlyUsers?: string[];
    /** GitLab's Git LFS locking API beside each repo (test/helpers/lfs-locks.mjs): on (GitLab's default), off for the project (403), off on the server (501) */
    lfs?: 'on' | 'project-off' | 'server-off';
    /** users with push access who are not Maintainers (cannot force-unlock another user's LFS lock) */
    developers?: string[];
    /** the first N lock creates are rate limited (429, Retry-After: 1), as GitLab's rate limits answer */
    lfsThrottle?: number;
  } = {},
): Promise<GitServer> {
  const user = opts.user ?? 'gituser';
  const password = opts.password ?? `gitpass-${Math.random().toString(36).slice(2, 10)}`;
  const root = tmp('gci-git-');
  const meta = tmp('gci-gitsrv-');
  writeFileSync(join(meta, 'users.json'), JSON.stringify({ [user]: password, ...(opts.users ?? {}) }), { mode: 0o600 });
  const logFile = join(meta, 'requests.log');
  writeFileSync(logFile, '');
  writeFileSync(join(meta, 'read-only.json'), JSON.stringify(opts.readOnlyUsers ?? []));
  const script = fileURLToPath(new URL('./git-http-server.mjs', import.meta.url));
  // its stderr (and git http-backend's) goes to its log; requests.log is the record tests count round trips in
  const errLog = logPath('git-http', meta);
  const env = { ...process.env, GITOPS_TEST_LFS: opts.lfs ?? 'on', GITOPS_TEST_LFS_DEVELOPERS: JSON.stringify(opts.developers ?? []), GITOPS_TEST_LFS_THROTTLE: String(opts.lfsThrottle ?? 0) };
  const p = spawn(process.execPath, [script, root, join(meta, 'users.json'), logFile, join(meta, 'read-only.json')], { stdio: ['pipe', 'pipe', openSync(errLog, 'a')], env });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    p.stdout!.on('data', (d) => {
      buf += d;
      const m = /listening (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    p.once('exit', (c) => reject(new Error(`git server exited with ${c}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  recordService({ service: 'git smart-HTTP', at: base, log: errLog, pid: p.pid });
  const repoPath = (name: string) => join(root, name);
  return {
    url: base,
    port,
    root,
    user,
    password,
    get requests() {
      return readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { method: string; path: string; user: string; status?: number; response?: unknown });
    },
    repoPath,
    createRepo(name, o = {}) {
      const p = repoPath(name);
      mkdirSync(p, { recursive: true });
      execFileSync('git', ['init', '-q', '--bare', '-b', o.branch ?? 'main', p]);
      // http.receivepack, and as GitLab does: serve partial clones, accept push options, and no `git gc --auto`
      // after every push (GitLab runs its own housekeeping). Appended to the repo's config file as `git config`
      // would write them (one process per repo instead of four: suites make many repos)
      appendFileSync(join(p, 'config'), '[http]\n\treceivepack = true\n[uploadpack]\n\tallowFilter = true\n[receive]\n\tadvertisePushOptions = true\n\tautogc = false\n');
      return `${base}/${name}`;
    },
    authUrl(name) {
      return `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${name}`;
    },
    stop: async () => {
      p.kill('SIGTERM');
      await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
      rmSync(root, { recursive: true, force: true });
      rmSync(meta, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------- sshd with a deploy key

export interface SshServer {
  port: number;
  /** the deploy key (OpenSSH private key text) */
  privateKey: string;
  privateKeyFile: string;
  /** a known_hosts line for the server */
  knownHosts: string;
  /** ssh URL of a repo path on disk: ssh://git@127.0.0.1:port/abs/path.git */
  url(repoPath: string): string;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<SshServer> {
  const dir = tmp('gci-ssh-');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deploy-key', '-f', join(dir, 'deploy_key')]);
  const pub = readFileSync(join(dir, 'deploy_key.pub'), 'utf8').trim();
  writeFileSync(join(dir, 'authorized_keys'), `restrict,command="/usr/bin/git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"" ${pub}\n`);
  chmodSync(join(dir, 'authorized_keys'), 0o600);
  mkdirSync('/run/sshd', { recursive: true });
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${dir}/host_ed25519`,
        `PidFile ${dir}/sshd.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        '',
      ].join('\n'),
    );
    const logFile = logPath('sshd', dir);
    const p = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, 'sshd_config'), '-E', logFile], { stdio: 'ignore' });
    recordService({ service: 'sshd', at: `ssh://127.0.0.1:${port}`, log: logFile, pid: p.pid });
    try {
      await waitFor(
        'sshd',
        () =>
          new Promise<boolean>((resolve) => {
            const s = netConnect(port, '127.0.0.1');
            s.once('data', () => {
              s.destroy();
              resolve(true);
            });
            s.once('error', () => resolve(false));
          }),
        10_000,
        p,
        logFile,
      );
    } catch (e) {
      p.kill('SIGKILL');
      if (attempt < 4) continue;
      throw e;
    }
    const hostPub = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    return {
      port,
      privateKey: readFileSync(join(dir, 'deploy_key'), 'utf8'),
      privateKeyFile: join(dir, 'deploy_key'),
      knownHosts: `[127.0.0.1]:${port} ${hostPub}`,
      url: (repoPath) => `ssh://root@127.0.0.1:${port}${repoPath}`,
      stop: async () => {
        p.kill('SIGTERM');
        await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('unreachable');
}
