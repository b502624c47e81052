/**
 * Connecting to the Docker engine as the docker CLI does: DOCKER_HOST (unix:// or tcp://, default
 * unix:///var/run/docker.sock), and for tcp DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (ca.pem, cert.pem,
 * key.pem; default ~/.docker), which is what GitLab's docker:dind service sets up.
 *
 * Which engine, when DOCKER_HOST is not set: GITOPS_ENGINE (the build component's `engine` input) says, or
 * `auto` finds it. Runners come three ways (https://docs.gitlab.com/ci/docker/using_docker_build/):
 * - dind: the docker:dind service, reached at tcp://docker:2376 with the client certificates the service writes
 *   to /certs/client (the runner shares that volume with the job: `volumes = ["/certs/client"]`);
 * - host: the runner mounts the host's engine socket (/var/run/docker.sock) and the job has `services: []`;
 * - kubernetes: the Kubernetes executor, where services share the pod's network: the dind service at
 *   tcp://localhost:2376, its certificates in an emptyDir volume mounted at /certs/client.
 * DOCKER_HOST, when the runner or the job sets it, always wins.
 */
import Docker from 'dockerode';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../core/errors.js';
import { engineName } from './faults.js';

export interface EngineInfo {
  apiVersion: string;
  version: string;
  os: string;
  buildkit: boolean;
}

export type EngineKind = 'dind' | 'host' | 'kubernetes' | 'docker-host';
export const ENGINES = ['auto', 'dind', 'host', 'kubernetes'] as const;

const DIND_CERTS = '/certs/client';
const HOST_SOCKET = '/var/run/docker.sock';

/** the one place that says which setting to change, per runner kind */
export const ENGINE_HINT =
  "set the build component's `engine` input for your runner: `dind` (service docker:dind, the runner sharing /certs/client), " +
  '`host` (the runner mounts /var/run/docker.sock; also set `services: []`), `kubernetes` (Kubernetes executor with the dind service and an emptyDir at /certs/client); ' +
  'or set DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for TLS)';

/**
 * The engine's connection settings: the variables to use (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and
 * which kind of engine they name. `exists` is for tests.
 */
export function resolveEngine(env: NodeJS.ProcessEnv, exists: (p: string) => boolean = existsSync): { kind: EngineKind; vars: Record<string, string> } {
  const wanted = (env.GITOPS_ENGINE || 'auto').trim();
  if (!(ENGINES as readonly string[]).includes(wanted)) {
    throw fail.usage('EIMAGE_DOCKER_HOST', `GITOPS_ENGINE ${JSON.stringify(wanted)} is not one of ${ENGINES.join(', ')}`, { where: 'GITOPS_ENGINE', hint: ENGINE_HINT });
  }
  if (env.DOCKER_HOST) return { kind: 'docker-host', vars: {} };
  const certs = env.DOCKER_CERT_PATH || DIND_CERTS;
  const tcp = (host: string): { kind: EngineKind; vars: Record<string, string> } => {
    if (!exists(join(certs, 'ca.pem'))) {
      throw fail.usage('EIMAGE_NO_ENGINE', `engine ${wanted}: no TLS client certificates at ${certs} (the docker:dind service writes them there when the runner shares that directory with the job)`, {
        where: certs,
        hint: `${wanted === 'kubernetes' ? 'mount an emptyDir volume at /certs/client in the runner\'s [[runners.kubernetes.volumes.empty_dir]]' : 'add "/certs/client" to the runner\'s volumes in config.toml'} and keep the service's DOCKER_TLS_CERTDIR=/certs; or ${ENGINE_HINT}`,
      });
    }
    return { kind: wanted === 'kubernetes' ? 'kubernetes' : 'dind', vars: { DOCKER_HOST: `tcp://${host}:2376`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs } };
  };
  if (wanted === 'dind') return tcp('docker');
  if (wanted === 'kubernetes') return tcp('localhost');
  if (wanted === 'host') {
    if (!exists(HOST_SOCKET)) throw fail.usage('EIMAGE_NO_ENGINE', `engine host: no Docker socket at ${HOST_SOCKET} (the runner does not mount the host's engine)`, { where: HOST_SOCKET, hint: ENGINE_HINT });
    return { kind: 'host', vars: { DOCKER_HOST: `unix://${HOST_SOCKET}` } };
  }
  // auto: the dind service's certificates (the default services of the build component), else the host's socket
  if (exists(join(certs, 'ca.pem'))) return { kind: 'dind', vars: { DOCKER_HOST: 'tcp://docker:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs } };
  if (exists(HOST_SOCKET)) return { kind: 'host', vars: { DOCKER_HOST: `unix://${HOST_SOCKET}` } };
  throw fail.usage('EIMAGE_NO_ENGINE', `no Docker engine: DOCKER_HOST is not set, there are no docker:dind client certificates at ${certs} and no socket at ${HOST_SOCKET}`, {
    where: 'GITOPS_ENGINE=auto',
    hint: ENGINE_HINT,
  });
}

export function dockerOptions(env: NodeJS.ProcessEnv): Docker.DockerOptions {
  const host = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const m = /^(tcp|http|https):\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(host);
  if (!m) throw fail.usage('EIMAGE_DOCKER_HOST', `DOCKER_HOST ${JSON.stringify(host)} is not unix:///path or tcp://host:port`);
  const tlsVerify = !!env.DOCKER_TLS_VERIFY && env.DOCKER_TLS_VERIFY !== '0' && env.DOCKER_TLS_VERIFY !== 'false';
  const tls = tlsVerify || (!!env.DOCKER_TLS && env.DOCKER_TLS !== '0') || m[1] === 'https';
  const port = Number(m[3] ?? (tls ? 2376 : 2375));
  if (!tls) return { protocol: 'http', host: m[2], port };
  const certPath = env.DOCKER_CERT_PATH || join(env.HOME || homedir(), '.docker');
  const read = (f: string, required: boolean): string | undefined => {
    try {
      return readFileSync(join(certPath, f), 'utf8');
    } catch (e) {
      if (required) throw fail.usage('EIMAGE_DOCKER_HOST', `cannot read ${f} for the Docker engine's TLS: ${(e as Error).message}`, { where: join(certPath, f), hint: 'set DOCKER_CERT_PATH to the directory with ca.pem, cert.pem and key.pem (docker:dind: /certs/client)' });
      return undefined;
    }
  };
  return {
    protocol: 'https',
    host: m[2],
    port,
    ca: read('ca.pem', tlsVerify),
    cert: read('cert.pem', false),
    key: read('key.pem', false),
    // DOCKER_TLS without VERIFY: encrypted but not verified, as the docker CLI's --tls
    ...(tlsVerify ? {} : { rejectUnauthorized: false }),
  } as Docker.DockerOptions;
}

export function connect(env: NodeJS.ProcessEnv): Docker {
  return new Docker(dockerOptions(env));
}

function apiAtLeast(v: string, min: string): boolean {
  const [a, b] = v.split('.').map(Number);
  const [c, d] = min.split('.').map(Number);
  return a > c || (a === c && b >= d);
}

/** version and whether the engine can build with BuildKit through the API (API ≥ 1.39 on Linux) */
export async function engineInfo(docker: Docker, where: string): Promise<EngineInfo> {
  let v: Docker.DockerVersion;
  try {
    v = await docker.version();
  } catch (e) {
    throw fail.transient('EIMAGE_ENGINE', `cannot reach the Docker engine at ${engineName({ DOCKER_HOST: where })}: ${(e as Error).message}`, {
      where: engineName({ DOCKER_HOST: where }),
      hint: `check that the engine runs (with docker:dind, the service's log: CI_DEBUG_SERVICES=true); if this is the wrong engine, ${ENGINE_HINT}`,
    });
  }
  const os = (v.Os ?? 'linux').toLowerCase();
  return { apiVersion: v.ApiVersion, version: v.Version, os, buildkit: os === 'linux' && apiAtLeast(v.ApiVersion, '1.39') };
}
