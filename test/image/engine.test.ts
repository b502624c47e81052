/**
 * Which Docker engine the build uses on each kind of GitLab runner
 * (https://docs.gitlab.com/ci/docker/using_docker_build/): DOCKER_HOST when set; else the `engine` input
 * (GITOPS_ENGINE): dind (tcp://docker:2376 with the service's certificates in /certs/client), host (the mounted
 * /var/run/docker.sock), kubernetes (the dind service on the pod's localhost); auto finds one. With none, one error
 * that names the setting to change.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveEngine } from '../../src/docker/engine.js';
import { isGitopsError } from '../../src/core/errors.js';
import { tmp } from '../helpers/services.js';

const has = (...paths: string[]) => (p: string) => paths.includes(p);

function error(f: () => unknown) {
  try {
    f();
  } catch (e) {
    if (isGitopsError(e)) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('resolveEngine', () => {
  it('DOCKER_HOST set by the runner or the job wins, whatever the engine input says', () => {
    expect(resolveEngine({ DOCKER_HOST: 'tcp://10.0.0.1:2375', GITOPS_ENGINE: 'host' }, has())).toEqual({ kind: 'docker-host', vars: {} });
  });

  it('auto: the dind service (its client certificates), else the host socket (services: [])', () => {
    expect(resolveEngine({}, has('/certs/client/ca.pem', '/var/run/docker.sock'))).toEqual({
      kind: 'dind',
      vars: { DOCKER_HOST: 'tcp://docker:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs/client' },
    });
    // a runner with the host's engine: no TLS, no tcp://docker (the ca.pem error of the old template is gone)
    expect(resolveEngine({ GITOPS_ENGINE: 'auto' }, has('/var/run/docker.sock'))).toEqual({ kind: 'host', vars: { DOCKER_HOST: 'unix:///var/run/docker.sock' } });
  });

  it('dind and kubernetes read the certificates from DOCKER_CERT_PATH (real files); kubernetes reaches the service on localhost', () => {
    const dir = tmp('gci-certs-');
    mkdirSync(join(dir, 'client'));
    writeFileSync(join(dir, 'client/ca.pem'), 'x');
    const certs = join(dir, 'client');
    expect(resolveEngine({ GITOPS_ENGINE: 'dind', DOCKER_CERT_PATH: certs }).vars).toEqual({ DOCKER_HOST: 'tcp://docker:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs });
    expect(resolveEngine({ GITOPS_ENGINE: 'kubernetes', DOCKER_CERT_PATH: certs })).toMatchObject({ kind: 'kubernetes', vars: { DOCKER_HOST: 'tcp://localhost:2376' } });
  });

  it('no usable engine: one usage error (exit 2) naming the engine input and what each runner kind needs', () => {
    const none = error(() => resolveEngine({}, has()));
    expect(none.code).toBe('EIMAGE_NO_ENGINE');
    expect(none.exitCode).toBe(2);
    expect(none.hint).toMatch(/`engine` input/);
    expect(none.hint).toMatch(/`host`.*services: \[\]/);
    const dind = error(() => resolveEngine({ GITOPS_ENGINE: 'dind' }, has('/var/run/docker.sock')));
    expect(dind.code).toBe('EIMAGE_NO_ENGINE');
    expect(dind.message).toMatch(/\/certs\/client/);
    expect(dind.hint).toMatch(/volumes/);
    const k8s = error(() => resolveEngine({ GITOPS_ENGINE: 'kubernetes' }, has()));
    expect(k8s.hint).toMatch(/emptyDir/);
    const host = error(() => resolveEngine({ GITOPS_ENGINE: 'host' }, has('/certs/client/ca.pem')));
    expect(host.message).toMatch(/\/var\/run\/docker\.sock/);
    const bad = error(() => resolveEngine({ GITOPS_ENGINE: 'podman' }, has()));
    expect(bad.code).toBe('EIMAGE_DOCKER_HOST');
    expect(bad.message).toMatch(/auto, dind, host, kubernetes/);
  });
});
