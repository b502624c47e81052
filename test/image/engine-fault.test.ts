/**
 * Engine faults are not bugs: a Docker engine that closes the connection, dies or restarts during a build or
 * a push is reported as such (EIMAGE_ENGINE_FAULT, exit 75): which engine (DOCKER_HOST), what was going on,
 * that its log says why; never "internal error". Everything runs on a DEDICATED engine started for this file
 * (never the machine's shared one): a unix-socket proxy in front of it cuts our connection while the engine
 * stays up, and the last test kills the engine in the middle of a build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { runCli, startCli } from '../helpers/cli.js';
import { startDockerd, startRegistry, stopDockerd, tmp, type Registry } from '../helpers/services.js';
import { BASE, expectNoSecret, makeBase, registryEnv, writeTree } from './helpers.js';

let dir: string;
let engine: { host: string; stop: () => Promise<void> };
let d: Docker;
let reg: Registry;

interface CutProxy {
  host: string;
  /** cut the connection when a response to a request matching `path` carries data matching `when` */
  cut?: { path: RegExp; when: RegExp };
  cuts: number;
  stop(): Promise<void>;
}

/** a unix-socket proxy in front of the engine's socket that can cut one connection in the middle of an answer */
async function cutProxy(upstreamSock: string): Promise<CutProxy> {
  const sock = join(dir, 'proxy.sock');
  const conns = new Set<net.Socket>();
  const p: CutProxy = { host: `unix://${sock}`, cuts: 0, stop: async () => undefined };
  const server = net.createServer((client) => {
    const up = net.connect(upstreamSock);
    conns.add(client).add(up);
    let request = '';
    let answer = '';
    client.on('data', (c: Buffer) => {
      const m = /^(?:GET|POST|HEAD|PUT|DELETE) (\S+) HTTP\/1\.1/m.exec(c.subarray(0, 4096).toString('latin1'));
      if (m) {
        request = m[1]!;
        answer = '';
      }
      up.write(c);
    });
    up.on('data', (c: Buffer) => {
      if (p.cut && p.cut.path.test(request)) {
        answer += c.toString('utf8');
        if (p.cut.when.test(answer)) {
          p.cuts++;
          p.cut = undefined;
          client.destroy();
          up.destroy();
          return;
        }
      }
      client.write(c);
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(sock, r));
  p.stop = () =>
    new Promise<void>((r) => {
      for (const c of conns) c.destroy();
      server.close(() => r());
    });
  return p;
}

const socketOf = (host: string) => host.replace(/^unix:\/\//, '');

/** what every engine-fault report must carry, and what it must not */
function expectEngineFault(r: { code: number; stderr: string; all: string }, host: string): void {
  expect(r.code, r.all).toBe(75);
  expect(r.stderr).toContain('EIMAGE_ENGINE_FAULT');
  expect(r.stderr).toContain(`the Docker engine at ${host}`);
  expect(r.stderr).toMatch(/the engine's log says why/);
  expect(r.stderr).toMatch(/not of gitops-ci/);
  expect(r.all).not.toMatch(/internal error|this is a bug/i);
}

beforeAll(async () => {
  dir = tmp('gci-ef-');
  engine = await startDockerd(join(dir, 'e'));
  d = new Docker({ socketPath: socketOf(engine.host) });
  await makeBase(d);
  reg = await startRegistry();
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (!dir) return;
  // the last test kills the engine: stop what it left (its containerd, the mounts of the build it was running,
  // its bridge), all of it this file's own engine's
  await stopDockerd(join(dir, 'e'));
  const containerdPid = join(dir, 'e', 'exec', 'containerd', 'containerd.pid');
  if (existsSync(containerdPid)) {
    try {
      process.kill(Number(readFileSync(containerdPid, 'utf8').trim()), 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(dir + '/'));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('Docker engine faults', () => {
  it('the engine closes the connection in the middle of a build: exit 75, the engine named, not an internal error', async () => {
    const proxy = await cutProxy(socketOf(engine.host));
    try {
      const ctx = writeTree(tmp('gci-ef-ctx-'), { Dockerfile: `FROM ${BASE}\nRUN echo "gci-$((40+2))-marker" && sleep 5\n` });
      proxy.cut = { path: /\/build\?/, when: /gci-42-marker/ };
      const r = await runCli(['image', 'build', '--builder', 'classic', '--no-cache', '--tag', 'gci-test/engine-fault:cut'], { env: { DOCKER_HOST: proxy.host }, cwd: ctx });
      expect(proxy.cuts).toBe(1);
      expectEngineFault(r, proxy.host);
      expect(r.stderr).toMatch(/while building \(step .*RUN echo/);
      expect(r.stderr).toMatch(/it answers again/);
    } finally {
      await proxy.stop();
    }
  });

  it('the engine closes the connection in the middle of a push: exit 75, with the tag it was pushing; no secret shown', async () => {
    const proxy = await cutProxy(socketOf(engine.host));
    try {
      const ctx = writeTree(tmp('gci-ef-push-'), { Dockerfile: `FROM ${BASE}\nRUN echo ${Date.now()} > /stamp\n` });
      const tag = `${reg.host}/fault/app:push`;
      proxy.cut = { path: /\/images\/.*\/push/, when: /./ };
      const r = await runCli(['image', 'build', '--push', '--tag', tag], { env: { ...registryEnv(reg), DOCKER_HOST: proxy.host }, cwd: ctx });
      expect(proxy.cuts).toBe(1);
      expectEngineFault(r, proxy.host);
      expect(r.stderr).toContain(`while pushing ${tag}`);
      expectNoSecret(r.all, reg.password, reg.user);
    } finally {
      await proxy.stop();
    }
  });

  it('a failing step is still the Dockerfile\'s fault (exit 1), not the engine\'s', async () => {
    const ctx = writeTree(tmp('gci-ef-step-'), { Dockerfile: `FROM ${BASE}\nRUN echo about to fail && false\n` });
    const r = await runCli(['image', 'build', '--tag', 'gci-test/engine-fault:step'], { env: { DOCKER_HOST: engine.host }, cwd: ctx });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EIMAGE_BUILD_STEP');
    expect(r.stderr).not.toContain('EIMAGE_ENGINE_FAULT');
  });

  it('the engine is killed in the middle of a BuildKit build: exit 75, "does not answer", the step it was in', async () => {
    const ctx = writeTree(tmp('gci-ef-kill-'), { Dockerfile: `FROM ${BASE}\nRUN echo "gci-$((40+2))-marker" && sleep 20\n` });
    const run = startCli(['image', 'build', '--builder', 'buildkit', '--no-cache', '--tag', 'gci-test/engine-fault:kill'], { env: { DOCKER_HOST: engine.host }, cwd: ctx });
    await run.waitForStderr(/gci-42-marker/);
    const { pid } = JSON.parse(readFileSync(join(dir, 'e', 'launcher.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGKILL');
    const r = await run.done;
    expectEngineFault(r, engine.host);
    expect(r.stderr).toMatch(/went away \(it does not answer/);
    expect(r.stderr).toMatch(/while building \(step .*RUN echo/);
    expect(existsSync(join(dir, 'e', 'dockerd.log'))).toBe(true);
  });
});
