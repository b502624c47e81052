/**
 * A client of the OCI distribution API (registry v2), without a Docker engine.
 *
 * - Transport: HTTPS, verified against the system CAs plus --ca-file. With --insecure, or for a loopback
 *   registry (docker's rule: 127.0.0.0/8 and localhost are insecure registries), HTTPS is tried first and
 *   plain HTTP is used when the server answers HTTPS with plain HTTP. --insecure also skips certificate
 *   verification; loopback alone does not.
 * - Auth: `GET /v2/` tells which scheme the registry wants. Basic: the credentials on every request.
 *   Bearer: a token from the realm (`?service=…&scope=…`, with the credentials as basic auth), per scope set.
 * - Faults: 5xx, 429 and connection resets/refusals are retried with exponential backoff (bounded: 5
 *   attempts by default, GITOPS_RETRY_ATTEMPTS); 401/403/404 are not retried.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fail, isGitopsError, isTransientErrno, type GitopsError } from '../core/errors.js';
import { addSecret } from '../core/mask.js';
import { apiHost, isLoopback } from './ref.js';
import { ERROR_BODY_BYTES, formatBytes, formatMs, isBoundError, KEEP_ALIVE, readBody, watchDeadline } from '../core/http.js';
import type { CredentialStore, Credentials } from './auth.js';

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
export const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

export interface ClientOptions {
  creds: CredentialStore;
  insecure?: boolean;
  caFile?: string;
  /** debug logger */
  debug?: (msg: string) => void;
  /** retry attempts for one operation (default 5) */
  attempts?: number;
  /** first backoff delay in ms (default 200, doubled each time, at most 3 s) */
  backoffMs?: number;
  /** Date.now() ms after which no request is started or waited for (EREGISTRY_TIMEOUT, exit 4) */
  deadline?: number;
  /** largest body read into memory: manifests, token answers (default 4 MiB) */
  maxBytes?: number;
  /** total time of one buffered exchange (default 60 s, and never past `deadline`) */
  requestTimeoutMs?: number;
}

/**
 * The largest manifest (or token answer) read: the OCI distribution spec asks registries to accept manifests
 * of at least 4 MiB and lets them refuse larger ones, and containerd reads no more either.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests
 */
export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

/** `sha256:` and 64 lowercase hex digits: the only digest form we accept from a registry */
export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

export interface Manifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

/** an HTTP-level outcome that is worth retrying */
class Transient extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

interface Challenge {
  scheme: 'basic' | 'bearer' | 'none';
  realm?: string;
  service?: string;
}


export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function parseChallenge(h: string | undefined): Challenge {
  if (!h) return { scheme: 'none' };
  const m = /^(\w+)\s*(.*)$/.exec(h.trim());
  if (!m) return { scheme: 'none' };
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/(\w+)="([^"]*)"/g)) params[p[1].toLowerCase()] = p[2];
  const scheme = m[1].toLowerCase();
  if (scheme === 'bearer') return { scheme: 'bearer', realm: params.realm, service: params.service };
  if (scheme === 'basic') return { scheme: 'basic' };
  return { scheme: 'none' };
}

function registryErrors(body: Buffer): string {
  try {
    const j = JSON.parse(body.toString()) as { errors?: Array<{ code?: string; message?: string }> };
    const e = (j.errors ?? []).map((x) => [x.code, x.message].filter(Boolean).join(': ')).filter(Boolean);
    if (e.length) return e.join('; ');
  } catch {
    /* not JSON */
  }
  return body.toString().trim().slice(0, 200);
}

const TLS_CODES = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_NOT_YET_VALID']);

function isPlainHttpAnswer(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === 'EPROTO' || /wrong version number|packet length too long|http request/i.test(err?.message ?? '');
}

export class RegistryClient {
  readonly registry: string;
  readonly host: string;
  private scheme?: 'https' | 'http';
  private challenge?: Challenge;
  private readonly tokens = new Map<string, string>();
  private readonly creds?: Credentials;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ ...KEEP_ALIVE, maxSockets: 8 });
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly debug: (m: string) => void;
  /** counters, for summaries and tests */
  readonly stats = { requests: 0, retries: 0 };

  constructor(
    registry: string,
    private readonly opts: ClientOptions,
  ) {
    this.registry = registry;
    this.host = apiHost(registry);
    this.creds = opts.creds.get(registry);
    let ca: string[] | undefined;
    if (opts.caFile) {
      try {
        ca = [...rootCertificates, readFileSync(opts.caFile, 'utf8')];
      } catch (e) {
        throw fail.usage('EREGISTRY_CA_FILE', `cannot read the CA file: ${(e as Error).message}`, { where: opts.caFile });
      }
    }
    this.httpsAgent = new https.Agent({ ...KEEP_ALIVE, maxSockets: 8, ca, rejectUnauthorized: !opts.insecure });
    this.attempts = opts.attempts ?? 5;
    this.backoffMs = opts.backoffMs ?? 200;
    this.debug = opts.debug ?? (() => undefined);
  }

  get mayUsePlainHttp(): boolean {
    return !!this.opts.insecure || isLoopback(this.host);
  }

  private url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.scheme ?? 'https'}://${this.host}${path}`;
  }

  /**
   * One HTTP exchange. Buffered (not `stream`): bounded (src/core/http.ts): the whole exchange within
   * requestTimeoutMs (and the command's deadline), however slowly the bytes come, and a body of at most
   * maxBytes (error bodies: their first 64 KiB). Streamed (blob downloads, uploads): an idle timeout, and the
   * command's deadline when it has one; the caller reads the body.
   */
  private send(method: string, url: string, headers: Record<string, string>, body?: Buffer | Readable, stream = false): Promise<{ res: IncomingMessage; body?: Buffer }> {
    this.stats.requests++;
    const u = new URL(url);
    const mod = u.protocol === 'http:' ? http : https;
    const agent = u.protocol === 'http:' ? this.httpAgent : this.httpsAgent;
    const perRequest = this.opts.requestTimeoutMs ?? 60_000;
    const left = this.opts.deadline === undefined ? perRequest : Math.max(1, Math.min(perRequest, this.opts.deadline - Date.now()));
    const maxBytes = this.opts.maxBytes ?? MANIFEST_MAX_BYTES;
    const what = `${this.host}'s answer to ${method} ${u.pathname}`;
    const streamedBody = !!body && typeof (body as Readable).pipe === 'function';
    return new Promise((resolve, reject) => {
      const req = mod.request(u, { method, headers: { 'User-Agent': 'gitops-ci', ...headers }, agent, timeout: Math.min(left, 60_000) }, (res) => {
        if (stream) {
          // the caller reads the blob: the command's deadline (when it has one) holds until the body ends
          res.on('close', () => deadline?.clear());
          return resolve({ res });
        }
        const st = res.statusCode ?? 0;
        const ok = st >= 200 && st < 300;
        // a HEAD has no body: its Content-Length is the size of what a GET would send (a blob's: gigabytes)
        readBody(res, ok ? maxBytes : ERROR_BODY_BYTES, { truncate: !ok || method === 'HEAD', what }).then(
          (b) => {
            deadline?.clear();
            resolve({ res, body: b });
          },
          (e) => {
            deadline?.clear();
            reject(deadline?.expired ? deadline.error : e);
          },
        );
      });
      // a blob going up or coming down takes as long as its size needs: only the command's deadline (and the
      // idle timeout) bound it; every other exchange is bounded in total
      const total = stream || streamedBody ? (this.opts.deadline === undefined ? undefined : Math.max(1, this.opts.deadline - Date.now())) : left;
      const deadline = total === undefined ? undefined : watchDeadline(req, total, what);
      req.on('error', (e) => {
        deadline?.clear();
        reject(deadline?.expired ? deadline.error : e);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      if (streamedBody) {
        const s = body as Readable;
        s.on('error', (e) => req.destroy(e));
        s.pipe(req);
      } else {
        req.end(body);
      }
    });
  }

  /** classify a low-level failure: Transient (retry), or a final GitopsError */
  private classify(e: unknown, what: string): Error {
    if (isGitopsError(e) || e instanceof Transient) return e as Error;
    if (isBoundError(e, 'deadline')) {
      return fail.timeout('EREGISTRY_TIMEOUT', `${this.host} did not finish answering ${what} within ${formatMs(e.limit)}`, { where: what, hint: 'the registry, or a proxy in between, is stalling; check it, or raise --timeout' });
    }
    if (isBoundError(e, 'too-large')) {
      return fail.failed('EREGISTRY_TOO_LARGE', `${this.host}'s answer to ${what} is larger than ${formatBytes(e.limit)}; it was not read`, { where: what, hint: 'no manifest or token answer is this large: check that the host is a registry and not a proxy or another server' });
    }
    if (e instanceof RegistryHttpError) {
      if (e.status === 404) return fail.failed('EREGISTRY_NOT_FOUND', `not found: ${e.what}${e.detail ? ` (${e.detail})` : ''}`, { where: e.what });
      return fail.failed('EREGISTRY_PROTOCOL', `${e.what} answered ${e.status}${e.detail ? `: ${e.detail}` : ''}`, { where: e.what });
    }
    const code = (e as { code?: string }).code ?? '';
    if (TLS_CODES.has(code)) {
      return fail.failed('EREGISTRY_TLS', `cannot verify the TLS certificate of ${this.host}: ${(e as Error).message}`, {
        where: what,
        hint: 'pass the CA certificate with --ca-file (or GITOPS_REGISTRY_CA_FILE), or --insecure for a test registry',
      });
    }
    if (isTransientErrno(e) || /socket hang up|ECONNRESET|aborted/i.test((e as Error).message ?? '')) return new Transient(`${code || 'network error'}: ${(e as Error).message}`);
    return fail.failed('EREGISTRY_PROTOCOL', `request to ${this.host} failed: ${(e as Error).message}`, { where: what });
  }

  /** run `op` with bounded exponential backoff on Transient errors */
  async retry<T>(what: string, op: () => Promise<T>): Promise<T> {
    let last: Transient | undefined;
    const pastDeadline = () =>
      fail.timeout('EREGISTRY_TIMEOUT', `${this.host} did not answer ${what} within --timeout${last ? ` (${last.message})` : ''}`, { where: what, hint: 'raise --timeout, or check the registry and the network' });
    for (let i = 0; i < this.attempts; i++) {
      if (this.opts.deadline !== undefined && Date.now() >= this.opts.deadline) throw pastDeadline();
      if (i > 0) {
        const delay = Math.min(this.backoffMs * 2 ** (i - 1), 3000) * (0.75 + Math.random() * 0.5);
        this.stats.retries++;
        this.debug(`retrying ${what} in ${Math.round(delay)} ms (${last?.message})`);
        await sleep(delay);
      }
      try {
        return await op();
      } catch (e) {
        const c = this.classify(e, what);
        if (!(c instanceof Transient)) throw c;
        last = c;
        if (this.opts.deadline !== undefined && Date.now() >= this.opts.deadline) throw pastDeadline();
      }
    }
    if (last?.status) {
      throw fail.transient('EREGISTRY_UNAVAILABLE', `${this.host} answered ${last.status} to ${what}, ${this.attempts} times`, { where: what, hint: 'the registry is unavailable; run the job again later' });
    }
    throw fail.transient('EREGISTRY_NETWORK', `cannot reach ${this.host} for ${what} (${last?.message}), after ${this.attempts} attempts`, { where: what, hint: 'check the network and the registry; run the job again later' });
  }

  /** GET /v2/: choose the scheme and learn the auth challenge */
  private pinging?: Promise<void>;
  ping(): Promise<void> {
    if (this.scheme && this.challenge) return Promise.resolve();
    // concurrent callers share one ping (and one scheme decision)
    this.pinging ??= this.doPing().finally(() => {
      this.pinging = undefined;
    });
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    await this.retry('GET /v2/', async () => {
      let r: { res: IncomingMessage; body?: Buffer };
      try {
        this.scheme ??= 'https';
        r = await this.send('GET', this.url('/v2/'), {});
      } catch (e) {
        if (this.scheme === 'https' && this.mayUsePlainHttp && isPlainHttpAnswer(e)) {
          this.debug(`${this.host} speaks plain HTTP; using http://`);
          this.scheme = 'http';
          r = await this.send('GET', this.url('/v2/'), {});
        } else throw e;
      }
      const st = r.res.statusCode ?? 0;
      if (st >= 500 || st === 429) throw new Transient(`HTTP ${st}`, st);
      // a registry says so (Docker-Distribution-API-Version: registry/2.0, or a JSON answer as the OCI spec
      // allows); an SSO or proxy page answering 200 text/html to everything is not one, whatever it accepts
      const apiVersion = String(r.res.headers['docker-distribution-api-version'] ?? '');
      const type = String(r.res.headers['content-type'] ?? '');
      if ((st === 200 || st === 401) && !/^registry\/2/i.test(apiVersion) && !/json/i.test(type)) {
        throw fail.failed('EREGISTRY_PROTOCOL', `${this.host} does not serve the registry API: GET /v2/ answered ${st} ${type || 'without a content type'} and no Docker-Distribution-API-Version header (a login page or a proxy?)`, {
          where: this.url('/v2/'),
          hint: 'check the registry host name; a registry behind SSO needs a path that bypasses it',
        });
      }
      if (st === 401) this.challenge = parseChallenge(String(r.res.headers['www-authenticate'] ?? ''));
      else if (st === 200) this.challenge = { scheme: 'none' };
      else if (st === 404) throw fail.failed('EREGISTRY_PROTOCOL', `${this.host} does not serve the registry API (GET /v2/ answered 404)`, { where: this.url('/v2/') });
      else this.challenge = parseChallenge(String(r.res.headers['www-authenticate'] ?? ''));
    });
  }

  private basicHeader(): string | undefined {
    if (!this.creds?.username || this.creds.password === undefined) return undefined;
    return `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password}`).toString('base64')}`;
  }

  private authError(status: number, what: string, body?: Buffer): GitopsError {
    const detail = body?.length ? ` (${registryErrors(body)})` : '';
    if (status === 403) {
      return fail.auth('EREGISTRY_DENIED', `${this.host} refused ${what}: permission denied${detail}`, {
        where: what,
        hint: `the credentials from ${this.creds?.source ?? '(none)'} may not do this; check the user's role on the repository`,
      });
    }
    return fail.auth('EREGISTRY_AUTH', `${this.host} refused ${what}: authentication required or credentials wrong${detail}`, {
      where: what,
      hint: this.creds
        ? `check the credentials from ${this.creds.source}`
        : 'no credentials for this registry: set CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (for CI_REGISTRY), DOCKER_AUTH_CONFIG, or --registry-user with GITOPS_REGISTRY_PASSWORD',
    });
  }

  private async token(scopes: string[], force = false): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch?.realm) return undefined;
    const key = [...scopes].sort().join(' ');
    if (!force && this.tokens.has(key)) return this.tokens.get(key);
    const u = new URL(ch.realm);
    if (ch.service) u.searchParams.set('service', ch.service);
    for (const s of scopes) u.searchParams.append('scope', s);
    const tok = await this.retry('token request', async () => {
      let r: { res: IncomingMessage; body?: Buffer };
      if (this.creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.creds.identityToken, service: ch.service ?? '', scope: scopes.join(' '), client_id: 'gitops-ci' });
        r = await this.send('POST', ch.realm!, { 'Content-Type': 'application/x-www-form-urlencoded' }, Buffer.from(form.toString()));
      } else {
        const b = this.basicHeader();
        r = await this.send('GET', u.toString(), b ? { Authorization: b } : {});
      }
      const st = r.res.statusCode ?? 0;
      if (st >= 500 || st === 429) throw new Transient(`HTTP ${st}`, st);
      if (st === 401 || st === 403) throw this.authError(st, `token request for ${scopes.join(' ')}`, r.body);
      if (st !== 200) throw fail.failed('EREGISTRY_PROTOCOL', `token endpoint answered ${st}`, { where: ch.realm });
      try {
        const j = JSON.parse(r.body!.toString()) as { token?: string; access_token?: string };
        const t = j.token ?? j.access_token;
        if (!t) throw new Error('no token');
        // a credential of its own (it authorises pulls and pushes until it expires): masked wherever it might be printed
        addSecret(t);
        return t;
      } catch {
        throw fail.failed('EREGISTRY_PROTOCOL', 'token endpoint answered without a token', { where: ch.realm });
      }
    });
    this.tokens.set(key, tok);
    return tok;
  }

  private async authHeaders(scopes: string[], force = false): Promise<Record<string, string>> {
    await this.ping();
    const ch = this.challenge!;
    if (ch.scheme === 'basic') {
      const b = this.basicHeader();
      return b ? { Authorization: b } : {};
    }
    if (ch.scheme === 'bearer') {
      const t = await this.token(scopes, force);
      return t ? { Authorization: `Bearer ${t}` } : {};
    }
    return {};
  }

  /**
   * One authenticated request (not retried here: callers wrap whole operations in retry()). A 401 is
   * answered once with fresh auth; a second 401 is an auth error. 5xx/429 throw Transient.
   */
  async request(method: string, path: string, o: { scopes: string[]; headers?: Record<string, string>; body?: () => Buffer | Readable | undefined; ok: number[]; stream?: boolean }): Promise<{ res: IncomingMessage; body?: Buffer }> {
    const what = `${method} ${this.url(path)}`;
    let forced = false;
    for (;;) {
      // credentials go to the registry only, never to another host a Location header points at
      const sameHost = new URL(this.url(path)).host === new URL(this.url('/')).host;
      const auth = sameHost ? await this.authHeaders(o.scopes, forced) : {};
      const r = await this.send(method, this.url(path), { ...auth, ...(o.headers ?? {}) }, o.body?.(), o.stream).catch((e) => {
        throw this.classify(e, what);
      });
      const st = r.res.statusCode ?? 0;
      if (o.ok.includes(st)) return r;
      const body = r.body ?? (await drain(r.res));
      if (st === 401) {
        const ch = parseChallenge(String(r.res.headers['www-authenticate'] ?? ''));
        if (!forced && (ch.scheme !== this.challenge?.scheme || ch.scheme === 'bearer')) {
          if (ch.scheme !== 'none') this.challenge = ch;
          forced = true;
          continue;
        }
        throw this.authError(401, what, body);
      }
      if (st === 403) throw this.authError(403, what, body);
      if (st >= 500 || st === 429) throw new Transient(`HTTP ${st} on ${what}`, st);
      const err = new RegistryHttpError(st, what, registryErrors(body));
      throw err;
    }
  }

  // ------------------------------------------------------------------ manifests

  /**
   * HEAD a manifest: its digest, or undefined when the tag or digest does not exist. The digest is the
   * registry's word (a HEAD has no bytes to hash), refused unless it is `sha256:<64 hex>`; where the digest
   * will be pinned or promoted, use resolveManifest(), which hashes the bytes.
   */
  async headManifest(repo: string, reference: string): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    return this.retry(`HEAD ${repo}:${reference}`, async () => {
      try {
        const r = await this.request('HEAD', `/v2/${repo}/manifests/${reference}`, { scopes: [`repository:${repo}:pull`], headers: { Accept: MANIFEST_TYPES.join(', ') }, ok: [200] });
        const digest = String(r.res.headers['docker-content-digest'] ?? '');
        if (!digest) {
          const m = await this.getManifest(repo, reference);
          return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
        }
        this.checkDigestForm(digest, repo, reference);
        return { digest, mediaType: String(r.res.headers['content-type'] ?? ''), size: Number(r.res.headers['content-length'] ?? 0) };
      } catch (e) {
        if (e instanceof RegistryHttpError && e.status === 404) return undefined;
        throw e;
      }
    });
  }

  /**
   * The digest behind a tag (or a digest), checked: the manifest is read (GET) and its bytes hashed; a
   * Docker-Content-Digest header that is malformed or names other bytes is refused (getManifest). undefined
   * when the tag does not exist.
   */
  async resolveManifest(repo: string, reference: string): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    try {
      const m = await this.getManifest(repo, reference);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    } catch (e) {
      if (isGitopsError(e) && e.code === 'EREGISTRY_NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** a Docker-Content-Digest header must be `sha256:<64 lowercase hex>`; anything else is refused */
  private checkDigestForm(header: string, repo: string, reference: string): void {
    if (isDigest(header)) return;
    throw fail.failed('EREGISTRY_DIGEST', `${this.host} answered ${repo}:${reference} with Docker-Content-Digest ${JSON.stringify(header.slice(0, 100))}${header.length > 100 ? '…' : ''}, which is not sha256:<64 hex digits>; refused`, {
      where: `${this.host}/${repo}`,
      hint: 'the registry (or a proxy in front of it) sends a digest that cannot be checked; nothing was pinned or copied',
    });
  }

  async getManifest(repo: string, reference: string): Promise<Manifest> {
    return this.retry(`GET ${repo} manifest ${reference}`, async () => {
      let r;
      try {
        r = await this.request('GET', `/v2/${repo}/manifests/${reference}`, { scopes: [`repository:${repo}:pull`], headers: { Accept: MANIFEST_TYPES.join(', ') }, ok: [200] });
      } catch (e) {
        if (e instanceof RegistryHttpError && e.status === 404) throw notFound(this.host, repo, reference, e.detail);
        throw e;
      }
      const bytes = r.body!;
      const digest = sha256(bytes);
      const header = String(r.res.headers['docker-content-digest'] ?? '');
      if (reference.startsWith('sha256:') && digest !== reference) throw fail.failed('EREGISTRY_DIGEST', `manifest ${reference} of ${repo} has digest ${digest}`, { where: `${this.host}/${repo}` });
      // the header names the bytes it came with: a registry whose header and bytes disagree is not believed
      if (header) {
        this.checkDigestForm(header, repo, reference);
        if (header !== digest) {
          throw fail.failed('EREGISTRY_DIGEST', `${this.host} says ${repo}:${reference} is ${header}, but the manifest it sent hashes to ${digest}; refused`, {
            where: `${this.host}/${repo}`,
            hint: 'the registry (or a proxy in front of it) serves other bytes than the digest it names; nothing was pinned or copied',
          });
        }
      }
      let mediaType = String(r.res.headers['content-type'] ?? '').split(';')[0].trim();
      try {
        const j = JSON.parse(bytes.toString()) as { mediaType?: string };
        if (j.mediaType) mediaType = j.mediaType;
      } catch {
        throw fail.failed('EREGISTRY_PROTOCOL', `manifest ${reference} of ${repo} is not JSON`, { where: `${this.host}/${repo}` });
      }
      return { bytes, mediaType, digest };
    });
  }

  /** PUT the manifest bytes unchanged; returns the digest the registry reports */
  async putManifest(repo: string, reference: string, m: Manifest): Promise<string> {
    return this.retry(`PUT ${repo} manifest ${reference}`, async () => {
      let r;
      try {
        r = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, { scopes: [`repository:${repo}:pull,push`], headers: { 'Content-Type': m.mediaType, 'Content-Length': String(m.bytes.length) }, body: () => m.bytes, ok: [201, 200] });
      } catch (e) {
        if (e instanceof RegistryHttpError) throw fail.failed('EREGISTRY_PROTOCOL', `${this.host} rejected manifest ${reference} for ${repo}: ${e.status} ${e.detail}`, { where: e.what });
        throw e;
      }
      const d = String(r.res.headers['docker-content-digest'] ?? '') || m.digest;
      this.checkDigestForm(d, repo, reference);
      if (d !== m.digest) throw fail.failed('EREGISTRY_DIGEST', `${this.host} stored manifest ${reference} with digest ${d}, expected ${m.digest}`, { where: `${this.host}/${repo}` });
      return d;
    });
  }

  // ------------------------------------------------------------------ blobs

  async blobExists(repo: string, digest: string): Promise<boolean> {
    return this.retry(`HEAD ${repo} blob`, async () => {
      try {
        await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes: [`repository:${repo}:pull`], ok: [200, 307] });
        return true;
      } catch (e) {
        if (e instanceof RegistryHttpError && e.status === 404) return false;
        if (isGitopsError(e) && e.kind === 'auth') return false; // no pull right on the target: upload will tell
        throw e;
      }
    });
  }

  /** a readable of the blob's bytes (follows redirects to storage, without credentials) */
  async blobStream(repo: string, digest: string): Promise<IncomingMessage> {
    let r = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { scopes: [`repository:${repo}:pull`], ok: [200, 307, 302, 303], stream: true });
    for (let hops = 0; r.res.statusCode !== 200 && hops < 5; hops++) {
      const loc = String(r.res.headers.location ?? '');
      r.res.resume();
      const target = new URL(loc, this.url('/')).toString();
      r = await this.send('GET', target, {}, undefined, true).catch((e) => {
        throw this.classify(e, `GET ${target}`);
      });
      const st = r.res.statusCode ?? 0;
      if (st >= 500) throw new Transient(`HTTP ${st} on blob download`, st);
    }
    if (r.res.statusCode !== 200) throw fail.failed('EREGISTRY_PROTOCOL', `blob ${digest} download answered ${r.res.statusCode}`, { where: `${this.host}/${repo}` });
    return r.res;
  }

  /** cross-repository mount on this registry; true when mounted */
  async mountBlob(repo: string, digest: string, from: string): Promise<{ mounted: boolean; location?: string }> {
    return this.retry(`mount ${digest.slice(0, 19)} into ${repo}`, async () => {
      const r = await this.request('POST', `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, {
        scopes: [`repository:${repo}:pull,push`, `repository:${from}:pull`],
        headers: { 'Content-Length': '0' },
        ok: [201, 202],
      });
      if (r.res.statusCode === 201) return { mounted: true };
      return { mounted: false, location: String(r.res.headers.location ?? '') || undefined };
    });
  }

  /**
   * That the credentials may push to `repo`, before anything is pushed: an upload is opened (the request every
   * push starts with, with push scope) and cancelled at once, as the distribution spec allows
   * (https://distribution.github.io/distribution/spec/api/#canceling-an-upload); nothing is written. A
   * refusal is EREGISTRY_AUTH / EREGISTRY_DENIED (3).
   */
  async checkPush(repo: string): Promise<void> {
    const scopes = [`repository:${repo}:pull,push`];
    await this.retry(`push to ${repo}`, async () => {
      const r = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scopes, headers: { 'Content-Length': '0' }, ok: [202] });
      const loc = String(r.res.headers.location ?? '');
      // an upload left open expires on the registry's own (distribution: after a week of no use); the cancel is best effort
      if (loc) await this.request('DELETE', new URL(loc, this.url('/')).toString(), { scopes, ok: [200, 202, 204, 404] }).catch(() => undefined);
    });
  }

  /**
   * Upload a blob monolithically: POST to open an upload, PUT the bytes with the digest. The whole
   * exchange is the unit of retry: a broken upload is abandoned and a new one opened, so an interrupted
   * copy or push can simply be run again.
   */
  async uploadBlob(repo: string, digest: string, size: number, source: () => Promise<Readable | Buffer>, location?: string): Promise<void> {
    let loc = location;
    await this.retry(`upload ${digest.slice(0, 19)} to ${repo}`, async () => {
      if (!loc) {
        const r = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { scopes: [`repository:${repo}:pull,push`], headers: { 'Content-Length': '0' }, ok: [202] });
        loc = String(r.res.headers.location ?? '');
        if (!loc) throw fail.failed('EREGISTRY_PROTOCOL', 'upload opened without a Location', { where: `${this.host}/${repo}` });
      }
      const u = new URL(loc, this.url('/'));
      u.searchParams.set('digest', digest);
      const body = await source();
      const target = u.toString();
      loc = undefined; // a retry opens a new upload
      try {
        await this.request('PUT', target, {
          scopes: [`repository:${repo}:pull,push`],
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
          body: () => body,
          ok: [201, 204],
        });
      } catch (e) {
        if (!Buffer.isBuffer(body)) (body as Readable).destroy();
        if (e instanceof RegistryHttpError && e.status === 400) throw fail.failed('EREGISTRY_DIGEST', `${this.host} rejected blob ${digest}: ${e.detail}`, { where: `${this.host}/${repo}` });
        throw e;
      }
    });
  }
}

export class RegistryHttpError extends Error {
  constructor(
    readonly status: number,
    readonly what: string,
    readonly detail: string,
  ) {
    super(`${what} answered ${status}: ${detail}`);
  }
}

function notFound(host: string, repo: string, reference: string, detail: string): GitopsError {
  const what = reference.startsWith('sha256:') ? `${host}/${repo}@${reference}` : `${host}/${repo}:${reference}`;
  return fail.failed('EREGISTRY_NOT_FOUND', `${what} not found${detail ? ` (${detail})` : ''}`, { where: what, hint: 'check the repository and tag; was the image pushed?' });
}

/** the start of an error body of a streamed answer (64 KiB at most) */
function drain(res: IncomingMessage): Promise<Buffer> {
  return readBody(res, ERROR_BODY_BYTES, { truncate: true }).catch(() => Buffer.alloc(0));
}

/** one client per registry host, shared by a command */
export class Registries {
  private readonly clients = new Map<string, RegistryClient>();
  constructor(private readonly opts: ClientOptions) {}
  for(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      c = new RegistryClient(registry, this.opts);
      this.clients.set(registry, c);
    }
    return c;
  }
  get stats(): { requests: number; retries: number } {
    let requests = 0;
    let retries = 0;
    for (const c of this.clients.values()) {
      requests += c.stats.requests;
      retries += c.stats.retries;
    }
    return { requests, retries };
  }
}

export { Transient };
