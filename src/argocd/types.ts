/**
 * The parts of Argo CD's v1alpha1Application (wire form, Go json tags) that gitops-ci reads. Field names
 * and optionality follow test/contracts/argocd-swagger.json; everything is optional on the wire.
 */
export interface AppSource {
  repoURL?: string;
  path?: string;
  targetRevision?: string;
  chart?: string;
  ref?: string;
}

export interface HealthStatus {
  status?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface SyncOperation {
  revision?: string;
  revisions?: string[];
  prune?: boolean;
  dryRun?: boolean;
  syncOptions?: string[];
}

export interface Operation {
  sync?: SyncOperation;
  initiatedBy?: { username?: string; automated?: boolean };
  info?: Array<{ name?: string; value?: string }>;
  retry?: unknown;
}

/** how Argo CD names a Kubernetes resource in results, statuses and tree nodes */
export interface ResourceKey {
  group?: string;
  version?: string;
  kind?: string;
  namespace?: string;
  name?: string;
}

export interface ResourceResult extends ResourceKey {
  status?: string;
  message?: string;
  hookPhase?: string;
  hookType?: string;
  syncPhase?: string;
  images?: string[];
}

export interface OperationState {
  operation?: Operation;
  phase?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  retryCount?: number;
  syncResult?: { revision?: string; revisions?: string[]; source?: AppSource; resources?: ResourceResult[] };
}

export interface ResourceStatus extends ResourceKey {
  status?: string;
  health?: HealthStatus;
  requiresPruning?: boolean;
}

export interface Application {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    uid?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    ownerReferences?: Array<{ apiVersion?: string; kind?: string; name?: string; uid?: string }>;
  };
  spec?: {
    project?: string;
    source?: AppSource;
    sources?: AppSource[];
    destination?: { server?: string; name?: string; namespace?: string };
    syncPolicy?: { automated?: { prune?: boolean; selfHeal?: boolean; enabled?: boolean }; syncOptions?: string[] };
  };
  operation?: Operation | null;
  status?: {
    sync?: { status?: string; revision?: string; revisions?: string[]; comparedTo?: unknown };
    health?: HealthStatus;
    operationState?: OperationState | null;
    reconciledAt?: string;
    observedAt?: string;
    conditions?: Array<{ type?: string; message?: string; lastTransitionTime?: string }>;
    resources?: ResourceStatus[];
    summary?: { images?: string[]; externalURLs?: string[] };
    history?: Array<{ id?: number; revision?: string; revisions?: string[]; deployedAt?: string; deployStartedAt?: string }>;
  };
}

/** v1alpha1ApplicationSet: the parts a fleet reads (which Applications it generated) */
export interface ApplicationSet {
  metadata?: { name?: string; namespace?: string; uid?: string };
  status?: {
    resources?: Array<ResourceKey & { status?: string; health?: HealthStatus }>;
    applicationStatus?: Array<{ application?: string; status?: string; message?: string; step?: string }>;
    conditions?: Array<{ type?: string; status?: string; message?: string; reason?: string }>;
  };
}

export interface ResourceNode extends ResourceKey {
  uid?: string;
  health?: HealthStatus;
  images?: string[];
  parentRefs?: Array<{ group?: string; kind?: string; namespace?: string; name?: string }>;
}

export interface ApplicationTree {
  nodes?: ResourceNode[];
  orphanedNodes?: ResourceNode[];
}

/** An app as the user named it: `name`, `ns/name`, plus the --app-namespace and --project query params. */
export interface AppRef {
  name: string;
  namespace?: string;
  project?: string;
}

export function appLabel(ref: AppRef): string {
  return ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
}

export function isAutomated(app: Application): boolean {
  const a = app.spec?.syncPolicy?.automated;
  return !!a && a.enabled !== false;
}

export function shortSha(rev: string | undefined): string {
  if (!rev) return '-';
  return /^[0-9a-f]{40}$/i.test(rev) ? rev.slice(0, 8) : rev;
}
