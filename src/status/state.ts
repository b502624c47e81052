/**
 * What runs where: per environment (an overlay of the config repo) and image, the reference pinned at the
 * branch tip, where it came from (the write-back trailers of the commit that set it: source project,
 * commit, pipeline, read through the stale guard's History and src/bump/message.ts), and what Argo CD
 * reports for the environment's app(s): sync, health, the config commit it runs and its deploy history.
 * `status` prints it; `rollback` plans from it.
 */
import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { History } from '../bump/guard.js';
import { compareCommits } from '../git/ancestry.js';
import type { Checkout } from '../writeback/checkout.js';
import { refString } from '../writeback/pins.js';
import type { EditTarget, ImageRef } from '../edit/target.js';
import type { ArgoClient } from '../argocd/client.js';
import { appLabel, type AppRef, type Application } from '../argocd/types.js';
import { StatusErrors } from './errors.js';

export interface EnvSpec {
  env: string;
  /** overlay dir, relative to the config repo root */
  overlay: string;
  apps: AppRef[];
}

export interface AppState {
  app: string;
  /** undefined when Argo CD could not be asked (the reason is in `error`) */
  sync?: string;
  health?: string;
  /** Argo CD is deleting the app (metadata.deletionTimestamp): its sync and health are what it last had */
  deleting?: string;
  /** the config commit Argo CD compared with last (status.sync.revision) */
  revision?: string;
  /** Argo CD's deploy history, newest first: successful syncs */
  history: Array<{ revision: string; deployedAt?: string }>;
  url?: string;
  error?: string;
}

export interface ImageState {
  image: string;
  ref: string;
  tag?: string;
  digest?: string;
  /** the config commit that set `ref` (from its trailers), when a write-back commit records it */
  setBy?: string;
  setAt?: string;
  sourceProject?: string;
  sourceCommit?: string;
  pipelineId?: string;
  pipelineUrl?: string;
  /** when Argo CD first deployed the config commit that set it (its history), else undefined */
  deployedSince?: string;
}

export interface EnvState {
  env: string;
  overlay: string;
  file: string;
  /** the branch tip the overlay was read at */
  configHead: string;
  images: ImageState[];
  apps: AppState[];
}

/**
 * The file of an environment's overlay that pins its images (a kustomization, Helm values, manifests, an
 * Application, an Image Updater file: src/edit/), found and read through the one write-back checkout
 * (resolveInside on the directory and every entry of it, `--target-kind auto`'s rule), and the references
 * it holds.
 */
export async function pinnedFileOf(co: Checkout, overlay: string): Promise<{ rel: string; text: string; target: EditTarget; images: ImageRef[] }> {
  const where = `${overlay} (${co.branch})`;
  const loc = await co.locate(overlay, 'auto');
  if (!loc) throw fail.usage(StatusErrors.OVERLAY, `environment overlay ${overlay} holds no file that pins images (a kustomization, Helm values, manifests, an Argo CD Application or an Image Updater file)`, { where, hint: '--env NAME reads <overlays>/NAME; --env NAME=PATH names the overlay dir' });
  const text = await co.read(loc.file);
  return { rel: loc.file, text, target: loc.target, images: loc.target.images(text, loc.file) };
}

export function appUrl(server: string | undefined, app: AppRef): string | undefined {
  if (!server) return undefined;
  return `${server}/applications/${app.namespace ?? 'argocd'}/${app.name}`;
}

export async function appState(client: ArgoClient | undefined, ref: AppRef, serverUrl?: string): Promise<AppState> {
  const base = { app: appLabel(ref), history: [], url: appUrl(serverUrl, ref) };
  if (!client) return { ...base, error: 'Argo CD not configured' };
  let app: Application;
  try {
    app = await client.getApp(ref);
  } catch (e) {
    if (isGitopsError(e) && (e.kind === 'auth' || e.kind === 'usage') && /PERMISSION_DENIED|APP_NOT_FOUND/.test(e.code)) return { ...base, error: `not found or not readable (${e.code})` };
    throw e;
  }
  const st = app.status ?? {};
  return {
    ...base,
    sync: st.sync?.status,
    health: st.health?.status,
    deleting: app.metadata?.deletionTimestamp,
    revision: st.sync?.revision ?? st.sync?.revisions?.[0],
    history: [...(st.history ?? [])].reverse().map((h) => ({ revision: h.revision ?? h.revisions?.[0] ?? '', deployedAt: h.deployedAt })),
  };
}


/**
 * When the app began running `commit` without a break: walking its history (newest first) while each deploy is
 * `commit` or a later commit that contains it (git), the deployedAt of the oldest such deploy. A deploy of an
 * older commit (a rollback by a sync to an earlier revision) or of one git cannot relate ends the run: the
 * commit's own, older deploy does not make it "deployed since" then.
 */
async function runSince(dir: string, commit: string, history: AppState['history']): Promise<string | undefined> {
  let since: string | undefined;
  for (const h of history) {
    const order = h.revision === commit ? 'same' : await compareCommits(dir, commit, h.revision);
    if (order !== 'same' && order !== 'older') break;
    since = h.deployedAt ?? since;
  }
  return since;
}

export async function envState(o: { co: Checkout; history: History; spec: EnvSpec; client?: ArgoClient; serverUrl?: string; log: Logger }): Promise<EnvState> {
  const { spec } = o;
  const clone = o.co.clone;
  const k = await pinnedFileOf(o.co, spec.overlay);
  const configHead = await clone.head();
  const apps = await Promise.all(spec.apps.map((a) => appState(o.client, a, o.serverUrl)));
  const images: ImageState[] = [];
  for (const e of k.images) {
    const ref = refString(e);
    const prov = await o.history.provenance(k.rel, e.name, ref);
    let setAt: string | undefined;
    if (prov?.commit) setAt = (await clone.local(['show', '-s', '--format=%cI', prov.commit])).trim() || undefined;
    // Argo CD's history: the oldest deploy of the commit that set it, in an unbroken run up to now
    let deployedSince: string | undefined;
    for (const a of apps) {
      const since = prov?.commit ? await runSince(clone.dir, prov.commit, a.history) : undefined;
      if (since && (!deployedSince || since < deployedSince)) deployedSince = since;
    }
    images.push({
      image: e.name,
      ref,
      tag: e.tag,
      digest: e.digest,
      setBy: prov?.commit,
      setAt,
      sourceProject: prov?.project,
      sourceCommit: prov?.sourceCommit,
      pipelineId: prov?.pipelineId,
      pipelineUrl: prov?.pipelineUrl,
      deployedSince,
    });
  }
  return { env: spec.env, overlay: spec.overlay, file: k.rel, configHead, images, apps };
}

