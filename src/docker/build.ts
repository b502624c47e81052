/**
 * Building and pushing through the Docker Engine API (dockerode).
 *
 * - BuildKit (`version=2`) when the engine has it (API ≥ 1.39 on Linux), else the classic builder; if the
 *   engine refuses BuildKit, the build falls back to the classic builder with a warning.
 * - Registry credentials reach BuildKit through a session (see session.ts), and the classic builder through
 *   X-Registry-Config; pushes through X-Registry-Auth. All three travel on the engine's socket only.
 * - A failed step fails the build with the step's name and last output lines. The classic builder is run with
 *   forcerm, and the intermediate containers and images a failed build created are removed.
 */
import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import { fail, type GitopsError } from '../core/errors.js';
import type { CredentialStore } from '../registry/auth.js';
import { BuildProgress } from './progress.js';
import { openSession } from './session.js';
import { tarStream, type BuildContext } from './context.js';
import { engineAnswers, engineFault, isEngineConnectionError } from './faults.js';

export interface BuildRequest {
  context: BuildContext;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  target?: string;
  noCache: boolean;
  cacheFrom: string[];
  builder: 'buildkit' | 'classic';
}

export interface BuildResult {
  imageId: string;
  builder: 'buildkit' | 'classic';
  cachedSteps: number;
  totalSteps: number;
}

type Msg = { id?: string; aux?: unknown; stream?: string; status?: string; error?: string; errorDetail?: { message?: string }; progressDetail?: unknown };

function dialStream(docker: Docker, opts: Record<string, unknown>): Promise<Readable> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(opts as never, (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as Readable)));
  });
}

/** read a JSON-lines progress stream, calling onMessage for each; resolves with the first error message, if any */
export function followStream(stream: Readable, onMessage: (m: Msg) => void): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let error: string | undefined;
    const handle = (line: string) => {
      if (!line.trim()) return;
      let m: Msg;
      try {
        m = JSON.parse(line) as Msg;
      } catch {
        return;
      }
      if (m.error || m.errorDetail?.message) error ??= m.errorDetail?.message || m.error;
      onMessage(m);
    };
    stream.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        handle(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    stream.on('end', () => {
      handle(buf);
      resolve(error);
    });
    stream.on('error', reject);
  });
}

function classifyBuildError(msg: string, progress: BuildProgress, builder: string): GitopsError {
  const f = progress.failure(msg);
  const details = [...(f.name ? [`step: ${f.name}`] : []), ...(f.lines.length ? ['last lines:', ...f.lines.slice(-10).map((l) => `  ${l}`)] : [])];
  if (/executor failed running|did not complete successfully|returned a non-zero code/i.test(msg)) {
    return fail.failed('EIMAGE_BUILD_STEP', `build step failed: ${f.name ?? msg}`, { details: [`error: ${msg}`, ...details.filter((d) => !d.startsWith('step: '))], hint: 'fix the failing step; its last output lines are above', where: f.name });
  }
  if (/unauthorized|authentication required|no basic auth credentials|401 unauthorized|denied: requested access/i.test(msg)) {
    return fail.auth('EIMAGE_BASE_AUTH', `the build could not pull an image: ${msg}`, { details, hint: 'give credentials for that registry (DOCKER_AUTH_CONFIG, CI_REGISTRY_USER/CI_REGISTRY_PASSWORD, or --registry-user)' });
  }
  if (/pull access denied|manifest unknown|not found|no such image|repository does not exist/i.test(msg) && /FROM|pull|load metadata|manifest|image/i.test(msg + (f.name ?? ''))) {
    return fail.failed('EIMAGE_BASE_NOT_FOUND', `a base image was not found: ${msg}`, { details, hint: 'check the FROM lines: the image and tag must exist in the registry or on the engine' });
  }
  return fail.failed('EIMAGE_BUILD', `the ${builder} build failed: ${msg}`, { details });
}

export async function build(docker: Docker, req: BuildRequest, creds: CredentialStore, log: { raw(t: string): void; debug(m: string): void; warn(m: string): void }, env: NodeJS.ProcessEnv): Promise<BuildResult> {
  const progress = new BuildProgress((line) => log.raw(line + '\n'));
  const query: Record<string, unknown> = {
    t: req.tags,
    dockerfile: req.context.dockerfile,
    buildargs: req.buildArgs,
    labels: req.labels,
    nocache: req.noCache,
    rm: true,
    forcerm: true,
  };
  if (req.target) query.target = req.target;
  if (req.cacheFrom.length) query.cachefrom = JSON.stringify(req.cacheFrom);
  const opts: Record<string, unknown> = {
    path: '/build?',
    method: 'POST',
    options: query,
    isStream: true,
    file: tarStream(req.context),
    headers: { 'Content-Type': 'application/x-tar' },
    statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
  };
  let session: { id: string; close(): void } | undefined;
  if (req.builder === 'buildkit') {
    query.version = '2';
    try {
      session = await openSession(docker, creds, (m) => log.debug(m));
      query.session = session.id;
    } catch (e) {
      log.warn(`cannot open a BuildKit session (${(e as Error).message}); private base and cache images will be pulled without credentials`);
    }
  } else {
    const rc: Record<string, { username?: string; password?: string; identitytoken?: string }> = {};
    for (const [h, c] of creds.all()) rc[h] = c.identityToken ? { identitytoken: c.identityToken } : { username: c.username, password: c.password };
    if (Object.keys(rc).length) opts.registryconfig = rc;
  }
  let stream: Readable;
  try {
    stream = await dialStream(docker, opts);
  } catch (e) {
    session?.close();
    if (isEngineConnectionError(e)) throw await engineFault(docker, env, `starting the ${req.builder === 'buildkit' ? 'BuildKit' : 'classic'} build (sending the context)`, e);
    const msg = (e as { json?: { message?: string } }).json?.message ?? (e as Error).message;
    if (req.builder === 'buildkit' && /buildkit|builder version|session/i.test(msg)) {
      log.warn(`the engine refused a BuildKit build (${msg}); using the classic builder`);
      return build(docker, { ...req, builder: 'classic' }, creds, log, env);
    }
    throw fail.failed('EIMAGE_BUILD', `the engine refused the build: ${msg}`);
  }
  let error: string | undefined;
  const during = () => {
    const step = progress.current();
    return `building${step ? ` (step ${step})` : ''}`;
  };
  try {
    error = await followStream(stream, (m) => progress.onMessage(m));
  } catch (e) {
    // the answer was cut short: the engine closed the connection or died
    if (isEngineConnectionError(e)) throw await engineFault(docker, env, during(), e);
    throw e;
  } finally {
    progress.end();
    session?.close();
  }
  if (error) {
    if (req.builder === 'classic') await cleanupClassic(docker, progress, log);
    throw classifyBuildError(error, progress, req.builder === 'buildkit' ? 'BuildKit' : 'classic');
  }
  let imageId = progress.imageId;
  // an answer that ended without an image id and without an error: did the engine go away?
  if (!imageId && !(await engineAnswers(docker))) throw await engineFault(docker, env, `${during()}: its answer ended early`);
  if (!imageId && req.tags[0]) {
    try {
      imageId = (await docker.getImage(req.tags[0]).inspect()).Id;
    } catch (e) {
      if (isEngineConnectionError(e)) throw await engineFault(docker, env, 'reading the built image', e);
      throw e;
    }
  }
  if (!imageId) throw fail.failed('EIMAGE_BUILD', 'the engine finished the build without an image id');
  return { imageId, builder: req.builder, cachedSteps: progress.cachedSteps, totalSteps: progress.totalSteps };
}

/** remove what a failed classic build left: its intermediate containers, then the images it created */
async function cleanupClassic(docker: Docker, progress: BuildProgress, log: { debug(m: string): void }): Promise<void> {
  for (const id of progress.classicContainers) {
    await docker
      .getContainer(id)
      .remove({ force: true, v: true })
      .then(() => log.debug(`removed intermediate container ${id}`))
      .catch(() => undefined);
  }
  for (const id of progress.createdClassicImages().reverse()) {
    const img = await docker
      .getImage(id)
      .inspect()
      .catch(() => undefined);
    if (!img || (img.RepoTags ?? []).length) continue; // tagged since: not ours to remove
    await docker
      .getImage(id)
      .remove({ noprune: true })
      .then(() => log.debug(`removed intermediate image ${id}`))
      .catch(() => undefined); // still used (a cache hit elsewhere, a tag): keep it
  }
}

/** push one tag; returns the digest the engine reports */
export async function push(docker: Docker, ref: string, registry: string, creds: CredentialStore, log: { raw(t: string): void; warn(m: string): void }, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const c = creds.get(registry);
  const authconfig = c ? (c.identityToken ? { identitytoken: c.identityToken, serveraddress: registry } : { username: c.username, password: c.password, serveraddress: registry }) : { serveraddress: registry };
  const lastStatus = new Map<string, string>();
  for (let attempt = 1; ; attempt++) {
    let digest: string | undefined;
    let error: string | undefined;
    try {
      const s = (await docker.getImage(ref).push({ authconfig } as never)) as unknown as Readable;
      error = await followStream(s, (m) => {
        const d = (m.aux as { Digest?: string } | undefined)?.Digest;
        if (d) digest = d;
        if (m.id && m.status && !(m.progressDetail && Object.keys(m.progressDetail as object).length)) {
          // one line per layer state change, not the progress bars
          if (lastStatus.get(m.id) !== m.status) {
            lastStatus.set(m.id, m.status);
            if (/Pushed|already exists|Mounted|Preparing/.test(m.status) && m.status !== 'Preparing') log.raw(`${m.id}: ${m.status}\n`);
          }
        } else if (m.status && !m.id) log.raw(`${m.status}\n`);
      });
    } catch (e) {
      // the engine itself failed (not the registry behind it, whose errors come inside the answer)
      if (isEngineConnectionError(e)) throw await engineFault(docker, env, `pushing ${ref}`, e);
      error = (e as { json?: { message?: string } }).json?.message ?? (e as Error).message;
    }
    if (!error) return digest;
    if (/unauthorized|authentication required|no basic auth credentials|denied|401|403/i.test(error)) {
      throw fail.auth('EIMAGE_PUSH_AUTH', `the registry refused the push of ${ref}: ${error}`, {
        where: ref,
        hint: c ? `check the credentials from ${c.source}` : 'no credentials for this registry: set CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (for CI_REGISTRY), DOCKER_AUTH_CONFIG, or --registry-user with GITOPS_REGISTRY_PASSWORD',
      });
    }
    // another push of the same layer (a second pipeline of the branch) was still uploading when the engine took it
    // as "already exists": the registry refuses the manifest (blob unknown). A second whole push finds it complete.
    const raced = /blob unknown|manifest blob unknown|digest invalid/i.test(error);
    const transient = raced || /5\d\d|unavailable|connection reset|connection refused|broken pipe|EOF|timeout|i\/o timeout|TLS handshake/i.test(error);
    // the engine already retries each layer (5 attempts, with backoff): one more whole push is enough
    if (transient && attempt < 2) {
      log.warn(`push of ${ref} failed (${error}); pushing again (${attempt + 1}/2)`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
      continue;
    }
    if (transient) throw fail.transient('EIMAGE_PUSH_TRANSIENT', `push of ${ref} failed: ${error}`, { where: ref, hint: 'the registry or the network failed; run the job again (layers already pushed are skipped)' });
    throw fail.failed('EIMAGE_PUSH', `push of ${ref} failed: ${error}`, { where: ref });
  }
}
