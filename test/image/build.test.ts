/**
 * `image build` against the real engine and a real registry (htpasswd): a multi-stage image FROM a locally
 * made base, pushed and resolved, dotenv outputs, .dockerignore, cache reuse, failing steps (BuildKit and
 * classic, nothing left behind), a missing base image, bad credentials (exit 3) and secrecy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { runCli } from '../helpers/cli.js';
import { startRegistry, tmp, type Registry } from '../helpers/services.js';
import { docker as getDocker, expectNoSecret, makeBase, pushImage, registryEnv, writeTree } from './helpers.js';

let reg: Registry;
let d: Docker;
let dockerHost: string;
let base: string;

beforeAll(async () => {
  const x = await getDocker();
  d = x.docker;
  dockerHost = x.host;
  [reg, base] = await Promise.all([startRegistry(), makeBase(d)]);
});
afterAll(() => reg?.stop());

const SHA = 'c0ffee0123456789abcdef0123456789abcdef01';

function app(extra: Record<string, string> = {}): string {
  return writeTree(tmp('gci-app-'), {
    Dockerfile: [
      `FROM ${base} AS build`,
      'WORKDIR /src',
      'COPY . .',
      'RUN echo "files:" && find . -type f | sort && cat message.txt > /built.txt',
      `FROM ${base}`,
      'COPY --from=build /built.txt /app/built.txt',
      'CMD ["cat", "/app/built.txt"]',
      '',
    ].join('\n'),
    'message.txt': 'hello from the build\n',
    'nonce.txt': randomBytes(8).toString('hex'), // a fresh build each run: the engine is shared
    '.dockerignore': '# comments are skipped\nsecret.env\n**/*.log\nnode_modules\nkeep/\n!keep/important.txt\n',
    'secret.env': 'TOKEN=nope\n',
    'src/debug.log': 'log\n',
    'src/main.txt': 'main\n',
    'node_modules/x/index.js': 'x\n',
    'keep/important.txt': 'important\n',
    'keep/other.txt': 'other\n',
    ...extra,
  });
}

describe('image build', () => {
  it('builds a multi-stage image FROM a local base, honours .dockerignore, pushes, writes dotenv, and resolve agrees', async () => {
    const dir = app();
    const image = `${reg.host}/group/app`;
    const env = { DOCKER_HOST: dockerHost, ...registryEnv(reg), CI_REGISTRY_IMAGE: image, CI_COMMIT_SHA: SHA, CI_COMMIT_SHORT_SHA: SHA.slice(0, 8), CI_COMMIT_REF_SLUG: 'feature-x', CI_DEFAULT_BRANCH: 'main', CI_PROJECT_URL: 'https://gitlab.example.com/group/app', GITLAB_CI: 'true' };
    const dotenv = join(tmp('gci-out-'), 'build.env'); // outside the context, which must stay unchanged
    const r = await runCli(['image', 'build', '--push', '--dotenv', dotenv], { env, cwd: dir });
    expect(r.code, r.all).toBe(0);
    // BuildKit progress decoded: step names and their log lines, inside a collapsible section
    expect(r.stderr).toMatch(/section_start:\d+:gitops_docker_build[^\r]*\r\x1b\[0Kdocker build \(BuildKit\)/);
    expect(r.stderr).toMatch(/#\d+ \[build 4\/4\] RUN echo "files:"/);
    expect(r.stderr).toMatch(/#\d+ files:/);
    // no cache image yet: skipped, not an error
    expect(r.stderr).toContain(`cache: ${image}:feature-x does not exist yet; skipped`);
    // .dockerignore: ignored files are not in the context; the exception is
    const listing = r.stderr.split('\n').filter((l) => /^#\d+ \.\//.test(l)).map((l) => l.replace(/^#\d+ /, ''));
    expect(listing).toEqual(expect.arrayContaining(['./Dockerfile', './message.txt', './src/main.txt', './keep/important.txt']));
    for (const gone of ['./secret.env', './src/debug.log', './node_modules/x/index.js', './keep/other.txt']) expect(listing).not.toContain(gone);

    const out = Object.fromEntries(readFileSync(dotenv, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(out.IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.IMAGE).toBe(`${image}@${out.IMAGE_DIGEST}`);
    expect(out.IMAGE_TAG).toBe(`${image}:${SHA}`);

    // OCI labels from GitLab's variables
    const info = await d.getImage(`${image}:${SHA}`).inspect();
    expect(info.Config.Labels).toMatchObject({
      'org.opencontainers.image.source': 'https://gitlab.example.com/group/app',
      'org.opencontainers.image.revision': SHA,
      'org.opencontainers.image.version': SHA.slice(0, 8),
      'org.opencontainers.image.url': 'https://gitlab.example.com/group/app',
    });
    expect(Date.parse(info.Config.Labels['org.opencontainers.image.created'])).toBeGreaterThan(Date.now() - 600_000);

    // both default tags pushed; resolve (registry API, no engine) gives the same digest
    for (const tag of [SHA, 'feature-x']) {
      const res = await runCli(['image', 'resolve', `${image}:${tag}`], { env: registryEnv(reg) });
      expect(res.code, res.all).toBe(0);
      expect(res.stdout.trim()).toBe(out.IMAGE_DIGEST);
    }
    expectNoSecret(r.all, reg.password, reg.user);

    // an unchanged rebuild of another commit reuses the branch image as cache
    await d.getImage(`${image}:${SHA}`).remove().catch(() => undefined);
    const again = await runCli(['image', 'build', '--push'], { env: { ...env, CI_COMMIT_SHA: SHA.replace('c0', 'd1') }, cwd: dir });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toContain(`cache: ${image}:feature-x`);
    // BuildKit read the inline cache metadata from the registry, authenticated through the session
    // BuildKit interleaves its vertices' lines, so other steps may print between the import and its DONE
    expect(again.stderr).toMatch(new RegExp(`#(\\d+) importing cache manifest from ${image.replace(/[.]/g, '\\.')}:feature-x\\n(?:.*\\n)*?#\\1 DONE`));
    expect(again.stderr).toMatch(/#(\d+) \[build 4\/4\] RUN echo "files:"[^\n]*\n(?:.*\n)*?#\1 CACHED/);
  });

  it('fails a step with exit 1, shows the step and its last lines, and leaves no containers (BuildKit and classic)', async () => {
    for (const builder of ['buildkit', 'classic']) {
      const mark = randomBytes(4).toString('hex');
      const dir = writeTree(tmp('gci-fail-'), {
        Dockerfile: `FROM ${base}\nLABEL gci.test=${mark}\nRUN echo step-one-ok\nRUN echo line-before-failure-${mark} && echo second-line && exit 3\nRUN echo never\n`,
      });
      const r = await runCli(['image', 'build', '--builder', builder, '--tag', `${reg.host}/group/fail:${builder}`], { env: { DOCKER_HOST: dockerHost }, cwd: dir });
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toContain('build step failed');
      expect(r.stderr).toContain(`line-before-failure-${mark}`);
      expect(r.stderr).toMatch(/\| +second-line/); // in the error's last lines, not only in the log
      expect(r.stderr).toMatch(/RUN echo line-before-failure/);
      expect(r.stderr).toContain('code: EIMAGE_BUILD_STEP (exit 1)');
      const left = await d.listContainers({ all: true, filters: { label: [`gci.test=${mark}`] } });
      expect(left).toEqual([]);
      const dangling = await d.listImages({ all: true, filters: { label: [`gci.test=${mark}`] } });
      expect(dangling).toEqual([]);
    }
  });

  it('takes --file relative to the working directory, also from outside the context, and --target/--build-arg/--label', async () => {
    const dir = writeTree(tmp('gci-file-'), {
      'ctx/payload.txt': 'payload\n',
      'docker/Dockerfile.prod': `FROM ${base} AS one\nARG GREETING\nRUN echo "greeting=$GREETING"\nFROM one AS two\nRUN echo never-built\n`,
    });
    const tag = `${reg.host}/group/filetest:${randomBytes(3).toString('hex')}`;
    const r = await runCli(['image', 'build', '--context', 'ctx', '--file', 'docker/Dockerfile.prod', '--target', 'one', '--build-arg', `GREETING=hi-${tag.slice(-6)}`, '--label', 'team=delivery', '--tag', tag], {
      env: { DOCKER_HOST: dockerHost, CI_COMMIT_TIMESTAMP: '2026-11-20T09:30:00+00:00' },
      cwd: dir,
    });
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain(`greeting=hi-${tag.slice(-6)}`);
    expect(r.stderr).not.toContain('never-built');
    const labels = (await d.getImage(tag).inspect()).Config.Labels;
    expect(labels.team).toBe('delivery');
    // created is the commit's time when GitLab gives it, not the build's
    expect(labels['org.opencontainers.image.created']).toBe('2026-11-20T09:30:00+00:00');
    expect(r.stderr).toContain('not pushed');
  });

  it('pulls a private base image with the registry credentials (BuildKit session, classic X-Registry-Config); without them exit 3', async () => {
    const priv = `${reg.host}/base/private:${randomBytes(3).toString('hex')}`;
    await d.getImage(base).tag({ repo: priv.slice(0, priv.lastIndexOf(':')), tag: priv.slice(priv.lastIndexOf(':') + 1) });
    await pushImage(d, priv, reg);
    const dir = writeTree(tmp('gci-priv-'), { Dockerfile: `FROM ${priv}\nRUN echo on-private-base\n` });
    for (const builder of ['buildkit', 'classic']) {
      await d.getImage(priv).remove().catch(() => undefined);
      const anon = await runCli(['image', 'build', '--builder', builder, '--tag', `${reg.host}/group/priv:${builder}`], { env: { DOCKER_HOST: dockerHost }, cwd: dir });
      expect(anon.code, anon.all).toBe(3);
      expect(anon.stderr).toContain('EIMAGE_BASE_AUTH');
      const ok = await runCli(['image', 'build', '--builder', builder, '--tag', `${reg.host}/group/priv:${builder}`], { env: { DOCKER_HOST: dockerHost, ...registryEnv(reg) }, cwd: dir });
      expect(ok.code, ok.all).toBe(0);
      expectNoSecret(ok.all, reg.password, reg.user);
    }
  });

  it('a missing base image is a clear error (exit 1)', async () => {
    const dir = writeTree(tmp('gci-nobase-'), { Dockerfile: `FROM ${reg.host}/nope/base:missing\nRUN true\n` });
    const r = await runCli(['image', 'build', '--tag', `${reg.host}/group/x:1`], { env: { DOCKER_HOST: dockerHost, ...registryEnv(reg) }, cwd: dir });
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toMatch(/EIMAGE_BASE_NOT_FOUND/);
    expect(r.stderr).toContain('nope/base');
    expectNoSecret(r.all, reg.password, reg.user);
  });

  it('bad registry credentials: exit 3, and the password is nowhere in the output', async () => {
    const dir = writeTree(tmp('gci-badcred-'), { Dockerfile: `FROM ${base}\nRUN echo x > /x\n` });
    const wrong = `Wr0ng/p@ss+${randomBytes(6).toString('hex')}=`;
    const env = { DOCKER_HOST: dockerHost, CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: wrong };
    const r = await runCli(['image', 'build', '--push', '--tag', `${reg.host}/group/badcred:1`], { env, cwd: dir });
    expect(r.code, r.all).toBe(3);
    expect(r.stderr).toMatch(/EIMAGE_PUSH_AUTH|EREGISTRY_AUTH/);
    expect(r.stderr).toContain('CI_REGISTRY_USER/CI_REGISTRY_PASSWORD');
    expectNoSecret(r.all, wrong, reg.user);

    // explicit credentials from stdin; the password never on argv
    const r2 = await runCli(['image', 'resolve', '--registry-user', reg.user, '--registry-password-stdin', `${reg.host}/group/badcred:1`], { env: {}, input: `${wrong}\n` });
    expect(r2.code, r2.all).toBe(3);
    expect(r2.stderr).toContain('EREGISTRY_AUTH');
    expectNoSecret(r2.all, wrong, reg.user);

    // DOCKER_AUTH_CONFIG, as GitLab sets it
    const dac = JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${wrong}`).toString('base64') } } });
    const r3 = await runCli(['image', 'resolve', `${reg.host}/group/badcred:1`], { env: { DOCKER_AUTH_CONFIG: dac } });
    expect(r3.code, r3.all).toBe(3);
    expect(r3.stderr).toContain('DOCKER_AUTH_CONFIG');
    expectNoSecret(r3.all, wrong, reg.user);
  });
});
