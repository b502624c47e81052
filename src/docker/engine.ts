/**
 * Connecting to the Docker engine as the docker CLI does: DOCKER_HOST (unix:// or tcp://, default
 * unix:///var/run/docker.sock), and for tcp DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (ca.pem, cert.pem,
 * key.pem; default ~/.docker), which is what GitLab's docker:dind service sets up.
 */
import Docker from 'dockerode';
import { readFileSync } from 'node:fs';
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
      hint: 'set DOCKER_HOST (GitLab docker:dind: tcp://docker:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=/certs/client)',
    });
  }
  const os = (v.Os ?? 'linux').toLowerCase();
  return { apiVersion: v.ApiVersion, version: v.Version, os, buildkit: os === 'linux' && apiAtLeast(v.ApiVersion, '1.39') };
}
