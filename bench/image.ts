/**
 * bench/image.ts — `npx tsx bench/image.ts`
 *
 * Side by side, in one run, on one dockerd and one registry started here through the test harness:
 *   1. an unchanged rebuild + push in a fresh CI job (engine state reset: images removed, build cache pruned):
 *      ours (`gitops-ci image build --push`, through the bundle, BuildKit + registry cache) against the seed's
 *      Makefile (`docker build . --no-cache --force-rm` then `docker push`, with /usr/bin/docker, the 20.10 CLI
 *      the seed's docker:20-dind job has; without DOCKER_BUILDKIT that is the classic builder);
 *   2. promoting the image to another repository and to another registry: ours (`gitops-ci image copy`)
 *      against `docker pull` + `docker tag` + `docker push` (fresh engine state too).
 * The image has three layers of 40 MB of random data (incompressible) over a busybox base pushed to the
 * registry first.
 *   3. the runner image (images/runner/Dockerfile) built through `gitops-ci image build` from the repository
 *      root, offline as the tests build it (test/helpers/runner-image.ts): its build context, its size, and what
 *      each of its steps adds over its base.
 * Output: a table on stdout, also written to bench/results/image.txt.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import Docker from 'dockerode';
import { $ } from 'zx';
import { startDockerd, startRegistry, tmp } from '../test/helpers/services.js';
import { kustomizeArchive, makeNodeBase, realKubectl, serveFile } from '../test/helpers/runner-image.js';
import { listContext } from '../src/docker/context.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist/gitops-ci.cjs');
const SEED_DOCKER = '/usr/bin/docker';
const LAYER_MB = 40;

/** a timed command: spawned directly (no shell in between, unlike zx's $), so that the time is the command's own */
function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, cwd?: string): { secs: number; out: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${(r.stdout ?? '').slice(-2000)}\n${(r.stderr ?? '').slice(-2000)}`);
  return { secs, out: `${r.stdout}${r.stderr}` };
}

async function main(): Promise<void> {
  await $({ stdio: 'inherit' })`${process.execPath} ${join(ROOT, 'scripts/build.mjs')}`;
  const work = tmp('gci-bench-img-');
  const engine = await startDockerd(join(work, 'd'));
  const reg = await startRegistry();
  const reg2 = await startRegistry({ user: 'other', password: reg.password + 'x' });
  const docker = new Docker({ socketPath: engine.host.replace('unix://', '') });
  const dockerEnv = { DOCKER_HOST: engine.host, DOCKER_CONFIG: join(work, 'dockercfg') };
  const lines: string[] = [];
  try {
    // docker CLI login for the plain path (password on stdin here; the seed passes it with -p)
    mkdirSync(dockerEnv.DOCKER_CONFIG, { recursive: true });
    sh(SEED_DOCKER, ['login', '-u', reg.user, '--password-stdin', reg.host], dockerEnv, reg.password);
    sh(SEED_DOCKER, ['login', '-u', reg2.user, '--password-stdin', reg2.host], dockerEnv, reg2.password);

    // base image, pushed to the registry (a fresh CI engine pulls it from there)
    const bb = join(work, 'bb');
    mkdirSync(bb);
    copyFileSync('/bin/busybox', join(bb, 'busybox'));
    writeFileSync(join(bb, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nCMD ["/bin/sh"]\n');
    const base = `${reg.host}/base/busybox:1`;
    sh(SEED_DOCKER, ['build', '-q', '-t', base, bb], dockerEnv);
    sh(SEED_DOCKER, ['push', base], dockerEnv);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'Dockerfile'),
      `FROM ${base}\n` + [1, 2, 3].map((i) => `RUN head -c ${LAYER_MB * 1000 * 1000} /dev/urandom > /data${i}.bin\n`).join('') + 'COPY app.txt /app.txt\nCMD ["cat", "/app.txt"]\n',
    );
    writeFileSync(join(app, 'app.txt'), 'the application\n');
    writeFileSync(join(app, '.dockerignore'), '*.env\n');

    const image = `${reg.host}/shovel/app`;
    const ci = (sha: string) => ({
      ...dockerEnv,
      CI_REGISTRY: reg.host,
      CI_REGISTRY_USER: reg.user,
      CI_REGISTRY_PASSWORD: reg.password,
      CI_REGISTRY_IMAGE: image,
      CI_COMMIT_SHA: sha,
      CI_COMMIT_SHORT_SHA: sha.slice(0, 8),
      CI_COMMIT_REF_SLUG: 'main',
      CI_DEFAULT_BRANCH: 'main',
      CI_PROJECT_URL: 'https://gitlab.example.com/shovel/app',
    });
    const reset = async () => {
      // a fresh CI job: docker:dind starts with no images and no build cache
      for (const i of await docker.listImages({ all: true })) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
      sh(SEED_DOCKER, ['builder', 'prune', '-af'], dockerEnv);
    };

    // the previous pipeline on main: ours, first build (fills the registry and its inline cache)
    await reset();
    const first = sh(process.execPath, [CLI, 'image', 'build', '--push'], ci('a'.repeat(40)), undefined, app);
    const firstRun = { secs: first.secs };

    // 1a. ours: unchanged rebuild of the next commit, fresh engine state
    await reset();
    const ours = sh(process.execPath, [CLI, 'image', 'build', '--push'], ci('b'.repeat(40)), undefined, app);
    const cachedSteps = /\((\d+\/\d+) steps cached\)/.exec(ours.out)?.[1] ?? '?';
    const oursBuild = Number(/built sha256:[0-9a-f]+ in ([\d.]+)s/.exec(ours.out)?.[1] ?? NaN);

    // 1b. the seed: docker build --no-cache --force-rm, then docker push (fresh engine state)
    await reset();
    const seedTag = `${image}:${'c'.repeat(40)}`;
    const seedBuildSecs = sh(SEED_DOCKER, ['build', '.', '--no-cache', '--force-rm', '-t', seedTag, '-f', 'Dockerfile'], dockerEnv, undefined, app).secs;
    const seedPush = sh(SEED_DOCKER, ['push', seedTag], dockerEnv);

    // 2. promotion: ours (registry API) vs docker pull + tag + push
    const src = `${image}:${'b'.repeat(40)}`;
    const copySame = sh(process.execPath, [CLI, 'image', 'copy', src, `${reg.host}/shovel/app-production:1.0.0`], ci('b'.repeat(40)));
    const dac = JSON.stringify({ auths: { [reg2.host]: { auth: Buffer.from(`${reg2.user}:${reg2.password}`).toString('base64') } } });
    const copyOther = sh(process.execPath, [CLI, 'image', 'copy', src, `${reg2.host}/shovel/app:1.0.0`], { ...ci('b'.repeat(40)), DOCKER_AUTH_CONFIG: dac });
    const digestOurs = sh(process.execPath, [CLI, 'image', 'resolve', `${reg2.host}/shovel/app:1.0.0`], { DOCKER_AUTH_CONFIG: dac }).out.split('\n')[0];

    await reset();
    const pull = sh(SEED_DOCKER, ['pull', '-q', src], dockerEnv);
    const tag1 = sh(SEED_DOCKER, ['tag', src, `${reg.host}/shovel/app-production-docker:1.0.0`], dockerEnv);
    const push1 = sh(SEED_DOCKER, ['push', `${reg.host}/shovel/app-production-docker:1.0.0`], dockerEnv);
    const plainSame = pull.secs + tag1.secs + push1.secs;
    await reset();
    const pull2 = sh(SEED_DOCKER, ['pull', '-q', src], dockerEnv);
    const tag2 = sh(SEED_DOCKER, ['tag', src, `${reg2.host}/shovel/app-docker:1.0.0`], dockerEnv);
    const push2 = sh(SEED_DOCKER, ['push', `${reg2.host}/shovel/app-docker:1.0.0`], dockerEnv);
    const plainOther = pull2.secs + tag2.secs + push2.secs;
    const digestDocker = /digest: (sha256:[0-9a-f]{64})/.exec(push2.out)?.[1] ?? '?';
    const srcDigest = sh(process.execPath, [CLI, 'image', 'resolve', src], ci('b'.repeat(40))).out.split('\n')[0];

    const f = (s: number) => `${s.toFixed(1)} s`.padStart(8);
    const row = (a: string, b: string, c: string, d = '') => `| ${a.padEnd(58)} | ${b.padStart(8)} | ${c.padStart(8)} | ${d}`;
    const v = (await $({ env: { ...process.env, ...dockerEnv } })`${SEED_DOCKER} version --format ${'{{.Client.Version}} / engine {{.Server.Version}} (API {{.Server.APIVersion}})'}`).stdout.trim();
    lines.push(
      `image bench — ${new Date().toISOString()} — node ${process.version}, docker CLI ${v}`,
      `image: busybox base + 3 layers × ${LAYER_MB} MB random data (incompressible) + 1 small COPY; registry: docker-registry 2.8 (htpasswd) on loopback`,
      `"fresh engine state" = all images removed and build cache pruned before the run (a new docker:dind job)`,
      '',
      row('', 'ours', 'plain', 'notes'),
      row('-'.repeat(58), '-'.repeat(8), '-'.repeat(8), '-----'),
      row('unchanged rebuild + push, fresh engine state', f(ours.secs), f(seedBuildSecs + seedPush.secs), `ours: BuildKit + registry cache (${cachedSteps} steps cached); plain: seed Makefile, ${SEED_DOCKER} build --no-cache --force-rm (classic builder) + push`),
      row('  of which build', f(oursBuild), f(seedBuildSecs), 'ours: as the CLI reports it (BuildKit pulls the cached layers into the fresh engine)'),
      row('  of which the rest (push, registry checks, start-up)', f(ours.secs - oursBuild), f(seedPush.secs), ''),
      row('promote to another repository, same registry', f(copySame.secs), f(plainSame), `ours: image copy (cross-repo blob mounts); plain: docker pull ${f(pull.secs).trim()} + tag + push ${f(push1.secs).trim()}`),
      row('promote to another registry', f(copyOther.secs), f(plainOther), `ours: image copy (streamed blobs); plain: docker pull ${f(pull2.secs).trim()} + tag + push ${f(push2.secs).trim()}`),
      '',
      `first build on main with ours (cold, fills the cache): ${firstRun.secs.toFixed(1)} s`,
      `digest preserved across registries: source ${srcDigest}, ours ${digestOurs === srcDigest ? 'identical' : digestOurs}, docker pull+push ${digestDocker === srcDigest ? 'identical' : `${digestDocker} (re-pushed manifest differs)`}`,
    );
    lines.push('', ...(await runnerImage(docker, engine.host)));
  } finally {
    await reg.stop();
    await reg2.stop();
    await engine.stop();
  }
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/image.txt'), text);
}

const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** the CLI, asynchronously (the kustomize archive is served from this process) */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** section 3: the runner image's context, size, and what each step adds over its base */
async function runnerImage(docker: Docker, host: string): Promise<string[]> {
  const dockerfile = join(ROOT, 'images/runner/Dockerfile');
  const ctx = await listContext(ROOT, dockerfile);
  const ctxFiles = ctx.files.filter((f) => f.type === 'file');
  const checkout = (await $({ cwd: ROOT })`find . -type f | wc -l; du -sb . | cut -f1`).stdout.trim().split('\n').map(Number);
  const base = await makeNodeBase(docker);
  const kz = kustomizeArchive();
  const srv = await serveFile(kz.file);
  const tag = 'gci-bench/runner:size';
  try {
    const r = await cli(['image', 'build', '--context', '.', '--file', 'images/runner/Dockerfile', '--tag', tag, '--no-cache', '--build-arg', `BASE_IMAGE=${base}`, '--build-arg', `KUSTOMIZE_URL=${srv.url}`, '--build-arg', `KUSTOMIZE_SHA256=${kz.sha256}`], { DOCKER_HOST: host });
    if (r.code !== 0) throw new Error(`runner image build failed:\n${r.out.slice(-3000)}`);
    const baseInfo = await docker.getImage(base).inspect();
    const info = await docker.getImage(tag).inspect();
    const baseLayers = (await docker.getImage(base).history()).length;
    const steps = ((await docker.getImage(tag).history()) as Array<{ CreatedBy: string; Size: number }>).slice(0, -baseLayers).reverse();
    const what = (c: string) => {
      const t = c.replace(/^\/bin\/sh -c (#\(nop\) )?/, '').replace(/\s+/g, ' ').trim();
      if (/apt-get/.test(t)) return 'RUN git, ssh, CA certificates (apt-get unless the base has them)';
      if (/sha256sum/.test(t)) return 'RUN check the kustomize archive, extract it';
      if (/^ADD|ADD /.test(t) || /kustomize\.tar\.gz/.test(t)) return 'ADD the kustomize archive (stays in its layer)';
      if (/\/etc\/passwd/.test(t)) return 'RUN user gitops (10001)';
      if (/gitops-ci --version/.test(t)) return "RUN link gitops-ci, check --version and a command's load";
      if (/^COPY .*gitops-ci/.test(t)) return 'COPY dist/gitops-ci.cjs dist/gitops-ci.chunks (the CLI: bundle + commands)';
      return t.length > 70 ? `${t.slice(0, 67)}...` : t;
    };
    const kubectlSize = statSize(realKubectl());
    return [
      `runner image — images/runner/Dockerfile through \`gitops-ci image build\` (BuildKit, --no-cache), offline: base ${base} (this machine's node, git, ssh, CA certificates), kustomize from a local archive`,
      `build context: ${ctxFiles.length} files, ${MB(ctxFiles.reduce((a, f) => a + f.size, 0))} (${ctx.ignored} paths kept out by .dockerignore); the whole checkout would be ${checkout[0]} files, ${MB(checkout[1]!)}`,
      `base image: ${MB(baseInfo.Size)}; runner image: ${MB(info.Size)}; it adds ${MB(info.Size - baseInfo.Size)} over its base:`,
      ...steps.filter((s) => s.Size > 0 || /COPY|ADD/.test(s.CreatedBy)).map((s) => `  ${MB(s.Size).padStart(9)}  ${what(s.CreatedBy)}`),
      `kustomize here is a stand-in archive (${MB(statSize(kz.file))}): kubectl (${MB(Number(kubectlSize))}) with kustomize ${kz.version} built in, plus a 'kustomize' script;`,
      `  the release archive the pipeline uses (kustomize_v5.5.0_linux_amd64.tar.gz) is smaller; git/ssh/CA add nothing here because the base has them (from node:20-bookworm-slim, apt adds them)`,
    ];
  } finally {
    await srv.stop();
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  }
}

function statSize(f: string): number {
  return statSync(f).size;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
