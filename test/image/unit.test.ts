/**
 * The small pure parts of the image area: .dockerignore matching (Docker's documented examples), image
 * references, GitLab's ref slug, DOCKER_HOST/TLS options as the docker CLI reads them, credential precedence,
 * and the BuildKit status decoder.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerIgnore, listContext } from '../../src/docker/context.js';
import { formatRef, parseRef, refSlug } from '../../src/registry/ref.js';
import { dockerOptions } from '../../src/docker/engine.js';
import { credentialStore } from '../../src/registry/auth.js';
import { decodeStatus } from '../../src/docker/progress.js';
import { tmp } from '../helpers/services.js';
import { writeTree } from './helpers.js';

describe('.dockerignore (Docker rules)', () => {
  const ex = (rules: string, path: string) => DockerIgnore.parse(rules).excluded(path);
  it('follows the examples of the Dockerfile reference', () => {
    expect(ex('*/temp*', 'somedir/temporary.txt')).toBe(true);
    expect(ex('*/temp*', 'temp.txt')).toBe(false);
    expect(ex('*/temp*', 'somedir/temp')).toBe(true);
    expect(ex('*/*/temp*', 'somedir/subdir/temporary.txt')).toBe(true);
    expect(ex('*/*/temp*', 'somedir/temporary.txt')).toBe(false);
    expect(ex('temp?', 'tempa')).toBe(true);
    expect(ex('temp?', 'temp')).toBe(false);
    expect(ex('**/*.go', 'a.go')).toBe(true);
    expect(ex('**/*.go', 'x/y/z.go')).toBe(true);
    expect(ex('**/*.go', 'x/y/z.gox')).toBe(false);
    expect(ex('*.md\n!README*.md', 'README-secret.md')).toBe(false);
    expect(ex('*.md\n!README*.md', 'CHANGES.md')).toBe(true);
    expect(ex('*.md\n!README*.md\nREADME-secret.md', 'README-secret.md')).toBe(true);
    expect(ex('*.md\n!README*.md\nREADME-secret.md', 'README.md')).toBe(false);
  });
  it('excludes below a matched directory, cleans patterns, skips comments', () => {
    expect(ex('node_modules', 'node_modules/a/b.js')).toBe(true);
    expect(ex('/build/', 'build/out.o')).toBe(true);
    expect(ex('./a/../dist', 'dist/x')).toBe(true);
    expect(ex('# node_modules', 'node_modules/a')).toBe(false);
    expect(ex('  spaced.txt  ', 'spaced.txt')).toBe(true);
    expect(ex('a.txt', 'a-txt')).toBe(false); // the dot is literal
    expect(ex('[ab].txt', 'b.txt')).toBe(true);
    expect(ex('[ab].txt', 'c.txt')).toBe(false);
    expect(ex('docs\n!docs/keep.md', 'docs/keep.md')).toBe(false);
    expect(ex('docs\n!docs/keep.md', 'docs/other.md')).toBe(true);
  });
  it('always sends the Dockerfile and .dockerignore, and a Dockerfile from outside the context', async () => {
    const dir = writeTree(tmp('gci-ctx-'), { 'ctx/Dockerfile': 'FROM x\n', 'ctx/.dockerignore': '*\n!keep\n', 'ctx/keep': 'k', 'ctx/drop': 'd', 'elsewhere/Dockerfile.prod': 'FROM y\n' });
    const c = await listContext(join(dir, 'ctx'), join(dir, 'ctx/Dockerfile'));
    expect(c.files.map((f) => f.name).sort()).toEqual(['.dockerignore', 'Dockerfile', 'keep']);
    const o = await listContext(join(dir, 'ctx'), join(dir, 'elsewhere/Dockerfile.prod'));
    expect(o.dockerfile).toMatch(/^\.dockerfile\.[0-9a-f]+$/);
    expect(o.extra?.data.toString()).toBe('FROM y\n');
  });
});

describe('image references', () => {
  it('parses registries, ports, tags and digests as docker does', () => {
    expect(parseRef('127.0.0.1:5000/group/app:1.2')).toMatchObject({ registry: '127.0.0.1:5000', repository: 'group/app', tag: '1.2' });
    expect(parseRef('registry.gitlab.com/g/sub/app')).toMatchObject({ registry: 'registry.gitlab.com', repository: 'g/sub/app', tag: 'latest' });
    expect(parseRef('busybox')).toMatchObject({ registry: 'docker.io', repository: 'library/busybox' });
    expect(parseRef('localhost/app:x')).toMatchObject({ registry: 'localhost', repository: 'app' });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseRef(`r.io/app@${d}`)).toMatchObject({ digest: d, tag: undefined });
    expect(formatRef(parseRef(`r.io/app:t@${d}`))).toBe(`r.io/app:t@${d}`);
    expect(() => parseRef('R.io/App:x')).toThrow(/invalid image reference/);
  });
  it("slugs refs as GitLab's CI_COMMIT_REF_SLUG", () => {
    expect(refSlug('feature/Add_Thing')).toBe('feature-add-thing');
    expect(refSlug('-main-')).toBe('main');
    expect(refSlug('x'.repeat(80)).length).toBe(63);
  });
});

describe('DOCKER_HOST as the docker CLI reads it', () => {
  it('unix sockets, plain tcp, and tcp with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH (docker:dind)', () => {
    expect(dockerOptions({})).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerOptions({ DOCKER_HOST: 'unix:///tmp/d.sock' })).toEqual({ socketPath: '/tmp/d.sock' });
    expect(dockerOptions({ DOCKER_HOST: 'tcp://docker:2375' })).toEqual({ protocol: 'http', host: 'docker', port: 2375 });
    const certs = tmp('gci-certs-');
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, f), `PEM ${f}`);
    expect(dockerOptions({ DOCKER_HOST: 'tcp://docker:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs })).toEqual({ protocol: 'https', host: 'docker', port: 2376, ca: 'PEM ca.pem', cert: 'PEM cert.pem', key: 'PEM key.pem' });
    expect(() => dockerOptions({ DOCKER_HOST: 'tcp://docker:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' })).toThrow(/ca\.pem/);
    expect(() => dockerOptions({ DOCKER_HOST: 'ftp://x' })).toThrow(/DOCKER_HOST/);
  });
});

describe('credential precedence', () => {
  it('explicit (for the registries written to) > DOCKER_AUTH_CONFIG > CI_REGISTRY_USER/PASSWORD', () => {
    const env = {
      CI_REGISTRY: 'reg.example.com',
      CI_REGISTRY_USER: 'gitlab-ci-token',
      CI_REGISTRY_PASSWORD: 'job-token-1234',
      DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'https://other.example.com/v1/': { auth: Buffer.from('u:p4ss-word').toString('base64') } } }),
    };
    const s = credentialStore(env);
    expect(s.get('reg.example.com')).toMatchObject({ username: 'gitlab-ci-token', source: 'CI_REGISTRY_USER/CI_REGISTRY_PASSWORD' });
    expect(s.get('other.example.com')).toMatchObject({ username: 'u', password: 'p4ss-word' });
    expect(s.get('third.example.com')).toBeUndefined();
    const e = credentialStore(env, { username: 'me', password: 'explicit-pw', source: 'flags' }, ['reg.example.com']);
    expect(e.get('reg.example.com')?.username).toBe('me');
    expect(e.get('other.example.com')?.username).toBe('u');
  });
});

describe('BuildKit status decoding', () => {
  it('reads vertex names, cache state, errors and logs from the protobuf', () => {
    // a real message from dockerd 20.10: vertex "[internal] load remote build context" with started/completed
    const m = decodeStatus(Buffer.from('CokBCkdzaGEyNTY6YTJlOWU4MTRhMDI4ODdlYWRkYmZjMzc2YzFlYTI4MjdjNjIyYzYyZTU0ZDQxYTMwYjk5ODA3NjEwOTI3ZDdlNxokW2ludGVybmFsXSBsb2FkIHJlbW90ZSBidWlsZCBjb250ZXh0KgsItsqh2AYQwsnKLTILCLbKodgGEKPHozA=', 'base64'));
    expect(m.vertexes[0].name).toBe('[internal] load remote build context');
    expect(m.vertexes[0].digest).toMatch(/^sha256:/);
    expect(m.vertexes[0].completed).toBeGreaterThan(m.vertexes[0].started!);
  });
});
