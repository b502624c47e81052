/**
 * An Argo CD double for tests, `make demo` and the bench: a real HTTP server on 127.0.0.1:<random> that
 * speaks the REST contract of Argo CD v3.5.1 (the part we use: test/contracts/argocd-swagger.json), with a
 * controller loop over a REAL git remote.
 *
 *   const argo = await startArgoCdDouble({
 *     repoURL,                                   // bare repo path, or http URL (credentials allowed)
 *     apps: [{ name: 'shovel-staging', path: '.kubernetes/overlays/staging', targetRevision: 'main' }],
 *     token, pollIntervalMs: 3000, delays: { refreshMs: 50, syncMs: 200, healthyMs: 300 },
 *   });
 *   // argo.url, argo.token, argo.app('shovel-staging'), argo.setFault('shovel-staging', { degraded: true }), argo.stop()
 *
 * What it models:
 *  - auth: `Authorization: Bearer x.y.z` (3 segments, issued here) or the `argocd.token` cookie, else 401
 *    `no session information`; POST /api/v1/session exchanges username/password for a JWT-shaped token;
 *    non-GET requests need `Content-Type: application/json` exactly (else 415 text).
 *  - GET /api/v1/applications/{name}[?refresh=normal|hard] (the refresh blocks until reconciled),
 *    POST …/sync, DELETE …/operation, GET …/resource-tree, GET /api/v1/stream/applications?name= (NDJSON,
 *    initial ADDED then MODIFIED, dedup of identical events), POST /api/webhook (GitLab push events).
 *  - errors as grpc-gateway bodies {"error","code","message"} with the HTTP status of the gRPC code.
 *  - the controller: refresh resolves targetRevision with git, renders the path with `kubectl kustomize`,
 *    compares with the "live" state; auto-sync (default) or manual; an operation goes
 *    Running → Succeeded|Failed (operation cleared, finishedAt), then the post-sync reconcile
 *    (reconciledAt, Synced, Progressing) and Healthy|Degraded. Times have second precision, as on the wire.
 *  - ApplicationSets (cluster or git-directories generator; generated apps owned by the set, deleted when their
 *    directory goes), GET /api/v1/applications?selector=, DELETE …/{name} (deletionTimestamp, then a DELETED
 *    event), GET …/syncwindows, GET …/resource (the live object; a Rollout with its canary status).
 *  - faults: per app (degraded, syncFail, comparisonError, slowRefreshMs, syncWindow, busy, rollout) and per server
 *    (unavailable: n answers 503, dropStream, auth: 'unauthorized'|'forbidden').
 *  - recording: `onResponse` sees every response with the swagger definition it claims to be.
 */
import http from 'node:http';
import https from 'node:https';
import { randomBytes, randomUUID } from 'node:crypto';
import { RepoServer, type RenderedResource } from './render.js';

export interface DoubleAppSpec {
  name: string;
  /** Application namespace (default: the control plane's, `argocd`) */
  namespace?: string;
  project?: string;
  path: string;
  /** branch, tag, SHA or HEAD (default) */
  targetRevision?: string;
  /** automated sync (default true) */
  automated?: boolean;
  /** destination namespace (default: the app name) */
  destinationNamespace?: string;
  /** override the repo for this app */
  repoURL?: string;
  annotations?: Record<string, string>;
  /** metadata.labels (what `--selector` matches) */
  labels?: Record<string, string>;
}

/**
 * An ApplicationSet: a cluster generator (one app per cluster, `{{name}}`) or a git directories generator
 * (one app per directory matching `directories` at the tip of `revision`: `{{path}}`, `{{path.basename}}`,
 * `{{path.basenameNormalized}}`), rendered through `template` (every string field is substituted). The
 * generated apps carry an ownerReference to the set; a directory that disappears deletes its app.
 */
export interface DoubleAppSetSpec {
  name: string;
  clusters?: string[];
  directories?: string;
  /** branch the git generator reads (default main) */
  revision?: string;
  template: DoubleAppSpec;
}

/** an AppProject sync window (v1alpha1SyncWindow): a deny window is active from each cron match for `duration` */
export interface DoubleSyncWindow {
  kind: 'allow' | 'deny';
  schedule: string;
  duration: string;
  manualSync?: boolean;
}

export interface Delays {
  /** refresh: time to fetch + render before the comparison lands */
  refreshMs: number;
  /** from `operation` set to phase Running */
  operationStartMs: number;
  /** Running → Succeeded/Failed */
  syncMs: number;
  /** Succeeded → the post-sync reconcile (reconciledAt, Synced, Progressing) */
  reconcileMs: number;
  /** Progressing → Healthy/Degraded */
  healthyMs: number;
  /** a deleted app (finalizer) is gone after this long */
  deleteMs: number;
}

export interface AppFaults {
  /** after a sync: health Degraded with this message on the Deployment */
  degraded?: boolean | string;
  /** the sync operation fails with this message */
  syncFail?: boolean | string;
  /** refresh yields a ComparisonError condition */
  comparisonError?: boolean | string;
  /** refresh takes this much longer */
  slowRefreshMs?: number;
  /** a deny sync window is active: sync API answers 403, auto-sync waits; GET …/syncwindows shows it */
  syncWindow?: boolean | DoubleSyncWindow;
  /** an Argo Rollouts canary in the app, after its sync: paused at a step, or aborted */
  rollout?: 'paused' | 'aborted';
  /** the next n sync API calls answer "another operation is already in progress" */
  busy?: number;
}

export interface ServerFaults {
  /** the next n /api/v1 requests answer 503 */
  unavailable?: number;
  /** watch streams are cut after `afterEvents` events, `times` times */
  dropStream?: { afterEvents: number; times: number };
  /** the next n watch streams are accepted but stay silent (a proxy that buffers or a half-open connection) */
  stallStream?: number;
  /** the watch stream route is missing (a proxy that does not pass it): 404 text */
  streamUnavailable?: boolean;
  /** every authenticated request answers 401 (invalid session) or 403 (permission denied) */
  auth?: 'unauthorized' | 'forbidden';
}

export interface RecordedResponse {
  method: string;
  path: string;
  status: number;
  /** swagger definition the body claims to be, or a path-level schema key */
  schema?: string;
  /** parsed JSON body (or text for non-JSON) */
  body: unknown;
}

export interface ArgoCdDoubleOptions {
  repoURL: string;
  apps: DoubleAppSpec[];
  appsets?: DoubleAppSetSpec[];
  /** a fixed valid token (JWT-shaped); one is generated otherwise */
  token?: string;
  /** local accounts for POST /api/v1/session */
  users?: Record<string, string>;
  /** git polling of the controller (real Argo CD: 120 s + jitter); default 3000 */
  pollIntervalMs?: number;
  delays?: Partial<Delays>;
  /** webhook.gitlab.secret; empty = none configured */
  webhookSecret?: string;
  /** start with every app deployed (Synced/Healthy at the tip); default true */
  deployed?: boolean;
  onResponse?: (r: RecordedResponse) => void;
  port?: number;
  /** serve HTTPS with this key and certificate (PEM) */
  tls?: { key: string; cert: string };
}

export interface ArgoCdDouble {
  url: string;
  port: number;
  token: string;
  /** current Application JSON (as the API returns it) */
  app(name: string, namespace?: string): any;
  setFault(name: string, faults: AppFaults | undefined, namespace?: string): void;
  faults: ServerFaults;
  /** responses sent so far */
  readonly responses: RecordedResponse[];
  /** request log */
  readonly requests: Array<{ method: string; path: string; query: string }>;
  /** the bodies POSTed to /api/webhook, as received (for the no-secret-in-payloads checks) */
  readonly webhookBodies: string[];
  /** resolves when predicate(app) holds (checked on every change) */
  waitFor(name: string, predicate: (app: any) => boolean, timeoutMs?: number): Promise<any>;
  /** makes the controller poll git now (and the ApplicationSet controller regenerate) */
  pollNow(): void;
  /** names of the apps that exist now (namespace/name) */
  appNames(): string[];
  /** resolves when the app no longer exists */
  waitGone(name: string, timeoutMs?: number): Promise<void>;
  /** issue a token (JWT-shaped) */
  issueToken(sub?: string): string;
  stop(): Promise<void>;
}

const DEFAULT_DELAYS: Delays = { refreshMs: 100, operationStartMs: 50, syncMs: 300, reconcileMs: 100, healthyMs: 300, deleteMs: 200 };
const CONTROL_NS = 'argocd';
const REFRESH = 'argocd.argoproj.io/refresh';

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z'); // metav1.Time: RFC3339, seconds
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64url = (s: string) => Buffer.from(s).toString('base64url');

/** gRPC code → HTTP status (grpc-gateway HTTPStatusFromCode) */
const HTTP_OF: Record<number, number> = { 2: 500, 3: 400, 4: 504, 5: 404, 7: 403, 9: 400, 14: 503, 16: 401 };

interface LiveState {
  revision?: string;
  resources: RenderedResource[];
}

class AppState {
  spec: DoubleAppSpec;
  rv = 0;
  uid = randomUUID();
  created = now();
  annotations: Record<string, string>;
  operation: any = null;
  status: any = {};
  live: LiveState = { resources: [] };
  desired?: { revision: string; resources: RenderedResource[] };
  failedRevision?: string;
  faults: AppFaults = {};
  refreshRequested: 'normal' | 'hard' | undefined;
  looping = false;
  reconciling = false;
  dirty = false;
  terminate = false;
  healthByKey = new Map<string, { status: string; message?: string }>();
  historyId = 0;
  refreshWaiters: Array<() => void> = [];
  owner?: { name: string; uid: string };
  deletionTimestamp?: string;
  /** the Rollout's live status when a rollout fault applied (GET …/resource) */
  rolloutStatus?: Record<string, any>;
  constructor(spec: DoubleAppSpec) {
    this.spec = spec;
    this.annotations = { ...(spec.annotations ?? {}) };
  }
  get ns() {
    return this.spec.namespace ?? CONTROL_NS;
  }
  get key() {
    return `${this.ns}/${this.spec.name}`;
  }
  get automated() {
    return this.spec.automated !== false;
  }
}

function grpcError(code: number, message: string) {
  return { status: HTTP_OF[code] ?? 500, body: { error: message, code, message } };
}

export async function startArgoCdDouble(opts: ArgoCdDoubleOptions): Promise<ArgoCdDouble> {
  const delays: Delays = { ...DEFAULT_DELAYS, ...opts.delays };
  const pollIntervalMs = opts.pollIntervalMs ?? 3000;
  const displayRepo = (u: string) => u.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1');
  const repos = new Map<string, RepoServer>();
  const repoOf = async (u: string) => {
    let r = repos.get(u);
    if (!r) {
      r = new RepoServer(u);
      repos.set(u, r);
      await r.init();
    }
    return r;
  };
  const secretKey = randomBytes(16).toString('hex');
  const validTokens = new Set<string>();
  const issueToken = (sub = 'admin') => {
    const t = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss: 'argocd', sub, iat: Math.floor(Date.now() / 1000), jti: randomUUID() }))}.${b64url(secretKey + randomBytes(8).toString('hex'))}`;
    validTokens.add(t);
    return t;
  };
  const token = opts.token ?? issueToken('ci-bot');
  validTokens.add(token);
  const users = opts.users ?? {};
  const faults: ServerFaults = {};
  const responses: RecordedResponse[] = [];
  const requests: Array<{ method: string; path: string; query: string }> = [];
  const webhookBodies: string[] = [];
  let rvCounter = 1000;
  let stopped = false;
  const apps = new Map<string, AppState>();
  const listeners = new Map<string, Set<(app: any, type?: string) => void>>();

  const appRepo = (a: AppState) => a.spec.repoURL ?? opts.repoURL;
  const source = (a: AppState) => ({ repoURL: displayRepo(appRepo(a)), path: a.spec.path, targetRevision: a.spec.targetRevision ?? 'HEAD' });
  const destination = (a: AppState) => ({ server: 'https://kubernetes.default.svc', namespace: a.spec.destinationNamespace ?? a.spec.name });
  const resKey = (r: RenderedResource) => `${r.group}/${r.kind}/${r.namespace}/${r.name}`;
  const hasHealth = (kind: string) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Rollout', 'Service', 'Pod', 'Job', 'PersistentVolumeClaim', 'Ingress'].includes(kind);
  const isWorkload = (kind: string) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Rollout'].includes(kind);

  function toJSON(a: AppState): any {
    const app: any = {
      metadata: {
        name: a.spec.name,
        namespace: a.ns,
        uid: a.uid,
        resourceVersion: String(a.rv),
        generation: 1,
        creationTimestamp: a.created,
        ...(Object.keys(a.annotations).length ? { annotations: { ...a.annotations } } : {}),
        ...(a.spec.labels && Object.keys(a.spec.labels).length ? { labels: { ...a.spec.labels } } : {}),
        ...(a.owner ? { ownerReferences: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', name: a.owner.name, uid: a.owner.uid, controller: true, blockOwnerDeletion: true }] } : {}),
        ...(a.deletionTimestamp ? { deletionTimestamp: a.deletionTimestamp, finalizers: ['resources-finalizer.argocd.argoproj.io'] } : {}),
      },
      spec: {
        source: source(a),
        destination: destination(a),
        project: a.spec.project ?? 'default',
        ...(a.automated ? { syncPolicy: { automated: { prune: true, selfHeal: false } } } : {}),
      },
      status: structuredClone(a.status),
    };
    if (a.operation) app.operation = structuredClone(a.operation);
    return app;
  }

  function emit(a: AppState, type = 'MODIFIED') {
    a.rv = ++rvCounter;
    const snapshot = toJSON(a);
    for (const l of listeners.get(a.key) ?? []) l(snapshot, type);
  }

  /** a cascade delete: deletionTimestamp + finalizer at once, the app gone (a DELETED event) after deleteMs */
  function startDeletion(a: AppState) {
    if (a.deletionTimestamp) return;
    a.deletionTimestamp = now();
    emit(a);
    setTimeout(() => {
      if (stopped || apps.get(a.key) !== a) return;
      apps.delete(a.key);
      emit(a, 'DELETED');
    }, delays.deleteMs);
  }

  // ------------------------------------------------------------------------------- ApplicationSets

  interface AppSetState {
    spec: DoubleAppSetSpec;
    uid: string;
    created: string;
    rv: number;
  }
  const appsets = new Map<string, AppSetState>();
  const subst = (v: any, vars: Record<string, string>): any =>
    typeof v === 'string'
      ? v.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (m, k: string) => (k in vars ? vars[k]! : m))
      : Array.isArray(v)
        ? v.map((x) => subst(x, vars))
        : v && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x, vars)]))
          : v;

  async function generate(as: DoubleAppSetSpec, fetched?: (url: string) => Promise<RepoServer>): Promise<DoubleAppSpec[]> {
    if (as.clusters) return as.clusters.map((name) => subst(as.template, { name, server: `https://${name}.clusters.example` }));
    if (as.directories) {
      const url = as.template.repoURL ?? opts.repoURL;
      const repo = fetched ? await fetched(url) : await repoOf(url);
      const sha = await repo.resolve(as.revision ?? 'main', { fetch: !fetched });
      return (await repo.directories(sha, as.directories)).map((d) => {
        const base = d.split('/').pop()!;
        return subst(as.template, { path: d, 'path.basename': base, 'path.basenameNormalized': base.toLowerCase().replace(/[^a-z0-9.-]/g, '-') });
      });
    }
    return [];
  }

  /** the ApplicationSet controller: create the apps the generator yields, delete the ones it no longer does */
  async function reconcileAppSet(st: AppSetState, fetched?: (url: string) => Promise<RepoServer>) {
    const wanted = await generate(st.spec, fetched);
    let changed = false;
    for (const w of wanted) {
      const key = `${w.namespace ?? CONTROL_NS}/${w.name}`;
      const have = apps.get(key);
      if (have && !have.deletionTimestamp) continue;
      if (have) continue; // still being deleted: created again on a later pass
      const a = new AppState(w);
      a.owner = { name: st.spec.name, uid: st.uid };
      apps.set(key, a);
      a.refreshRequested = 'normal';
      void kick(a);
      changed = true;
    }
    for (const a of apps.values()) {
      if (a.owner?.uid !== st.uid || a.deletionTimestamp) continue;
      if (!wanted.some((w) => w.name === a.spec.name && (w.namespace ?? CONTROL_NS) === a.ns)) {
        startDeletion(a);
        changed = true;
      }
    }
    if (changed) st.rv = ++rvCounter;
  }

  function appsetJSON(st: AppSetState): any {
    const t = st.spec.template;
    const owned = [...apps.values()].filter((a) => a.owner?.uid === st.uid);
    const gen = st.spec.clusters
      ? { clusters: {} }
      : { git: { repoURL: displayRepo(t.repoURL ?? opts.repoURL), revision: st.spec.revision ?? 'main', directories: [{ path: st.spec.directories }] } };
    return {
      metadata: { name: st.spec.name, namespace: CONTROL_NS, uid: st.uid, resourceVersion: String(st.rv), generation: 1, creationTimestamp: st.created },
      spec: {
        generators: [gen],
        template: {
          metadata: { name: t.name, ...(t.labels ? { labels: { ...t.labels } } : {}) },
          spec: {
            project: t.project ?? 'default',
            source: { repoURL: displayRepo(t.repoURL ?? opts.repoURL), path: t.path, targetRevision: t.targetRevision ?? 'HEAD' },
            destination: { server: 'https://kubernetes.default.svc', namespace: t.destinationNamespace ?? t.name },
            ...(t.automated !== false ? { syncPolicy: { automated: { prune: true, selfHeal: false } } } : {}),
          },
        },
      },
      status: {
        conditions: [{ type: 'ResourcesUpToDate', status: 'True', reason: 'ApplicationSetUpToDate', message: 'All applications have been generated successfully', lastTransitionTime: st.created }],
        resources: owned.map((a) => ({
          group: 'argoproj.io',
          version: 'v1alpha1',
          kind: 'Application',
          namespace: a.ns,
          name: a.spec.name,
          status: a.status.sync?.status ?? 'Unknown',
          health: { status: a.status.health?.status ?? 'Unknown', ...(a.status.health?.lastTransitionTime ? { lastTransitionTime: a.status.health.lastTransitionTime } : {}) },
        })),
        resourcesCount: owned.length,
      },
    };
  }

  /** Kubernetes label selectors (equality- and set-based), as Argo CD's list filters apps */
  function selectorMatcher(sel: string): ((labels: Record<string, string>) => boolean) | undefined {
    const tests: Array<(l: Record<string, string>) => boolean> = [];
    for (const raw of sel.split(/,(?![^(]*\))/)) {
      const term = raw.trim();
      if (!term) continue;
      let m: RegExpExecArray | null;
      if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term))) {
        const [, k, op, v] = m;
        tests.push(op === '!=' ? (l) => l[k!] !== v : (l) => l[k!] === v);
      } else if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
        const [, k, op, vs] = m;
        const set = new Set(vs!.split(',').map((x) => x.trim()));
        tests.push(op === 'in' ? (l) => k! in l && set.has(l[k!]!) : (l) => !(k! in l) || !set.has(l[k!]!));
      } else if ((m = /^!([\w./-]+)$/.exec(term))) {
        const k = m[1]!;
        tests.push((l) => !(k in l));
      } else if ((m = /^([\w./-]+)$/.exec(term))) {
        const k = m[1]!;
        tests.push((l) => k in l);
      } else return undefined;
    }
    return (l) => tests.every((t) => t(l));
  }

  // ----------------------------------------------------------------------------- Argo Rollouts

  /** after a sync: a rollout fault puts the app's Rollout in the state Argo CD's built-in health check reports */
  function applyRolloutFault(a: AppState, resources: RenderedResource[]) {
    const r = resources.find((x) => x.kind === 'Rollout');
    if (!r) return;
    const steps: any[] = r.manifest.spec?.strategy?.canary?.steps ?? [];
    if (a.faults.rollout === 'paused') {
      const idx = Math.max(0, steps.findIndex((s) => s && 'pause' in s));
      a.healthByKey.set(resKey(r), { status: 'Suspended', message: 'Rollout is paused' });
      a.rolloutStatus = { phase: 'Paused', message: 'CanaryPauseStep', currentStepIndex: idx, pauseConditions: [{ reason: 'CanaryPauseStep', startTime: now() }], observedGeneration: '1' };
    } else if (a.faults.rollout === 'aborted') {
      const message = 'Rollout aborted update to revision 2: Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)';
      a.healthByKey.set(resKey(r), { status: 'Degraded', message });
      a.rolloutStatus = { phase: 'Degraded', abort: true, message: `RolloutAborted: ${message}`, currentStepIndex: 0, conditions: [{ type: 'Progressing', status: 'False', reason: 'RolloutAborted', message }], observedGeneration: '1' };
    } else {
      a.rolloutStatus = { phase: 'Healthy', currentStepIndex: steps.length, observedGeneration: '1' };
      return;
    }
    const h = appHealth(a);
    a.status.health = { ...h, lastTransitionTime: now() };
    a.status.resources = resourcesStatus(a);
  }

  function resourcesStatus(a: AppState) {
    const desired = a.desired?.resources ?? [];
    const liveByKey = new Map(a.live.resources.map((r) => [resKey(r), r]));
    return desired.map((r) => {
      const live = liveByKey.get(resKey(r));
      const health = a.healthByKey.get(resKey(r));
      return {
        ...(r.group ? { group: r.group } : {}),
        version: r.version,
        kind: r.kind,
        ...(r.namespace ? { namespace: r.namespace } : {}),
        name: r.name,
        status: live && live.hash === r.hash ? 'Synced' : 'OutOfSync',
        ...(health && live ? { health: { ...health } } : !live && hasHealth(r.kind) ? { health: { status: 'Missing' } } : {}),
      };
    });
  }

  function appHealth(a: AppState): { status: string; message?: string } {
    const order = ['Healthy', 'Suspended', 'Progressing', 'Missing', 'Degraded', 'Unknown'];
    let worst = 'Healthy';
    let message: string | undefined;
    for (const r of a.desired?.resources ?? []) {
      const live = a.live.resources.find((l) => resKey(l) === resKey(r));
      const h = live ? a.healthByKey.get(resKey(r)) : hasHealth(r.kind) ? { status: 'Missing' } : undefined;
      if (h && order.indexOf(h.status) > order.indexOf(worst)) {
        worst = h.status;
        message = h.message;
      }
    }
    return message && worst !== 'Healthy' ? { status: worst, message } : { status: worst };
  }

  function setHealth(a: AppState, resources: RenderedResource[], status: 'Healthy' | 'Progressing' | 'Degraded', message?: string) {
    for (const r of resources) {
      if (!hasHealth(r.kind)) continue;
      if (isWorkload(r.kind)) a.healthByKey.set(resKey(r), message ? { status, message } : { status });
      else a.healthByKey.set(resKey(r), { status: 'Healthy' });
    }
    const h = appHealth(a);
    const prev = a.status.health?.status;
    a.status.health = { ...h, lastTransitionTime: prev === h.status ? (a.status.health?.lastTransitionTime ?? now()) : now() };
    a.status.resources = resourcesStatus(a);
  }

  function summary(a: AppState) {
    const images = [...new Set(a.live.resources.flatMap((r) => r.images))].sort();
    return images.length ? { images } : {};
  }

  /** refresh/compare: resolve, render, compare with live */
  async function reconcile(a: AppState, opts2: { delay: boolean }) {
    if (opts2.delay) await sleep(delays.refreshMs + (a.faults.slowRefreshMs ?? 0));
    const repo = await repoOf(appRepo(a));
    const t = now();
    let sha: string | undefined;
    try {
      sha = await repo.resolve(a.spec.targetRevision);
      if (a.faults.comparisonError) throw new Error(typeof a.faults.comparisonError === 'string' ? a.faults.comparisonError : `rpc error: code = Unknown desc = Manifest generation error (cached): kustomize build ${a.spec.path} failed: accumulating resources: missing Resource metadata`);
      const resources = await repo.render(sha, a.spec.path, destination(a).namespace);
      a.desired = { revision: sha, resources };
      a.status.conditions = undefined;
      delete a.status.conditions;
      const rs = resourcesStatus(a);
      a.status.sync = { status: rs.every((r) => r.status === 'Synced') ? 'Synced' : 'OutOfSync', revision: sha, comparedTo: { source: source(a), destination: destination(a) } };
      a.status.resources = rs;
      a.status.health = { ...appHealth(a), lastTransitionTime: a.status.health?.lastTransitionTime ?? t };
    } catch (e) {
      const msg = (e as Error).message.startsWith('rpc error') ? (e as Error).message : `Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = ${(e as Error).message}`;
      a.status.conditions = [{ type: 'ComparisonError', message: msg, lastTransitionTime: t }];
      a.status.sync = { status: 'Unknown', ...(sha ? { revision: sha } : {}), comparedTo: { source: source(a), destination: destination(a) } };
    }
    a.status.reconciledAt = t;
    a.status.observedAt = t;
    a.status.summary = summary(a);
    a.status.sourceType = 'Kustomize';
    a.status.controllerNamespace = CONTROL_NS;
    delete a.annotations[REFRESH];
    emit(a);
    const ws = a.refreshWaiters.splice(0);
    for (const w of ws) w();
  }

  async function runOperation(a: AppState) {
    const op = a.operation;
    await sleep(delays.operationStartMs);
    const startedAt = now();
    a.status.operationState = { operation: structuredClone(op), phase: 'Running', message: 'one or more tasks are running', startedAt };
    emit(a);
    const repo = await repoOf(appRepo(a));
    let sha: string;
    let resources: RenderedResource[];
    try {
      sha = await repo.resolve(op.sync?.revision || a.spec.targetRevision);
      resources = await repo.render(sha, a.spec.path, destination(a).namespace);
    } catch (e) {
      a.status.operationState = { ...a.status.operationState, phase: 'Error', message: `ComparisonError: ${(e as Error).message}`, finishedAt: now() };
      a.operation = null;
      emit(a);
      return;
    }
    const until = Date.now() + delays.syncMs;
    while (Date.now() < until && !a.terminate) await sleep(Math.min(20, delays.syncMs));
    const finishedAt = now();
    const src = source(a);
    if (a.terminate) {
      a.terminate = false;
      a.status.operationState = { ...a.status.operationState, phase: 'Failed', message: 'Operation terminated', finishedAt, syncResult: { revision: sha, source: src } };
      a.operation = null;
      emit(a);
      return;
    }
    const results = resources.map((r) => ({
      ...(r.group ? { group: r.group } : {}),
      version: r.version,
      kind: r.kind,
      ...(r.namespace ? { namespace: r.namespace } : {}),
      name: r.name,
      status: 'Synced',
      message: `${r.kind.toLowerCase()}${r.group ? `.${r.group}` : ''}/${r.name} configured`,
      hookPhase: 'Running',
      syncPhase: 'Sync',
      ...(r.images.length ? { images: r.images } : {}),
    }));
    if (a.faults.syncFail) {
      const msg = typeof a.faults.syncFail === 'string' ? a.faults.syncFail : 'The Deployment "shovel" is invalid: spec.template.spec.containers[0].image: Required value';
      const w = results.find((r) => isWorkload(r.kind)) ?? results[0];
      if (w) Object.assign(w, { status: 'SyncFailed', message: msg, hookPhase: 'Failed' });
      a.status.operationState = { ...a.status.operationState, phase: 'Failed', message: `one or more objects failed to apply, reason: ${msg}`, finishedAt, syncResult: { revision: sha, source: src, resources: results } };
      a.operation = null;
      a.failedRevision = sha;
      emit(a);
      await sleep(delays.reconcileMs);
      a.status.reconciledAt = now();
      emit(a);
      return;
    }
    // applied: the live state is now the desired state at sha
    const changed = resources.filter((r) => a.live.resources.find((l) => resKey(l) === resKey(r))?.hash !== r.hash);
    a.live = { revision: sha, resources };
    a.status.operationState = { ...a.status.operationState, phase: 'Succeeded', message: 'successfully synced (all tasks run)', finishedAt, syncResult: { revision: sha, source: src, resources: results } };
    a.status.history = [...(a.status.history ?? []), { id: ++a.historyId, revision: sha, deployStartedAt: startedAt, deployedAt: finishedAt, initiatedBy: op.initiatedBy, source: src }].slice(-10);
    a.operation = null;
    a.failedRevision = undefined;
    emit(a);
    // the controller's post-sync reconcile: fresh comparison (latest tip) and health
    await sleep(delays.reconcileMs);
    const rolled = changed.some((r) => isWorkload(r.kind));
    for (const r of resources) if (rolled && isWorkload(r.kind)) a.healthByKey.set(resKey(r), { status: 'Progressing', message: `Waiting for rollout to finish: 0 of 1 updated replicas are available...` });
    else if (hasHealth(r.kind) && !a.healthByKey.has(resKey(r))) a.healthByKey.set(resKey(r), { status: 'Healthy' });
    await reconcile(a, { delay: false });
    if (!rolled) return;
    await sleep(delays.healthyMs);
    if (a.live.revision !== sha) return;
    if (a.faults.degraded) {
      const w = resources.find((r) => isWorkload(r.kind));
      setHealth(a, resources, 'Degraded', typeof a.faults.degraded === 'string' ? a.faults.degraded : `Deployment "${w?.name ?? 'app'}" exceeded its progress deadline`);
    } else setHealth(a, resources, 'Healthy');
    applyRolloutFault(a, resources);
    emit(a);
  }

  /** the controller loop of one app: one step at a time */
  async function kick(a: AppState) {
    if (a.looping) {
      a.dirty = true;
      return;
    }
    a.looping = true;
    try {
      do {
        a.dirty = false;
        if (stopped) return;
        if (a.refreshRequested) {
          a.refreshRequested = undefined;
          a.reconciling = true;
          try {
            await reconcile(a, { delay: true });
          } finally {
            a.reconciling = false;
          }
        }
        if (a.operation) {
          await runOperation(a);
          a.dirty = true;
          continue;
        }
        if (a.automated && !a.deletionTimestamp && a.desired && a.status.sync?.status === 'OutOfSync' && a.failedRevision !== a.desired.revision && !a.faults.syncWindow && !a.status.conditions) {
          a.operation = { sync: { revision: a.desired.revision, prune: true }, initiatedBy: { automated: true }, retry: { limit: 5 } };
          delete a.status.operationState; // SetAppOperation clears it, as for an API sync
          emit(a);
          a.dirty = true;
        }
      } while (a.dirty && !stopped);
    } catch (e) {
      // a double must not crash the test run: keep the error visible in the app
      a.status.conditions = [{ type: 'ComparisonError', message: `double controller: ${(e as Error).message}`, lastTransitionTime: now() }];
      emit(a);
    } finally {
      a.looping = false;
    }
  }

  // initial state: the apps, and the ones the ApplicationSets generate now
  const initial: Array<{ spec: DoubleAppSpec; owner?: { name: string; uid: string } }> = opts.apps.map((spec) => ({ spec }));
  for (const as of opts.appsets ?? []) {
    const st: AppSetState = { spec: as, uid: randomUUID(), created: now(), rv: ++rvCounter };
    appsets.set(as.name, st);
    for (const spec of await generate(as)) initial.push({ spec, owner: { name: as.name, uid: st.uid } });
  }
  for (const { spec: s, owner } of initial) {
    const a = new AppState(s);
    a.owner = owner;
    apps.set(a.key, a);
    if (opts.deployed !== false) {
      try {
        const repo = await repoOf(appRepo(a));
        const sha = await repo.resolve(s.targetRevision);
        const resources = await repo.render(sha, s.path, destination(a).namespace);
        a.live = { revision: sha, resources };
        a.desired = { revision: sha, resources };
        const t0 = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
        const src = source(a);
        a.status.operationState = {
          operation: { sync: { revision: sha, prune: true }, initiatedBy: { automated: true }, retry: { limit: 5 } },
          phase: 'Succeeded',
          message: 'successfully synced (all tasks run)',
          startedAt: t0,
          finishedAt: t0,
          syncResult: { revision: sha, source: src },
        };
        a.status.history = [{ id: ++a.historyId, revision: sha, deployStartedAt: t0, deployedAt: t0, initiatedBy: { automated: true }, source: src }];
        setHealth(a, resources, 'Healthy');
      } catch {
        /* the first reconcile reports it */
      }
    }
    await reconcile(a, { delay: false });
  }

  // git polling: a new tip → refresh
  let polling = false;
  const poll = async () => {
    if (polling || stopped) return;
    polling = true;
    try {
      // one fetch per repository and tick, whatever the number of its apps and ApplicationSets: Argo CD's
      // repo-server "maintains a local cache of the Git repository" that they share
      // (https://argo-cd.readthedocs.io/en/stable/operator-manual/server-commands/argocd-repo-server/). Before, each
      // app fetched twice per tick (the poll's fetch, then resolve's own) and each ApplicationSet once: in a pipeline
      // test (two apps of one repo) four git round trips of about 0.15 CPU-s each per tick, with nothing more to see
      const fetches = new Map<string, Promise<void>>();
      const fetched = async (url: string) => {
        const repo = await repoOf(url);
        if (!fetches.has(url)) fetches.set(url, repo.fetch());
        await fetches.get(url);
        return repo;
      };
      for (const st of appsets.values()) await reconcileAppSet(st, fetched).catch(() => undefined);
      for (const a of apps.values()) {
        try {
          const url = appRepo(a);
          const sha = await (await fetched(url)).resolve(a.spec.targetRevision, { fetch: false });
          if (sha !== a.status.sync?.revision && !a.refreshRequested && !a.reconciling) {
            a.refreshRequested = 'normal';
            void kick(a);
          }
        } catch {
          /* next tick */
        }
      }
    } finally {
      polling = false;
    }
  };
  const pollTimer = setInterval(() => void poll(), pollIntervalMs);

  // ------------------------------------------------------------------------------------------ HTTP

  const server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, (req, res) => void handle(req, res))
    : http.createServer((req, res) => void handle(req, res));
  const sockets = new Set<import('node:net').Socket>();
  server.on(opts.tls ? 'secureConnection' : 'connection', (s: import('node:net').Socket) => (sockets.add(s), s.on('close', () => sockets.delete(s))));

  function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, schema?: string) {
    const path = (req.url ?? '').split('?')[0];
    const rec: RecordedResponse = { method: req.method ?? '', path, status, schema, body };
    responses.push(rec);
    opts.onResponse?.(rec);
    if (typeof body === 'string') {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(body);
    } else {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    }
  }
  const sendErr = (req: http.IncomingMessage, res: http.ServerResponse, code: number, message: string) => {
    const e = grpcError(code, message);
    send(req, res, e.status, e.body, 'runtimeError');
  };

  function authOk(req: http.IncomingMessage): { ok: true } | { ok: false; message: string } {
    let t: string | undefined;
    const h = req.headers.authorization;
    if (h?.startsWith('Bearer ')) t = h.slice(7).trim();
    if (!t || t.split('.').length !== 3) {
      const m = /(?:^|;\s*)argocd\.token=([^;]+)/.exec(req.headers.cookie ?? '');
      t = m?.[1];
    }
    if (!t || t.split('.').length !== 3) return { ok: false, message: 'no session information' };
    if (!validTokens.has(t)) return { ok: false, message: 'invalid session: token signature is invalid' };
    return { ok: true };
  }

  async function readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function findApp(name: string, q: URLSearchParams): { a?: AppState; err?: [number, string] } {
    const ns = q.get('appNamespace') || CONTROL_NS;
    const a = apps.get(`${ns}/${name}`);
    const projects = [...q.getAll('project'), ...q.getAll('projects')].filter(Boolean);
    if (projects.length > 1) return { err: [3, 'multiple projects specified - the get endpoint accepts either zero or one project'] };
    if (projects.length === 1) {
      if (!a || (a.spec.project ?? 'default') !== projects[0]) return { err: [5, `applications.argoproj.io "${name}" not found`] };
      return { a };
    }
    if (!a) return { err: [7, 'permission denied'] };
    return { a };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const u = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    requests.push({ method, path: u.pathname, query: u.search });
    try {
      if (u.pathname === '/api/webhook') return await webhook(req, res);
      if (!u.pathname.startsWith('/api/')) return send(req, res, 404, '404 page not found\n');
      if (method !== 'GET' && method !== 'HEAD' && (req.headers['content-type'] ?? '').toLowerCase() !== 'application/json') {
        return send(req, res, 415, 'Invalid content type');
      }
      if (u.pathname === '/api/version') return send(req, res, 200, { Version: 'v3.5.1+109ca7c' }, 'versionVersionMessage');
      if (faults.unavailable && faults.unavailable > 0) {
        faults.unavailable--;
        return sendErr(req, res, 14, 'connection error: desc = "transport: Error while dialing: dial tcp 10.96.0.12:8081: connect: connection refused"');
      }
      if (u.pathname === '/api/v1/session' && method === 'POST') {
        const body = JSON.parse((await readBody(req)) || '{}') as { username?: string; password?: string; token?: string };
        if (body.token) return sendErr(req, res, 16, 'token-based session creation no longer supported. please upgrade argocd cli to v0.7+');
        if (!body.username || !body.password) return sendErr(req, res, 16, 'no credentials supplied');
        if (users[body.username] !== body.password) return sendErr(req, res, 16, 'Invalid username or password');
        const t = issueToken(body.username);
        res.setHeader('Set-Cookie', `argocd.token=${t}; path=/; SameSite=lax; httpOnly`);
        return send(req, res, 200, { token: t }, 'sessionSessionResponse');
      }
      const auth = authOk(req);
      const stream = u.pathname.startsWith('/api/v1/stream/');
      const unauth = (message: string) =>
        stream ? send(req, res, 401, { error: { grpc_code: 16, http_code: 401, message, http_status: 'Unauthorized' } }, 'streamResult') : sendErr(req, res, 16, message);
      if (!auth.ok) return unauth(auth.message);
      if (faults.auth === 'unauthorized') return unauth('invalid session: token has invalid claims: token is expired');
      if (u.pathname === '/api/v1/session/userinfo') return send(req, res, 200, { loggedIn: true, username: 'ci-bot', iss: 'argocd' }, 'sessionGetUserInfoResponse');
      if (faults.auth === 'forbidden') return stream ? holdEmptyStream(req, res) : sendErr(req, res, 7, 'permission denied');
      if (u.pathname === '/api/v1/stream/applications' && method === 'GET') {
        if (faults.streamUnavailable) return send(req, res, 404, '404 page not found\n');
        if (faults.stallStream && faults.stallStream > 0) {
          faults.stallStream--;
          return holdEmptyStream(req, res);
        }
        return watch(req, res, u.searchParams);
      }

      if (u.pathname === '/api/v1/applications' && method === 'GET') return listApps(req, res, u.searchParams);
      if (u.pathname === '/api/v1/applicationsets' && method === 'GET') {
        return send(req, res, 200, { metadata: {}, items: [...appsets.values()].map(appsetJSON) }, 'v1alpha1ApplicationSetList');
      }
      const ms = /^\/api\/v1\/applicationsets\/([^/]+)$/.exec(u.pathname);
      if (ms && method === 'GET') {
        const st = appsets.get(decodeURIComponent(ms[1]!));
        const ns = u.searchParams.get('appsetNamespace') || CONTROL_NS;
        if (!st || ns !== CONTROL_NS) return sendErr(req, res, 5, `error getting ApplicationSet: applicationsets.argoproj.io "${decodeURIComponent(ms[1]!)}" not found`);
        return send(req, res, 200, appsetJSON(st), 'v1alpha1ApplicationSet');
      }
      const m = /^\/api\/v1\/applications\/([^/]+)(\/[a-z-]+)?$/.exec(u.pathname);
      if (!m) return send(req, res, 404, 'Not Found\n');
      const name = decodeURIComponent(m[1]);
      const sub = m[2] ?? '';
      const { a, err } = findApp(name, u.searchParams);
      if (sub === '/sync' && method === 'POST') {
        const body = JSON.parse((await readBody(req)) || '{}');
        const q = new URLSearchParams();
        if (body.appNamespace) q.set('appNamespace', body.appNamespace);
        if (body.project) q.set('project', body.project);
        const found = findApp(name, q);
        if (found.err) return sendErr(req, res, ...found.err);
        return await sync(req, res, found.a!, body);
      }
      if (err) return sendErr(req, res, ...err);
      if (sub === '' && method === 'GET') {
        const refresh = u.searchParams.get('refresh');
        if (refresh) {
          a!.annotations[REFRESH] = refresh === 'hard' ? 'hard' : 'normal';
          emit(a!);
          const done = new Promise<void>((r) => a!.refreshWaiters.push(r));
          a!.refreshRequested = refresh === 'hard' ? 'hard' : 'normal';
          void kick(a!);
          let gone = false;
          req.socket.once('close', () => (gone = true));
          await done;
          if (gone) return;
        }
        return send(req, res, 200, toJSON(a!), 'v1alpha1Application');
      }
      if (sub === '/resource-tree' && method === 'GET') return send(req, res, 200, tree(a!), 'v1alpha1ApplicationTree');
      if (sub === '' && method === 'DELETE') {
        // cascade (the default) keeps a finalizer until the resources are gone; the app disappears after that
        startDeletion(a!);
        return send(req, res, 200, {}, 'applicationApplicationResponse');
      }
      if (sub === '/syncwindows' && method === 'GET') {
        const f = a!.faults.syncWindow;
        if (!f) return send(req, res, 200, { canSync: true }, 'applicationApplicationSyncWindowsResponse');
        const w = typeof f === 'object' ? f : { kind: 'deny' as const, schedule: '0 0 * * *', duration: '24h' };
        const win = { kind: w.kind, schedule: w.schedule, duration: w.duration, ...(w.manualSync ? { manualSync: true } : {}) };
        // an allow window that is not active blocks as well: then only assignedWindows lists it
        return send(req, res, 200, { ...(w.kind === 'deny' ? { activeWindows: [win] } : {}), assignedWindows: [win], canSync: false }, 'applicationApplicationSyncWindowsResponse');
      }
      if (sub === '/resource' && method === 'GET') {
        const kind = u.searchParams.get('kind');
        const rname = u.searchParams.get('resourceName');
        const rns = u.searchParams.get('namespace') ?? '';
        const r = a!.live.resources.find((x) => x.kind === kind && x.name === rname && (!rns || x.namespace === rns));
        if (!r) return sendErr(req, res, 5, `${kind} ${rname} not found as part of application ${a!.spec.name}`);
        const live = { ...r.manifest, metadata: { ...r.manifest.metadata, namespace: r.namespace, generation: 1 }, ...(r.kind === 'Rollout' ? { status: a!.rolloutStatus ?? { phase: 'Healthy', observedGeneration: '1' } } : {}) };
        return send(req, res, 200, { manifest: JSON.stringify(live) }, 'applicationApplicationResourceResponse');
      }
      if (sub === '/operation' && method === 'DELETE') {
        const running = a!.operation || (a!.status.operationState && !a!.status.operationState.finishedAt);
        if (!running) return sendErr(req, res, 3, 'Unable to terminate operation. No operation is in progress');
        if (a!.status.operationState && !a!.status.operationState.finishedAt) {
          a!.status.operationState.phase = 'Terminating';
          a!.terminate = true;
          emit(a!);
        } else {
          a!.operation = null;
          emit(a!);
        }
        return send(req, res, 200, {}, 'applicationOperationTerminateResponse');
      }
      return send(req, res, 405, 'Method Not Allowed\n');
    } catch (e) {
      if (!res.headersSent) sendErr(req, res, 2, (e as Error).message);
    }
  }

  function listApps(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams) {
    const sel = q.get('selector') ?? '';
    const match = selectorMatcher(sel);
    if (!match) return sendErr(req, res, 3, `error parsing the selector ${JSON.stringify(sel)}`);
    const ns = q.get('appNamespace');
    const name = q.get('name');
    const projects = [...q.getAll('projects'), ...q.getAll('project')].filter(Boolean);
    const items = [...apps.values()]
      .filter((a) => (!ns || a.ns === ns) && (!name || a.spec.name === name) && (!projects.length || projects.includes(a.spec.project ?? 'default')) && match(a.spec.labels ?? {}))
      .sort((x, y) => x.key.localeCompare(y.key))
      .map(toJSON);
    return send(req, res, 200, { metadata: { resourceVersion: String(rvCounter) }, items }, 'v1alpha1ApplicationList');
  }

  async function sync(req: http.IncomingMessage, res: http.ServerResponse, a: AppState, body: any) {
    if (a.faults.syncWindow) return sendErr(req, res, 7, 'cannot sync: blocked by sync window');
    if (a.faults.busy && a.faults.busy > 0) {
      a.faults.busy--;
      return sendErr(req, res, 9, 'error setting app operation: another operation is already in progress');
    }
    if (a.operation) return sendErr(req, res, 9, 'error setting app operation: another operation is already in progress');
    const tr = a.spec.targetRevision ?? 'HEAD';
    if (a.automated && body.revision && body.revision !== tr && !body.dryRun) {
      return sendErr(req, res, 9, `Cannot sync to ${body.revision}: auto-sync currently set to ${tr}`);
    }
    let revision: string;
    try {
      revision = await (await repoOf(appRepo(a))).resolve(body.revision || tr);
    } catch (e) {
      return sendErr(req, res, 9, `error resolving repo revision: ${(e as Error).message}`);
    }
    a.operation = { sync: { revision, ...(body.prune ? { prune: true } : {}), ...(body.dryRun ? { dryRun: true } : {}) }, initiatedBy: { username: 'ci-bot' }, ...(body.infos ? { info: body.infos } : {}) };
    delete a.status.operationState;
    emit(a);
    void kick(a);
    return send(req, res, 200, toJSON(a), 'v1alpha1Application');
  }

  function tree(a: AppState) {
    const nodes: any[] = [];
    for (const r of a.live.resources) {
      const health = a.healthByKey.get(resKey(r));
      const base = { ...(r.group ? { group: r.group } : {}), version: r.version, kind: r.kind, ...(r.namespace ? { namespace: r.namespace } : {}), name: r.name, uid: `${a.uid}-${r.name}-${r.kind}`.toLowerCase(), resourceVersion: String(a.rv) };
      nodes.push({ ...base, ...(health ? { health } : {}), createdAt: a.created });
      if (r.kind === 'Deployment') {
        const rsName = `${r.name}-${r.hash.slice(0, 10)}`;
        const rsRef = { group: 'apps', kind: 'ReplicaSet', namespace: r.namespace, name: rsName, uid: `${a.uid}-${rsName}`.toLowerCase() };
        nodes.push({ ...rsRef, version: 'v1', parentRefs: [{ group: 'apps', kind: 'Deployment', namespace: r.namespace, name: r.name, uid: base.uid }], info: [{ name: 'Revision', value: `Rev:${a.historyId}` }], health: health?.status === 'Degraded' ? { status: 'Progressing', message: 'Waiting for rollout to finish' } : { status: 'Healthy' }, createdAt: a.created });
        const podName = `${rsName}-${r.hash.slice(10, 15)}`;
        nodes.push({
          version: 'v1',
          kind: 'Pod',
          namespace: r.namespace,
          name: podName,
          uid: `${a.uid}-${podName}`.toLowerCase(),
          parentRefs: [{ group: 'apps', kind: 'ReplicaSet', namespace: r.namespace, name: rsName, uid: rsRef.uid }],
          images: r.images,
          info: [{ name: 'Status Reason', value: health?.status === 'Degraded' ? 'ImagePullBackOff' : 'Running' }],
          health: health?.status === 'Degraded' ? { status: 'Degraded', message: `Back-off pulling image "${r.images[0] ?? ''}"` } : { status: health?.status === 'Progressing' ? 'Progressing' : 'Healthy' },
          createdAt: a.created,
        });
      }
    }
    return { nodes, hosts: [] };
  }

  const streamClients = new Set<http.ServerResponse>();

  function holdEmptyStream(req: http.IncomingMessage, res: http.ServerResponse) {
    // RBAC is applied silently on the watch: nothing is sent
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    streamClients.add(res);
    req.socket.once('close', () => streamClients.delete(res));
  }

  function watch(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams) {
    const name = q.get('name');
    const ns = q.get('appNamespace') || CONTROL_NS;
    const selected = [...apps.values()].filter((a) => (!name || a.spec.name === name) && a.ns === ns);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    streamClients.add(res);
    const since = Number(q.get('resourceVersion') ?? 0);
    const last = new Map<string, string>();
    let sent = 0;
    const drop = faults.dropStream && faults.dropStream.times > 0 ? faults.dropStream : undefined;
    const write = (type: string, app: any) => {
      if (res.destroyed) return;
      const line = JSON.stringify({ result: { type, application: app } });
      if (last.get(app.metadata.name) === line.replace('"ADDED"', '"MODIFIED"')) return; // dedup identical events
      last.set(app.metadata.name, line.replace('"ADDED"', '"MODIFIED"'));
      const rec: RecordedResponse = { method: 'GET', path: '/api/v1/stream/applications', status: 200, schema: 'streamResult', body: JSON.parse(line) };
      responses.push(rec);
      opts.onResponse?.(rec);
      res.write(line + '\n');
      sent++;
      if (drop && sent >= drop.afterEvents) {
        drop.times--;
        // cut the connection without a final chunk, as an idle proxy does
        res.socket?.destroy();
      }
    };
    const subs: Array<[string, (app: any) => void]> = [];
    for (const a of selected) {
      // when name is set (or no resourceVersion), the current state comes first as ADDED
      if (name || !since) write('ADDED', toJSON(a));
      const l = (app: any, type = 'MODIFIED') => write(type, app);
      if (!listeners.has(a.key)) listeners.set(a.key, new Set());
      listeners.get(a.key)!.add(l);
      subs.push([a.key, l]);
    }
    const cleanup = () => {
      streamClients.delete(res);
      for (const [k, l] of subs) listeners.get(k)?.delete(l);
    };
    req.socket.once('close', cleanup);
    res.once('close', cleanup);
  }

  const normRepo = (s: string) =>
    s
      .trim()
      .replace(/^[a-z+]+:\/\//i, '')
      .replace(/^[^@/]*@/, '')
      .replace(/^(ssh\.|altssh\.)/, '')
      .replace(/:(\d+)\//, '/')
      .replace(/:/, '/')
      .replace(/\.git\/?$/i, '')
      .replace(/\/+$/, '')
      .toLowerCase();

  async function webhook(req: http.IncomingMessage, res: http.ServerResponse) {
    const event = req.headers['x-gitlab-event'];
    if (!event) return send(req, res, 400, 'Unknown webhook event\n');
    if (req.method !== 'POST') return send(req, res, 405, 'Webhook processing failed\n');
    const text = await readBody(req);
    webhookBodies.push(text);
    const secret = opts.webhookSecret ?? '';
    const given = String(req.headers['x-gitlab-token'] ?? '');
    if (given !== secret) return send(req, res, 400, 'Webhook processing failed\n');
    if (event !== 'Push Hook' && event !== 'Tag Push Hook' && event !== 'System Hook') return send(req, res, 400, 'Webhook processing failed\n');
    let p: any;
    try {
      p = JSON.parse(text);
      for (const c of p.commits ?? []) if (c.timestamp && Number.isNaN(Date.parse(c.timestamp))) throw new Error('bad timestamp');
    } catch {
      return send(req, res, 400, 'Webhook processing failed: payload must be valid JSON under 50 MB\n');
    }
    for (const st of appsets.values()) void reconcileAppSet(st).catch(() => undefined);
    const revision = String(p.ref ?? '').split('/').pop();
    const touchedHead = p.project?.default_branch === revision;
    const web = normRepo(String(p.project?.web_url ?? ''));
    for (const a of apps.values()) {
      const tr = (a.spec.targetRevision ?? 'HEAD').replace(/^refs\/(heads|tags)\//, '');
      const revOk = tr === 'HEAD' || tr === '' ? touchedHead : tr === revision;
      if (revOk && normRepo(displayRepo(appRepo(a))) === web) {
        a.annotations[REFRESH] = 'normal';
        emit(a);
        a.refreshRequested = 'normal';
        void kick(a);
      }
    }
    send(req, res, 200, '');
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    token,
    app(name, namespace = CONTROL_NS) {
      const a = apps.get(`${namespace}/${name}`);
      return a ? toJSON(a) : undefined;
    },
    setFault(name, f, namespace = CONTROL_NS) {
      const a = apps.get(`${namespace}/${name}`);
      if (!a) throw new Error(`no app ${namespace}/${name}`);
      a.faults = { ...(f ?? {}) };
      if (!f?.syncWindow) void kick(a);
    },
    faults,
    responses,
    requests,
    webhookBodies,
    waitFor(name, predicate, timeoutMs = 30_000) {
      const a = apps.get(`${CONTROL_NS}/${name}`) ?? [...apps.values()].find((x) => x.spec.name === name);
      if (!a) return Promise.reject(new Error(`no app ${name}`));
      const cur = toJSON(a);
      if (predicate(cur)) return Promise.resolve(cur);
      return new Promise((resolve, reject) => {
        const l = (app: any) => {
          if (predicate(app)) {
            clearTimeout(t);
            listeners.get(a.key)?.delete(l);
            resolve(app);
          }
        };
        const t = setTimeout(() => {
          listeners.get(a.key)?.delete(l);
          reject(new Error(`double: ${name} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(toJSON(a).status).slice(0, 600)}`));
        }, timeoutMs);
        if (!listeners.has(a.key)) listeners.set(a.key, new Set());
        listeners.get(a.key)!.add(l);
      });
    },
    pollNow() {
      void poll();
    },
    appNames() {
      return [...apps.keys()];
    },
    waitGone(name, timeoutMs = 30_000) {
      const a = apps.get(`${CONTROL_NS}/${name}`) ?? [...apps.values()].find((x) => x.spec.name === name);
      if (!a) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const l = (_app: any, type?: string) => {
          if (type !== 'DELETED') return;
          clearTimeout(t);
          listeners.get(a.key)?.delete(l);
          resolve();
        };
        const t = setTimeout(() => reject(new Error(`double: ${name} was not deleted in ${timeoutMs} ms`)), timeoutMs);
        if (!listeners.has(a.key)) listeners.set(a.key, new Set());
        listeners.get(a.key)!.add(l);
      });
    },
    issueToken,
    async stop() {
      stopped = true;
      clearInterval(pollTimer);
      for (const r of streamClients) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...repos.values()].map((r) => r.cleanup()));
    },
  };
}

/**
 * Standalone, for `make demo` and manual runs:
 *   npx tsx test/doubles/argocd/server.ts --repo /path/config.git --app shovel-staging=.kubernetes/overlays/staging[@main] [--poll-ms 3000] [--port 8080]
 * Prints `export ARGOCD_SERVER=… ARGOCD_AUTH_TOKEN=…` and runs until SIGINT/SIGTERM.
 */
async function main(argv: string[]): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ args: argv, options: { repo: { type: 'string' }, app: { type: 'string', multiple: true }, 'poll-ms': { type: 'string' }, port: { type: 'string' }, 'webhook-secret': { type: 'string' } } });
  if (!values.repo || !values.app?.length) {
    process.stderr.write('usage: server.ts --repo PATH|URL --app NAME=PATH[@REVISION]... [--poll-ms N] [--port N] [--webhook-secret S]\n');
    process.exit(2);
  }
  const apps = values.app.map((a) => {
    const m = /^([^=]+)=([^@]+)(?:@(.+))?$/.exec(a);
    if (!m) throw new Error(`--app ${a}: expected NAME=PATH[@REVISION]`);
    return { name: m[1], path: m[2], targetRevision: m[3] ?? 'main' };
  });
  const argo = await startArgoCdDouble({ repoURL: values.repo, apps, pollIntervalMs: Number(values['poll-ms'] ?? 3000), port: values.port ? Number(values.port) : undefined, webhookSecret: values['webhook-secret'] });
  process.stdout.write(`export ARGOCD_SERVER=${argo.url}\nexport ARGOCD_AUTH_TOKEN=${argo.token}\n`);
  const stop = () => void argo.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
}
