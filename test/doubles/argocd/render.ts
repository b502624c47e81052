/**
 * The double's repo-server: a local mirror of the config repo (bare path or http URL with credentials),
 * revision resolution (branch/tag/HEAD → SHA) and rendering of an app path at a commit with
 * `kubectl kustomize`. All git/kubectl calls are async child processes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';

export interface RenderedResource {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
  images: string[];
  /** hash of the manifest, to compare desired and live */
  hash: string;
  /** the rendered manifest (GET …/resource serves it as the live object, with a status) */
  manifest: Record<string, any>;
}

function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Promise<{ code: number; out: Buffer; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out: Buffer.concat(out), err: err.trim() }));
    p.stdin.end(opts.input);
  });
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass']);

function imagesOf(doc: Record<string, any>): string[] {
  const kind = doc.kind;
  let pod: any;
  if (kind === 'Pod') pod = doc.spec;
  else if (kind === 'CronJob') pod = doc.spec?.jobTemplate?.spec?.template?.spec;
  else pod = doc.spec?.template?.spec;
  if (!pod) return [];
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])].map((c: { image?: string }) => c.image).filter((i: unknown): i is string => typeof i === 'string');
}

export class RepoServer {
  readonly mirror: string;
  private fetching?: Promise<void>;
  private readonly cache = new Map<string, Promise<RenderedResource[]>>();

  constructor(private readonly remote: string) {
    this.mirror = mkdtempSync(join(tmpdir(), 'argocd-double-mirror-'));
  }

  async init(): Promise<void> {
    const r = await run('git', ['init', '-q', '--bare', this.mirror]);
    if (r.code !== 0) throw new Error(r.err);
  }

  /** git fetch of all branches and tags (coalesced when several callers ask at once) */
  fetch(): Promise<void> {
    this.fetching ??= (async () => {
      try {
        const r = await run('git', ['-C', this.mirror, 'fetch', '-q', '--prune', '--force', this.remote, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*']);
        if (r.code !== 0) throw new Error(`git fetch failed: ${r.err.replace(/\/\/[^@/]*@/g, '//')}`);
      } finally {
        this.fetching = undefined;
      }
    })();
    return this.fetching;
  }

  /**
   * targetRevision → SHA: a full SHA as is, HEAD/'' → the default branch, else a branch or tag. Fetches first,
   * unless the caller has just fetched (`fetch: false`: the controller's poll, one fetch per repository and tick)
   */
  async resolve(targetRevision: string | undefined, o: { fetch?: boolean } = {}): Promise<string> {
    const tr = targetRevision || 'HEAD';
    if (/^[0-9a-f]{40}$/.test(tr)) return tr;
    if (o.fetch !== false) await this.fetch();
    const candidates = tr === 'HEAD' ? ['HEAD', 'refs/heads/main', 'refs/heads/master'] : [`refs/heads/${tr.replace(/^refs\/heads\//, '')}`, `refs/tags/${tr.replace(/^refs\/tags\//, '')}`];
    for (const c of candidates) {
      const r = await run('git', ['-C', this.mirror, 'rev-parse', '--verify', '-q', `${c}^{commit}`]);
      if (r.code === 0) return r.out.toString().trim();
    }
    throw new Error(`unable to resolve '${tr}' to a commit SHA`);
  }

  async ensureCommit(sha: string): Promise<void> {
    const r = await run('git', ['-C', this.mirror, 'cat-file', '-e', `${sha}^{commit}`]);
    if (r.code !== 0) await this.fetch();
  }

  /** renders `path` at `sha` with kubectl kustomize; throws with kustomize's message on error */
  render(sha: string, path: string, defaultNamespace: string): Promise<RenderedResource[]> {
    const key = `${sha}:${path}:${defaultNamespace}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.doRender(sha, path, defaultNamespace);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async doRender(sha: string, path: string, defaultNamespace: string): Promise<RenderedResource[]> {
    await this.ensureCommit(sha);
    const dir = mkdtempSync(join(tmpdir(), 'argocd-double-src-'));
    try {
      const tar = await run('git', ['-C', this.mirror, 'archive', '--format=tar', sha]);
      if (tar.code !== 0) throw new Error(`git archive ${sha}: ${tar.err}`);
      const x = await run('tar', ['-x', '-C', dir], { input: tar.out });
      if (x.code !== 0) throw new Error(`tar: ${x.err}`);
      const k = await run('kubectl', ['kustomize', join(dir, path)]);
      if (k.code !== 0) throw new Error(`kustomize build ${path} failed: ${k.err.replaceAll(dir, '').split('\n').pop()}`);
      const docs = parseAllDocuments(k.out.toString('utf8'));
      const out: RenderedResource[] = [];
      for (const d of docs) {
        const j = d.toJS() as Record<string, any> | null;
        if (!j || !j.kind) continue;
        const [g, v] = String(j.apiVersion ?? 'v1').includes('/') ? String(j.apiVersion).split('/') : ['', String(j.apiVersion ?? 'v1')];
        out.push({
          group: g,
          version: v,
          kind: j.kind,
          namespace: CLUSTER_SCOPED.has(j.kind) ? '' : (j.metadata?.namespace ?? defaultNamespace),
          name: j.metadata?.name ?? '',
          images: imagesOf(j),
          hash: createHash('sha256').update(JSON.stringify(j)).digest('hex').slice(0, 16),
          manifest: j,
        });
      }
      return out;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * The directories an ApplicationSet git directories generator finds at `sha` for `pattern` (`review/*`:
   * the direct subdirectories of review/; a pattern without `*` is one directory, if it exists).
   */
  async directories(sha: string, pattern: string): Promise<string[]> {
    await this.ensureCommit(sha);
    const star = pattern.indexOf('*');
    const prefix = star >= 0 ? pattern.slice(0, star) : pattern;
    const r = await run('git', ['-C', this.mirror, 'ls-tree', '-d', '--name-only', sha, star >= 0 ? prefix : prefix.replace(/\/+$/, '')]);
    if (r.code !== 0) return [];
    return r.out
      .toString()
      .split('\n')
      .filter(Boolean)
      .filter((d) => (star >= 0 ? d.startsWith(prefix) && !d.slice(prefix.length).includes('/') : d === prefix.replace(/\/+$/, '')));
  }

  /** waits for a fetch in flight, then removes the mirror (best effort: never fails a test's teardown) */
  async cleanup(): Promise<void> {
    await this.fetching?.catch(() => undefined);
    try {
      rmSync(this.mirror, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
    } catch {
      /* a git process still writing: the OS tmp cleaner will get it */
    }
  }
}
