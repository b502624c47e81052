/** `gitops-ci image build`: build through the Docker Engine API (BuildKit), with registry cache, and push. */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import { bool, str, strs } from '../core/command.js';
import { fail } from '../core/errors.js';
import { mask } from '../core/mask.js';
import { formatRef, parseRef, refSlug, repoName, type ImageRef } from '../registry/ref.js';
import { makeCreds, makeRegistries, registryOptions } from '../registry/options.js';
import { connect, engineInfo, resolveEngine } from '../docker/engine.js';
import { engineFault, isEngineConnectionError } from '../docker/faults.js';
import { listContext } from '../docker/context.js';
import { build, followStream, push } from '../docker/build.js';

export const spec: CommandSpec = {
  name: 'image build',
  usage: 'gitops-ci image build [--context DIR] [--file PATH] [--tag REF]... [--build-arg K=V]... [--target STAGE] [--label K=V]... [--push] [--no-cache] [--cache-from REF]... [--dotenv FILE]',
  description: `
Build an image through the Docker Engine API (DOCKER_HOST, with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH as the
docker CLI reads them): BuildKit where the engine has it, else the classic builder. The context honours
.dockerignore. Tags default to $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA and $CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG;
OCI labels (source, revision, created, version, url) come from GitLab's variables.

Cache: unless --no-cache, layers are reused from the branch's previous image, then the default branch's
($CI_REGISTRY_IMAGE:$CI_COMMIT_REF_SLUG, then :<slug of $CI_DEFAULT_BRANCH>), or from --cache-from; with
BuildKit through cache-from and inline cache metadata (BUILDKIT_INLINE_CACHE=1), so the pushed image
serves as the next build's cache. A cache image that does not exist is skipped.

--push pushes every tag, then reads the digest back from the registry; --dotenv writes IMAGE
(repo@sha256:…), IMAGE_TAG and IMAGE_DIGEST.`,
  options: {
    context: { type: 'string', value: 'DIR', description: 'build context directory', default: '.' },
    file: { type: 'string', short: 'f', value: 'PATH', description: 'Dockerfile, relative to the working directory', default: 'DIR/Dockerfile' },
    tag: { type: 'string', short: 't', multiple: true, value: 'REF', description: 'image reference to tag (repeatable)', env: ['CI_REGISTRY_IMAGE', 'CI_COMMIT_SHA', 'CI_COMMIT_REF_SLUG'] },
    'build-arg': { type: 'string', multiple: true, value: 'K=V', description: 'build argument (K alone takes the value from the environment)' },
    target: { type: 'string', value: 'STAGE', description: 'build this stage of a multi-stage Dockerfile' },
    label: { type: 'string', multiple: true, value: 'K=V', description: 'image label (overrides the OCI defaults)' },
    push: { type: 'boolean', description: 'push every tag and read the digest back from the registry' },
    'no-cache': { type: 'boolean', description: 'build every step again, without any cache' },
    'cache-from': { type: 'string', multiple: true, value: 'REF', description: 'image to reuse layers from (repeatable; default: the branch and default-branch images)', env: ['CI_COMMIT_REF_SLUG', 'CI_DEFAULT_BRANCH'] },
    builder: { type: 'string', value: 'auto|buildkit|classic', description: 'which builder to use', default: 'auto' },
    ...registryOptions,
    dotenv: { type: 'string', value: 'FILE', description: 'write IMAGE (repo@digest), IMAGE_TAG and IMAGE_DIGEST to this dotenv file' },
  },
  examples: ['gitops-ci image build --push --dotenv build.env', 'gitops-ci image build --context app --file app/Dockerfile --tag registry.example.com/app:dev --build-arg VERSION=1.2'],
};

function kv(list: string[], what: string, env?: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  const bad: string[] = [];
  for (const item of list) {
    const i = item.indexOf('=');
    if (i > 0) out[item.slice(0, i)] = item.slice(i + 1);
    else if (i < 0 && env && item) {
      if (env[item] !== undefined) out[item] = env[item]!;
    } else bad.push(item);
  }
  if (bad.length) throw fail.usage('EIMAGE_BAD_FLAG', `${what} must be K=V: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  return out;
}

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const env = ctx.env;
  // ------------------------------------------------------------------ configuration, all checked first
  const problems: string[] = [];
  const contextDir = resolve(ctx.cwd, str(values, 'context') ?? '.');
  if (!existsSync(contextDir) || !statSync(contextDir).isDirectory()) problems.push(`context directory ${contextDir} does not exist`);
  const dockerfile = resolve(ctx.cwd, str(values, 'file') ?? resolve(contextDir, 'Dockerfile'));
  if (!existsSync(dockerfile)) problems.push(`Dockerfile ${dockerfile} does not exist`);
  const builderFlag = str(values, 'builder') ?? 'auto';
  if (!['auto', 'buildkit', 'classic'].includes(builderFlag)) problems.push(`--builder must be auto, buildkit or classic, not ${JSON.stringify(builderFlag)}`);
  if (problems.length) throw fail.usage('EIMAGE_CONTEXT', problems.join('; '), { hint: '--context is the build context directory; --file is relative to the working directory, as with the docker CLI' });

  let tagRefs: ImageRef[];
  const tagFlags = strs(values, 'tag');
  if (tagFlags.length) tagRefs = tagFlags.map((t) => parseRef(t));
  else {
    if (!env.CI_REGISTRY_IMAGE || !env.CI_COMMIT_SHA) {
      throw fail.usage('EIMAGE_NO_TAG', 'no --tag given and CI_REGISTRY_IMAGE/CI_COMMIT_SHA are not set', { hint: 'pass --tag REF, or run in GitLab CI (tags default to $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA and :$CI_COMMIT_REF_SLUG)' });
    }
    tagRefs = [parseRef(`${env.CI_REGISTRY_IMAGE}:${env.CI_COMMIT_SHA}`)];
    if (env.CI_COMMIT_REF_SLUG) tagRefs.push(parseRef(`${env.CI_REGISTRY_IMAGE}:${env.CI_COMMIT_REF_SLUG}`));
  }
  const tags = [...new Set(tagRefs.map((r) => formatRef(r)))];
  const buildArgs = kv(strs(values, 'build-arg'), '--build-arg', env);
  // a secret as a build argument ends up in the image: the engine records the arguments a RUN step sees in the
  // image's history (`docker history`), which whoever can pull the image reads. Allowed (CI_JOB_TOKEN for private
  // dependencies is common), never silently.
  for (const [k, v] of Object.entries(buildArgs)) {
    if (v && mask(v) !== v) ctx.log.warn(`--build-arg ${k} holds a secret: the engine records the build arguments a RUN step uses in the image's history (docker history), where whoever can pull the image reads it; fetch what needs it before the build, or keep that stage out of the pushed image`);
  }
  const labels: Record<string, string> = {};
  // the commit's time, not the build's: a re-run for the same commit then gives the same image (and digest), so
  // the bump that follows is a no-op instead of a new deploy
  const sourceDate = env.SOURCE_DATE_EPOCH && /^\d+$/.test(env.SOURCE_DATE_EPOCH) ? new Date(Number(env.SOURCE_DATE_EPOCH) * 1000).toISOString() : undefined;
  const created = env.CI_COMMIT_TIMESTAMP || sourceDate || new Date().toISOString();
  if (env.CI_PROJECT_URL) labels['org.opencontainers.image.source'] = env.CI_PROJECT_URL;
  if (env.CI_COMMIT_SHA) labels['org.opencontainers.image.revision'] = env.CI_COMMIT_SHA;
  labels['org.opencontainers.image.created'] = created;
  const version = env.CI_COMMIT_TAG || env.CI_COMMIT_SHORT_SHA;
  if (version) labels['org.opencontainers.image.version'] = version;
  if (env.CI_PROJECT_URL) labels['org.opencontainers.image.url'] = env.CI_PROJECT_URL;
  Object.assign(labels, kv(strs(values, 'label'), '--label'));
  const noCache = bool(values, 'no-cache');

  const registriesWritten = [...new Set(tagRefs.map((r) => r.registry))];
  const creds = await makeCreds(ctx, values, registriesWritten);
  const regs = await makeRegistries(ctx, values, registriesWritten, creds);
  if (bool(values, 'push')) {
    // verify before mutating: every repository a tag goes to takes our push before anything is built or pushed
    // (a second tag's registry refusing after the first tag was pushed left that one behind)
    for (const key of new Set(tagRefs.map((r) => `${r.registry}\n${r.repository}`))) {
      const [registry, repository] = key.split('\n') as [string, string];
      await regs.for(registry).checkPush(repository);
    }
  }

  // ------------------------------------------------------------------ cache candidates
  let cacheRefs: string[] = [];
  if (!noCache) {
    const explicitCache = strs(values, 'cache-from');
    if (explicitCache.length) cacheRefs = explicitCache;
    else {
      const base = env.CI_REGISTRY_IMAGE || repoName(tagRefs[0]);
      const slugs = [env.CI_COMMIT_REF_SLUG || (env.CI_COMMIT_REF_NAME ? refSlug(env.CI_COMMIT_REF_NAME) : ''), env.CI_DEFAULT_BRANCH ? refSlug(env.CI_DEFAULT_BRANCH) : ''].filter(Boolean);
      cacheRefs = [...new Set(slugs)].map((s) => `${base}:${s}`);
    }
  }

  // ------------------------------------------------------------------ engine
  // which engine (DOCKER_HOST, else the `engine` input's GITOPS_ENGINE, else found): every later message names it
  const engine = resolveEngine(env);
  Object.assign(env, engine.vars);
  if (engine.kind !== 'docker-host') ctx.log.info(`engine: ${engine.kind} (${env.DOCKER_HOST})`);
  const docker = connect(env);
  const info = await engineInfo(docker, env.DOCKER_HOST || 'unix:///var/run/docker.sock');
  const builder: 'buildkit' | 'classic' = builderFlag === 'classic' ? 'classic' : builderFlag === 'buildkit' ? 'buildkit' : info.buildkit ? 'buildkit' : 'classic';
  ctx.log.info(`engine ${info.version} (API ${info.apiVersion}); builder: ${builder === 'buildkit' ? 'BuildKit' : 'classic'}`);

  const usableCache: string[] = [];
  for (const c of cacheRefs) {
    let r: ImageRef;
    try {
      r = parseRef(c);
    } catch (e) {
      ctx.log.warn(`cache image ${c} skipped: ${(e as Error).message}`);
      continue;
    }
    try {
      const m = await regs.for(r.registry).headManifest(r.repository, r.digest ?? r.tag ?? 'latest');
      if (m) {
        usableCache.push(formatRef(r));
        ctx.log.info(`cache: ${formatRef(r)} (${m.digest.slice(0, 19)}…)`);
      } else ctx.log.info(`cache: ${formatRef(r)} does not exist yet; skipped`);
    } catch (e) {
      ctx.log.warn(`cache: ${formatRef(r)} skipped: ${(e as Error).message}`);
    }
  }
  if (builder === 'classic' && usableCache.length) {
    // the classic builder only uses cache images that are on the engine
    await ctx.log.section('pull cache images', async () => {
      for (const c of [...usableCache]) {
        try {
          const r = parseRef(c);
          const cr = creds.get(r.registry);
          const s = await docker.pull(c, { authconfig: cr ? { username: cr.username, password: cr.password, serveraddress: r.registry } : undefined });
          const err = await followStream(s as never, () => undefined);
          if (err) throw new Error(err);
          ctx.log.info(`pulled ${c}`);
        } catch (e) {
          if (isEngineConnectionError(e)) throw await engineFault(docker, env, `pulling the cache image ${c}`, e);
          usableCache.splice(usableCache.indexOf(c), 1);
          ctx.log.warn(`cache image ${c} not pulled: ${(e as Error).message}`);
        }
      }
    });
  }
  if (builder === 'buildkit' && !('BUILDKIT_INLINE_CACHE' in buildArgs)) buildArgs.BUILDKIT_INLINE_CACHE = '1';

  const context = await listContext(contextDir, dockerfile);
  ctx.log.info(`context: ${context.files.filter((f) => f.type === 'file').length} files${context.ignored ? `, ${context.ignored} ignored by .dockerignore` : ''}`);

  // ------------------------------------------------------------------ build
  const started = Date.now();
  const res = await ctx.log.section(
    `docker build (${builder === 'buildkit' ? 'BuildKit' : 'classic'}) ${tags.join(' ')}`,
    () => build(docker, { context, tags, buildArgs, labels, target: str(values, 'target'), noCache, cacheFrom: usableCache, builder }, creds, ctx.log, env),
    { collapsed: false },
  );
  const buildSecs = ((Date.now() - started) / 1000).toFixed(1);
  ctx.log.info(`built ${res.imageId.slice(0, 19)} in ${buildSecs}s${res.totalSteps ? ` (${res.cachedSteps}/${res.totalSteps} steps cached)` : ''}`);

  if (!bool(values, 'push')) {
    return { summary: `built ${tags.join(', ')} (${res.imageId.slice(7, 19)}, ${res.builder}${res.cachedSteps ? `, ${res.cachedSteps} steps cached` : ''}); not pushed`, outputs: { IMAGE_TAG: tags[0], IMAGE_ID: res.imageId } };
  }

  // ------------------------------------------------------------------ push, then read the digest back
  let digest: string | undefined;
  for (const r of tagRefs) {
    const ref = formatRef(r);
    const engineDigest = await ctx.log.section(`docker push ${ref}`, () => push(docker, ref, r.registry, creds, ctx.log, env));
    const m = await regs.for(r.registry).headManifest(r.repository, r.tag ?? 'latest');
    if (!m) throw fail.failed('EIMAGE_PUSH', `${ref} is not in the registry after the push`, { where: ref });
    if (engineDigest && engineDigest !== m.digest) ctx.log.warn(`the engine reported ${engineDigest} for ${ref}, the registry serves ${m.digest}`);
    if (digest && digest !== m.digest && repoName(r) === repoName(tagRefs[0])) ctx.log.warn(`${ref} is ${m.digest}, not ${digest}: another job pushed it meanwhile?`);
    digest ??= m.digest;
    ctx.log.info(`pushed ${ref} → ${m.digest}`);
  }
  return {
    summary: `pushed ${tags.join(', ')} as ${digest} (${res.builder}${res.totalSteps ? `, ${res.cachedSteps}/${res.totalSteps} steps cached` : ''})`,
    outputs: { IMAGE: `${repoName(tagRefs[0])}@${digest}`, IMAGE_TAG: tags[0], IMAGE_DIGEST: digest, IMAGE_ID: res.imageId },
  };
}
