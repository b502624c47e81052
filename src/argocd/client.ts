/**
 * A small Argo CD REST client (grpc-gateway under /api/). It uses node:http/https rather than the global
 * fetch because a custom CA or --insecure must apply per request, which Node 20's fetch cannot do without
 * an extra dependency. Every request has a client timeout; the watch stream has an idle timeout instead.
 *
 * Errors become GitopsError: 401 → auth (3), 403 → auth (3), 404 → usage (2), 5xx/429/network/client
 * timeout → transient (75), TLS → usage (2), other 4xx → failed (1). `ArgoHttpError` (a GitopsError) keeps
 * the HTTP status and the gRPC code so that callers can recognise "another operation is already in
 * progress" or a sync window.
 */
import http from 'node:http';
import https from 'node:https';
import { fail, GitopsError, isTransientErrno, type ErrorInit } from '../core/errors.js';
import { addSecret, redactUrl, stripUserinfo } from '../core/mask.js';
import type { Logger } from '../core/log.js';
import type { Connection } from './config.js';
import { ArgoErrors } from './errors.js';
import { DEFAULT_MAX_BYTES, ERROR_BODY_BYTES, formatBytes, isBoundError, KEEP_ALIVE, readBody, watchDeadline, type Deadline } from '../core/http.js';
import { appLabel, type AppRef, type Application, type ApplicationSet, type ApplicationTree, type ResourceKey } from './types.js';
import type { SyncWindowsAnswer } from './windows.js';

export class ArgoHttpError extends GitopsError {
  readonly status: number;
  readonly grpcCode?: number;
  readonly serverMessage: string;
  constructor(init: ErrorInit, status: number, grpcCode: number | undefined, serverMessage: string) {
    super(init);
    this.status = status;
    this.grpcCode = grpcCode;
    this.serverMessage = serverMessage;
  }
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

interface CallOpts {
  query?: Record<string, string | undefined>;
  body?: unknown;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** send no Authorization header (webhook, session) */
  anonymous?: boolean;
  headers?: Record<string, string>;
  /** absolute URL instead of baseUrl + path */
  url?: string;
  /** a stream: the timeout covers the answer's headers only (the caller watches idleness) */
  streaming?: boolean;
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|DEPTH_ZERO|UNABLE_TO_GET_ISSUER/;

/** grpc-gateway error bodies: {"error","code","message"} or, on streams, {"error":{"grpc_code","http_code","message"}} */
export function parseErrorBody(text: string): { message: string; grpcCode?: number } {
  try {
    const j = JSON.parse(text) as { error?: unknown; message?: string; code?: number };
    if (j && typeof j.error === 'object' && j.error) {
      const e = j.error as { message?: string; grpc_code?: number };
      return { message: e.message ?? text.trim(), grpcCode: e.grpc_code };
    }
    return { message: j.message ?? (typeof j.error === 'string' ? j.error : text.trim()), grpcCode: j.code };
  } catch {
    return { message: text.trim().slice(0, 300) };
  }
}

export class ArgoClient {
  private token?: string;
  private readonly agent: http.Agent;
  /** largest answer read (and longest line of a watch stream): src/core/http.ts */
  maxBytes = DEFAULT_MAX_BYTES;

  constructor(
    readonly conn: Connection,
    private readonly log: Logger,
  ) {
    this.token = conn.token;
    const isHttps = conn.baseUrl.startsWith('https:');
    this.agent = isHttps ? new https.Agent({ ...KEEP_ALIVE, ca: conn.ca, rejectUnauthorized: !conn.insecure }) : new http.Agent({ ...KEEP_ALIVE });
    if (conn.insecure) log.warn('TLS certificate verification is off (--insecure)');
  }

  close(): void {
    this.agent.destroy();
  }

  private url(path: string, query?: Record<string, string | undefined>): URL {
    const u = new URL(this.conn.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') u.searchParams.set(k, v);
    return u;
  }

  private headers(opts: CallOpts): Record<string, string> {
    const h: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'gitops-ci', ...opts.headers };
    if (!opts.anonymous && this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  /**
   * Starts a request; resolves with the response object (body unread) and its deadline. Not streaming: the
   * deadline covers the whole exchange, body included (clear it once the body is read); streaming: only
   * until the answer's headers (the caller watches idleness).
   */
  private open(method: string, u: URL, opts: CallOpts, body?: string): Promise<{ res: http.IncomingMessage; deadline?: Deadline }> {
    const where = redactUrl(`${u.origin}${u.pathname}`);
    return new Promise((resolve, reject) => {
      const lib = u.protocol === 'https:' ? https : http;
      const headers = this.headers(opts);
      if (method !== 'GET') headers['Content-Type'] = 'application/json'; // exact: Argo CD compares the string
      if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
      let deadline: Deadline | undefined;
      const req = lib.request(u, { method, headers, agent: this.agent, signal: opts.signal }, (res) => {
        if (opts.streaming) deadline?.clear();
        resolve({ res, deadline: opts.streaming ? undefined : deadline });
      });
      if (opts.timeoutMs) deadline = watchDeadline(req, opts.timeoutMs, `Argo CD's answer to ${method} ${where}`);
      req.on('error', (e) => {
        deadline?.clear();
        reject(this.networkError(deadline?.expired ? deadline.error : e, method, where));
      });
      req.end(body);
    });
  }

  networkError(e: unknown, method: string, where: string): GitopsError {
    if (e instanceof GitopsError) return e;
    // a request past its deadline stays retryable like an outage (argocd wait retries within --retry-for); each
    // command's own --timeout bounds the whole, exit 4
    if (isBoundError(e, 'deadline')) return fail.transient(ArgoErrors.UNAVAILABLE, `Argo CD did not answer ${method} in time (${e.message})`, { where, hint: 'retry; raise --request-timeout if the server is slow' });
    if (isBoundError(e, 'too-large')) {
      return fail.failed(ArgoErrors.TOO_LARGE, `Argo CD's answer to ${method} is larger than ${formatBytes(e.limit)}; it was not read`, { where, hint: 'no answer we ask for is this large: check that --server points at Argo CD and not at a proxy or another server' });
    }
    const err = e as NodeJS.ErrnoException;
    if (err.name === 'AbortError') return fail.transient(ArgoErrors.UNAVAILABLE, `${method} ${where}: aborted`, { where, cause: e });
    const code = err.code ?? '';
    if (TLS_CODES.test(code) || /certificate/i.test(err.message)) {
      return fail.usage(ArgoErrors.TLS, `TLS verification of the Argo CD server failed: ${err.message}`, {
        where,
        hint: "pass the CA that signed the server's certificate with --ca-file (or ARGOCD_CA_FILE); --insecure skips verification",
        cause: e,
      });
    }
    if (code === 'ETIMEDOUT') return fail.transient(ArgoErrors.UNAVAILABLE, `Argo CD did not answer ${method} in time (${err.message})`, { where, hint: 'retry; raise --request-timeout if the server is slow', cause: e });
    if (isTransientErrno(e) || code === 'ENOTFOUND' || code === 'ECONNREFUSED') {
      return fail.transient(ArgoErrors.UNAVAILABLE, `cannot reach Argo CD: ${code || err.message}`, { where, hint: 'check ARGOCD_SERVER and that the server is up; this is retryable', cause: e });
    }
    return fail.transient(ArgoErrors.UNAVAILABLE, `request to Argo CD failed: ${err.message}`, { where, cause: e });
  }

  /** One request; returns status and body text, throws only on network errors. */
  async raw(method: string, path: string, opts: CallOpts = {}): Promise<RawResponse> {
    const u = opts.url ? new URL(opts.url) : this.url(path, opts.query);
    // no URL leaves the process with credentials in it (a credentialed repo URL in a webhook event)
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(stripUserinfo(opts.body));
    const timeoutMs = opts.timeoutMs ?? this.conn.requestTimeoutMs;
    this.log.debug(`argocd: ${method} ${redactUrl(u.toString())}`);
    const { res, deadline } = await this.open(method, u, { ...opts, timeoutMs }, body);
    const where = redactUrl(`${u.origin}${u.pathname}`);
    const status = res.statusCode ?? 0;
    try {
      const buf = status >= 200 && status < 300 ? await readBody(res, this.maxBytes, { what: `Argo CD's answer to ${method} ${where}` }) : await readBody(res, ERROR_BODY_BYTES, { truncate: true });
      return { status, headers: res.headers, text: buf.toString('utf8') };
    } catch (e) {
      if (deadline?.expired) throw this.networkError(deadline.error, method, where);
      if (isBoundError(e)) throw this.networkError(e, method, where);
      throw fail.transient(ArgoErrors.UNAVAILABLE, `connection to Argo CD closed mid-answer`, { where });
    } finally {
      deadline?.clear();
    }
  }

  /** Maps a non-2xx answer to a GitopsError. `what` names the object, e.g. `application "web"`. */
  httpError(method: string, path: string, r: { status: number; text: string }, what: string): ArgoHttpError {
    const { message, grpcCode } = parseErrorBody(r.text);
    const where = redactUrl(this.conn.baseUrl + path);
    const mk = (kind: ErrorInit['kind'], code: ErrorInit['code'], msg: string, hint?: string) => new ArgoHttpError({ kind, code, message: msg, where, hint }, r.status, grpcCode, message);
    if (r.status === 401) {
      return mk('auth', ArgoErrors.UNAUTHENTICATED, `Argo CD refused the credentials (401 ${message})`, this.token
        ? 'the token is missing, malformed, expired or revoked: create a new one (argocd proj role create-token / argocd account generate-token) and set ARGOCD_AUTH_TOKEN'
        : 'check ARGOCD_USERNAME / ARGOCD_PASSWORD, or use a token in ARGOCD_AUTH_TOKEN');
    }
    if (r.status === 403) {
      return mk('auth', ArgoErrors.PERMISSION_DENIED, `Argo CD denied ${method} on ${what} (403 ${message})`, message.includes('sync window')
        ? 'a sync window blocks syncing now'
        : 'the token needs the RBAC rights `applications, get` (and `applications, sync` to sync or terminate) on <project>/<app>; without --project Argo CD also answers 403 for an app that does not exist, so check the name and --app-namespace');
    }
    if (r.status === 404) return mk('usage', ArgoErrors.APP_NOT_FOUND, `${what} not found (404 ${message})`, 'check the app name, --app-namespace and --project');
    if (r.status >= 500 || r.status === 429 || r.status === 408) return mk('transient', ArgoErrors.UNAVAILABLE, `Argo CD answered ${r.status} to ${method} (${message || 'no message'})`, 'a server-side or proxy problem; retry later');
    return mk('failed', ArgoErrors.REJECTED, `Argo CD rejected ${method} on ${what} (${r.status} ${message})`);
  }

  async json<T>(method: string, path: string, what: string, opts: CallOpts = {}): Promise<T> {
    const r = await this.raw(method, path, opts);
    if (r.status < 200 || r.status >= 300) throw this.httpError(method, path, r, what);
    try {
      return (r.text ? JSON.parse(r.text) : {}) as T;
    } catch {
      throw fail.transient(ArgoErrors.UNAVAILABLE, `Argo CD answered ${method} with a body that is not JSON (a proxy page?)`, { where: redactUrl(this.conn.baseUrl + path), details: [r.text.slice(0, 200)] });
    }
  }

  /** Exchanges username/password for a JWT when no token was given. */
  async login(): Promise<void> {
    if (this.token || !this.conn.username) return;
    let r: { token?: string } | undefined;
    for (let attempt = 1; !r; attempt++) {
      try {
        r = await this.json<{ token?: string }>('POST', '/api/v1/session', 'the session', { anonymous: true, body: { username: this.conn.username, password: this.conn.password } });
      } catch (e) {
        // a login that meets a restarting server is retried a little; the wait's own retries come later
        if (!(e instanceof GitopsError) || e.kind !== 'transient' || attempt >= 4) throw e;
        this.log.info(`Argo CD login: ${e.message}; retrying`);
        await new Promise((res) => setTimeout(res, 500 * attempt));
      }
    }
    if (!r.token) throw fail.auth(ArgoErrors.UNAUTHENTICATED, 'Argo CD returned no token for the login', { where: redactUrl(this.conn.baseUrl + '/api/v1/session') });
    addSecret(r.token);
    this.token = r.token;
  }

  static appPath(ref: AppRef, suffix = ''): string {
    return `/api/v1/applications/${encodeURIComponent(ref.name)}${suffix}`;
  }

  static appQuery(ref: AppRef, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return { appNamespace: ref.namespace, project: ref.project, ...extra };
  }

  getApp(ref: AppRef, opts: { refresh?: 'normal' | 'hard'; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Application> {
    return this.json<Application>('GET', ArgoClient.appPath(ref), `application "${appLabel(ref)}"`, {
      query: ArgoClient.appQuery(ref, { refresh: opts.refresh }),
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
    });
  }

  resourceTree(ref: AppRef, opts: { signal?: AbortSignal } = {}): Promise<ApplicationTree> {
    return this.json<ApplicationTree>('GET', ArgoClient.appPath(ref, '/resource-tree'), `the resource tree of "${appLabel(ref)}"`, { query: ArgoClient.appQuery(ref), signal: opts.signal });
  }

  sync(ref: AppRef, body: { revision?: string; prune?: boolean; infos?: Array<{ name: string; value: string }> }): Promise<Application> {
    return this.json<Application>('POST', ArgoClient.appPath(ref, '/sync'), `application "${appLabel(ref)}"`, {
      body: { name: ref.name, appNamespace: ref.namespace, project: ref.project, ...body },
    });
  }

  /** GET /api/v1/applications?selector=…: the apps a label selector matches (apps the token cannot read are left out) */
  async listApps(q: { selector?: string; appNamespace?: string; project?: string }, opts: { signal?: AbortSignal } = {}): Promise<Application[]> {
    const r = await this.json<{ items?: Application[] | null }>('GET', '/api/v1/applications', `the applications matching ${JSON.stringify(q.selector ?? '')}`, {
      query: { selector: q.selector, appNamespace: q.appNamespace, projects: q.project },
      signal: opts.signal,
    });
    return r.items ?? [];
  }

  /** GET /api/v1/applicationsets/{name} */
  getAppSet(name: string, namespace?: string): Promise<ApplicationSet> {
    return this.json<ApplicationSet>('GET', `/api/v1/applicationsets/${encodeURIComponent(name)}`, `ApplicationSet "${namespace ? `${namespace}/` : ''}${name}"`, { query: { appsetNamespace: namespace } });
  }

  /** GET /api/v1/applications/{name}/syncwindows: the project's windows for the app, and whether it may sync now */
  syncWindows(ref: AppRef, opts: { signal?: AbortSignal } = {}): Promise<SyncWindowsAnswer> {
    return this.json<SyncWindowsAnswer>('GET', ArgoClient.appPath(ref, '/syncwindows'), `the sync windows of "${appLabel(ref)}"`, { query: ArgoClient.appQuery(ref), signal: opts.signal });
  }

  /** GET /api/v1/applications/{name}/resource: one live resource of the app, parsed from its manifest string */
  async liveResource(ref: AppRef, r: ResourceKey, opts: { signal?: AbortSignal } = {}): Promise<Record<string, any>> {
    const ans = await this.json<{ manifest?: string }>('GET', ArgoClient.appPath(ref, '/resource'), `${r.kind}/${r.name} of "${appLabel(ref)}"`, {
      query: ArgoClient.appQuery(ref, { namespace: r.namespace, resourceName: r.name, version: r.version, group: r.group, kind: r.kind }),
      signal: opts.signal,
    });
    return ans.manifest ? (JSON.parse(ans.manifest) as Record<string, any>) : {};
  }

  /** DELETE /api/v1/applications/{name}?cascade=true: the app and (cascade) its resources */
  deleteApp(ref: AppRef, o: { cascade?: boolean } = {}): Promise<unknown> {
    return this.json('DELETE', ArgoClient.appPath(ref), `application "${appLabel(ref)}"`, { query: ArgoClient.appQuery(ref, { cascade: String(o.cascade ?? true) }) });
  }

  terminate(ref: AppRef): Promise<unknown> {
    return this.json('DELETE', ArgoClient.appPath(ref, '/operation'), `the operation of "${appLabel(ref)}"`, { query: ArgoClient.appQuery(ref) });
  }

  /**
   * Follows GET /api/v1/stream/applications?name=… (newline-delimited JSON). Calls onEvent per event;
   * resolves when the server ends the stream, the idle timeout passes or the signal aborts; throws a
   * GitopsError when the stream cannot be opened or carries an error object.
   */
  async watch(
    ref: AppRef,
    opts: { resourceVersion?: string; signal: AbortSignal; idleTimeoutMs: number; onEvent: (type: string, app: Application) => void },
  ): Promise<{ events: number; ended: 'server' | 'idle' | 'aborted' }> {
    const path = '/api/v1/stream/applications';
    const u = this.url(path, { name: ref.name, appNamespace: ref.namespace, projects: ref.project, resourceVersion: opts.resourceVersion });
    const where = redactUrl(`${u.origin}${u.pathname}`);
    this.log.debug(`argocd: GET ${redactUrl(u.toString())} (watch)`);
    const { res } = await this.open('GET', u, { signal: opts.signal, timeoutMs: this.conn.requestTimeoutMs, streaming: true });
    const status = res.statusCode ?? 0;
    const ctype = String(res.headers['content-type'] ?? '');
    if (status < 200 || status >= 300 || !ctype.includes('json')) {
      if (status >= 200 && status < 300) {
        res.destroy();
        throw fail.failed(ArgoErrors.REJECTED, `the watch stream answered ${ctype || 'no content type'}, not JSON`, { where });
      }
      // only the start of an error body: a server that keeps sending is not read for ever
      const text = await new Promise<string>((resolve) => {
        const t = setTimeout(() => res.destroy(), this.conn.requestTimeoutMs);
        readBody(res, ERROR_BODY_BYTES, { truncate: true }).then(
          (b) => resolve(b.toString('utf8')),
          () => resolve(''),
        ).finally(() => clearTimeout(t));
      });
      throw this.httpError('GET', path, { status, text }, `the watch of "${appLabel(ref)}"`);
    }
    return await new Promise((resolve, reject) => {
      let buf = '';
      let events = 0;
      let done = false;
      const onAbort = () => finish('aborted');
      const finish = (how: 'server' | 'idle' | 'aborted', err?: GitopsError) => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        // one watch per reconnect on the same signal: a listener left behind per stream adds up (MaxListeners)
        opts.signal.removeEventListener('abort', onAbort);
        res.destroy();
        if (err) reject(err);
        else resolve({ events, ended: how });
      };
      let idle = setTimeout(() => finish('idle'), opts.idleTimeoutMs);
      const onLine = (line: string) => {
        if (!line.trim()) return;
        let j: { result?: { type?: string; application?: Application }; error?: { message?: string; http_code?: number; grpc_code?: number } };
        try {
          j = JSON.parse(line);
        } catch {
          return finish('server', fail.transient(ArgoErrors.UNAVAILABLE, 'the watch stream sent a line that is not JSON', { where }));
        }
        if (j.error) {
          return finish('server', this.httpError('GET', path, { status: j.error.http_code ?? 500, text: JSON.stringify(j) }, `the watch of "${appLabel(ref)}"`));
        }
        if (j.result?.application) {
          events++;
          try {
            opts.onEvent(j.result.type ?? 'MODIFIED', j.result.application);
          } catch (e) {
            return finish('server', e instanceof GitopsError ? e : fail.failed(ArgoErrors.REJECTED, String(e)));
          }
        }
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        clearTimeout(idle);
        idle = setTimeout(() => finish('idle'), opts.idleTimeoutMs);
        buf += chunk;
        if (buf.length > this.maxBytes && buf.lastIndexOf('\n') < 0) {
          // one event larger than any answer we read: not buffered further
          return finish('server', fail.failed(ArgoErrors.TOO_LARGE, `an event of the watch stream is larger than ${formatBytes(this.maxBytes)}; it was not read`, { where, hint: 'check that --server points at Argo CD and not at a proxy or another server' }));
        }
        let i: number;
        while (!done && (i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          onLine(line);
        }
      });
      res.on('end', () => {
        if (buf) onLine(buf);
        finish('server');
      });
      res.on('aborted', () => finish('server'));
      res.on('error', (e) => (opts.signal.aborted ? finish('aborted') : finish('server', this.networkError(e, 'GET', where))));
      if (opts.signal.aborted) finish('aborted');
      else opts.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
