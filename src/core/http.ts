/**
 * Bounded reads for every HTTP answer we buffer (GitLab, Argo CD, registry): a cap on the body's size and a
 * total deadline for the whole exchange, from sending the request to the body's last byte.
 *
 * Why both: a socket idle timeout (`req.setTimeout`) only notices silence, so a server that sends one byte a
 * second holds a job for ever; and a body read into memory without a cap ends in `ERR_STRING_TOO_LONG` or an
 * out-of-memory kill, never in an error we can name. Both bounds surface as `HttpBoundError` (never a stack
 * trace); each client maps it to its own catalogued code:
 *   - too large: `failed` (exit 1): the answer is not one we will ever accept, retrying does not help;
 *   - deadline:  `timeout` (exit 4) for GitLab and the registry; Argo CD keeps a slow request retryable within
 *     its commands' own `--timeout` (see src/argocd/client.ts).
 * Error bodies are read truncated (`truncate: true`): a few KiB are enough to say what the server said.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';

/**
 * The keep-alive agents of the GitLab, Argo CD and registry clients: connections are reused, but one left idle
 * for 2 s is closed by us (Node's agent destroys a free socket whose timeout fires). A server closes idle
 * connections too (Node's http server after 5 s, nginx after 75 s, load balancers after about 60 s); a request
 * sent on a connection at the moment the server closes it fails with ECONNRESET, which for a POST cannot be
 * retried safely (a likely cause of one promote's exit 75 in a loaded test run, whose git push had taken several
 * seconds; not proven). Closing first, well before any server does, leaves no such moment; a new connection after an idle
 * pause costs one handshake. On an active request the socket timeout only emits an event nothing listens to:
 * the request's own bound is watchDeadline below.
 */
export const KEEP_ALIVE = { keepAlive: true, timeout: 2_000 } as const;

/** JSON answers (GitLab, Argo CD): far above any answer we ask for (a 100-item page is well under 1 MiB) */
export const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
/** error bodies: only their first part is read, for the message */
export const ERROR_BODY_BYTES = 64 * 1024;

export type BoundKind = 'too-large' | 'deadline';

export class HttpBoundError extends Error {
  constructor(
    readonly bound: BoundKind,
    /** bytes for too-large, milliseconds for deadline */
    readonly limit: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpBoundError';
  }
}

export function isBoundError(e: unknown, bound?: BoundKind): e is HttpBoundError {
  return e instanceof HttpBoundError && (bound === undefined || e.bound === bound);
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / (1024 * 1024)) * 10) / 10} MiB`;
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KiB`;
  return `${n} bytes`;
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

export interface Deadline {
  /** true once the deadline fired (whatever error the request then reports, it is this one) */
  readonly expired: boolean;
  /** the error to report when expired */
  readonly error: HttpBoundError;
  clear(): void;
}

/**
 * A total deadline on `req`: when it fires the request (and its response) is destroyed with a deadline
 * HttpBoundError. Call clear() once the body is read. The timer does not keep the process alive.
 */
export function watchDeadline(req: ClientRequest, ms: number, what = 'the request'): Deadline {
  const error = new HttpBoundError('deadline', ms, `${what} did not complete within ${formatMs(ms)}`);
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    req.destroy(error);
  }, Math.max(1, ms));
  timer.unref?.();
  return {
    get expired() {
      return expired;
    },
    error,
    clear: () => clearTimeout(timer),
  };
}

/**
 * Read `res` into one Buffer, at most `maxBytes`. Over the cap (by Content-Length up front, or by counting):
 * the response is destroyed and a too-large HttpBoundError thrown, or, with `truncate`, the first `maxBytes`
 * returned. Rejects with the stream's error when the connection fails mid-answer.
 */
export function readBody(res: IncomingMessage, maxBytes: number, o: { truncate?: boolean; what?: string } = {}): Promise<Buffer> {
  const what = o.what ?? 'the answer';
  const tooLarge = (n: string) => new HttpBoundError('too-large', maxBytes, `${what} is larger than ${formatBytes(maxBytes)}${n}`);
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers['content-length']);
    if (!o.truncate && Number.isFinite(declared) && declared > maxBytes) {
      res.destroy();
      reject(tooLarge(` (Content-Length ${formatBytes(declared)})`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    res.on('data', (c: Buffer) => {
      if (settled) return;
      if (size + c.length > maxBytes) {
        if (o.truncate) {
          chunks.push(c.subarray(0, maxBytes - size));
          size = maxBytes;
          done(() => resolve(Buffer.concat(chunks, size)));
        } else done(() => reject(tooLarge('')));
        res.destroy();
        return;
      }
      chunks.push(c);
      size += c.length;
    });
    res.on('end', () => done(() => resolve(Buffer.concat(chunks, size))));
    res.on('error', (e) => done(() => reject(e)));
    res.on('aborted', () => done(() => reject(Object.assign(new Error('the connection closed mid-answer'), { code: 'ECONNRESET' }))));
    res.on('close', () => done(() => (res.complete ? resolve(Buffer.concat(chunks, size)) : reject(Object.assign(new Error('the connection closed mid-answer'), { code: 'ECONNRESET' })))));
  });
}

/** the first `max` bytes of an error body, as text; never throws */
export async function readErrorText(res: IncomingMessage, max = ERROR_BODY_BYTES): Promise<string> {
  try {
    return (await readBody(res, max, { truncate: true })).toString('utf8');
  } catch {
    return '';
  }
}
