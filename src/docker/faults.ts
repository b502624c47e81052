/**
 * Faults of the Docker engine itself, told apart from our bugs and from what the engine reports.
 *
 * When the engine closes the connection, dies or restarts in the middle of a build, push or pull, the request
 * to it fails with a socket error (ECONNRESET, EPIPE, "socket hang up", a response cut short), or the next
 * request finds nobody listening (ECONNREFUSED, ENOENT on a unix socket). That is the engine failing, not
 * gitops-ci: the error says which engine (DOCKER_HOST, redacted), what was going on, that the engine's log says
 * why, and it is transient (exit 75), because a job retry gets a new engine. Errors that the engine *reports*
 * (a failing step, a registry refusing a push) arrive inside its answer and are classified elsewhere.
 */
import type Docker from 'dockerode';
import { fail, isGitopsError, type GitopsError } from '../core/errors.js';
import { redactUrl } from '../core/mask.js';

/** errno codes of the connection to the engine going away or not being there */
const ENGINE_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ENOENT', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);
const ENGINE_MESSAGE = /socket hang up|^aborted$|premature close|other side closed|read ECONNRESET|write EPIPE|connect ECONNREFUSED|connect ENOENT/i;

/** true when `e` is the connection to the engine failing (not an HTTP answer of the engine, not our error) */
export function isEngineConnectionError(e: unknown): boolean {
  if (!e || isGitopsError(e)) return false;
  const x = e as { code?: unknown; statusCode?: unknown; message?: unknown; cause?: { code?: unknown } };
  if (typeof x.statusCode === 'number') return false; // the engine answered
  const code = typeof x.code === 'string' ? x.code : typeof x.cause?.code === 'string' ? x.cause.code : undefined;
  if (code && ENGINE_ERRNO.has(code)) return true;
  return typeof x.message === 'string' && ENGINE_MESSAGE.test(x.message);
}

/** DOCKER_HOST for messages: credentials and query removed */
export function engineName(env: NodeJS.ProcessEnv): string {
  const host = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (host.startsWith('/') || host.startsWith('unix://')) return host;
  const r = redactUrl(host);
  return r.replace(/\?.*$/, '').replace(/\/$/, '');
}

/** is the engine answering now? (a short /_ping) */
export async function engineAnswers(docker: Docker): Promise<boolean> {
  try {
    await Promise.race([docker.ping(), new Promise((_r, rej) => setTimeout(() => rej(new Error('ping timeout')), 3000).unref())]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The error for an engine that failed while `doing` (e.g. "building step [2/4] RUN make"). Looks once whether
 * the engine answers again, to say "died" or "restarted".
 */
export async function engineFault(docker: Docker | undefined, env: NodeJS.ProcessEnv, doing: string, e?: unknown): Promise<GitopsError> {
  const where = engineName(env);
  const back = docker ? await engineAnswers(docker) : false;
  const what = back ? 'closed the connection (it answers again: it restarted, or dropped this request)' : 'went away (it does not answer: it stopped or crashed)';
  const cause = e ? ((e as { code?: string }).code ? `${(e as { code?: string }).code}: ` : '') + ((e as Error).message ?? String(e)) : undefined;
  return fail.transient('EIMAGE_ENGINE_FAULT', `the Docker engine at ${where} ${what} while ${doing}`, {
    where,
    details: [...(cause ? [`connection error: ${cause}`] : []), 'this is a fault of the Docker engine, not of gitops-ci or of the Dockerfile'],
    hint:
      "the engine's log says why (dockerd's own log; with GitLab's docker:dind service, the service container's log: set CI_DEBUG_SERVICES=true). " +
      'Run the job again (the templates retry exit 75). If the engine dies at the same step every time, it has a bug there: ' +
      "Debian 12's dockerd 20.10 crashes on a multi-stage build whose last stage copies from an earlier one with inline cache (try --build-arg BUILDKIT_INLINE_CACHE=0 or a newer engine)",
    cause: e,
  });
}
