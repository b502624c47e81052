/**
 * What runs where: per environment (an overlay of the config repo) and image, the reference pinned at the
 * branch tip, where it came from (the write-back trailers of the commit that set it: source project,
 * commit, pipeline, read through the stale guard's History and src/bump/message.ts), and what Argo CD
 * reports for the environment's app(s): sync, health, the config commit it runs and its deploy history.
 * `status` prints it; `rollback` plans from it.
 */
import { readFile } from 'node:fs/promises';

import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { resolveInside } from '../core/fsutil.js';
import { refOf } from '../bump/message.js';
import { History } from '../bump/guard.js';
import type { SparseClone } from '../git/clone.js';
import { findKustomization } from '../kustomize/overlay.js';
import { readImages, type ImageEntry } from '../kustomize/edit.js';
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

export async function kustomizationOf(clone: SparseClone, overlay: string): Promise<{ rel: string; text: string; images: ImageEntry[] }> {
  const dir = await resolveInside(clone.dir, overlay);
  if (!dir.inside) throw fail.usage(StatusErrors.OVERLAY, `overlay ${overlay} leaves the config repo`, { where: overlay });
  let abs: string;
  try {
    abs = await findKustomization(dir.real);
  } catch (e) {
    if (isGitopsError(e)) throw fail.usage(StatusErrors.OVERLAY, `environment overlay ${overlay}: ${e.message}`, { where: overlay, hint: '--env NAME reads <overlays>/NAME; --env NAME=PATH names the overlay dir' });
    throw e;
  }
  const file = await resolveInside(clone.dir, abs);
  if (!file.inside) throw fail.usage(StatusErrors.OVERLAY, `the kustomization of ${overlay} leaves the config repo (a symlink)`, { where: overlay });
  const rel = `${overlay}/${abs.slice(dir.real.length + 1)}`;
  const text = await readFile(file.real, 'utf8');
  return { rel, text, images: readImages(text, rel) };
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
    revision: st.sync?.revision ?? st.sync?.revisions?.[0],
    history: [...(st.history ?? [])].reverse().map((h) => ({ revision: h.revision ?? h.revisions?.[0] ?? '', deployedAt: h.deployedAt })),
  };
}

/** the tag and digest of an images[] entry's reference */
export function splitRef(e: ImageEntry): { tag?: string; digest?: string } {
  return { tag: e.newTag, digest: e.digest };
}

export async function envState(o: { clone: SparseClone; history: History; spec: EnvSpec; client?: ArgoClient; serverUrl?: string; log: Logger }): Promise<EnvState> {
  const { clone, spec } = o;
  const k = await kustomizationOf(clone, spec.overlay);
  const configHead = await clone.head();
  const apps = await Promise.all(spec.apps.map((a) => appState(o.client, a, o.serverUrl)));
  const images: ImageState[] = [];
  for (const e of k.images) {
    const ref = refOf(e);
    const prov = await o.history.provenance(k.rel, e.name, ref);
    let setAt: string | undefined;
    if (prov?.commit) setAt = (await clone.local(['show', '-s', '--format=%cI', prov.commit])).trim() || undefined;
    // Argo CD's history: the oldest deploy of the commit that set it, in an unbroken run up to now
    let deployedSince: string | undefined;
    for (const a of apps) {
      const h = [...a.history].reverse().find((x) => x.revision === prov?.commit);
      if (h?.deployedAt && (!deployedSince || h.deployedAt < deployedSince)) deployedSince = h.deployedAt;
    }
    images.push({
      image: e.name,
      ref,
      ...splitRef(e),
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

