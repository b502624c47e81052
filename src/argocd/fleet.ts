/**
 * Fleets: an environment served by several Argo CD apps (one per cluster or region). The apps are named
 * with repeatable `--app`, matched by a label selector (`--selector`, as `argocd app wait -l`: GET
 * /api/v1/applications?selector=…), or taken from an ApplicationSet (`--appset`: the Applications its status
 * lists, else the apps it owns). The three may be combined; the union is waited for.
 */
import { str, strs, type OptionSpec, type Values } from '../core/command.js';
import { fail, isGitopsError } from '../core/errors.js';
import type { ArgoClient } from './client.js';
import { ArgoErrors } from './errors.js';
import { appLabel, type AppRef, type Application } from './types.js';

export const fleetOptions: Record<string, OptionSpec> = {
  selector: { type: 'string', value: 'LABELS', description: 'also every Application this label selector matches (k=v,k2 in (a,b)), as `argocd app wait -l`' },
  appset: { type: 'string', multiple: true, value: '[NS/]NAME', description: 'also every Application this ApplicationSet generated (repeatable)' },
};

export interface FleetSpec {
  selector?: string;
  appsets: Array<{ name: string; namespace?: string }>;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** reads --selector/--appset; throws a usage error on a malformed name */
export function fleetSpec(values: Values): FleetSpec {
  const selector = str(values, 'selector')?.trim() || undefined;
  const appsets = strs(values, 'appset')
    .flatMap((a) => a.split(','))
    .map((a) => a.trim())
    .filter(Boolean)
    .map((a) => {
      const parts = a.split('/');
      if (parts.length > 2 || parts.some((p) => !NAME.test(p))) throw fail.usage(ArgoErrors.CONFIG, `--appset ${JSON.stringify(a)} is not an ApplicationSet name`, { hint: 'use NAME or NAMESPACE/NAME' });
      return parts.length === 2 ? { namespace: parts[0], name: parts[1]! } : { name: parts[0]! };
    });
  return { selector, appsets };
}

export function hasFleet(f: FleetSpec): boolean {
  return !!f.selector || f.appsets.length > 0;
}

const refOf = (app: Application, project?: string): AppRef => ({ name: app.metadata?.name ?? '', namespace: app.metadata?.namespace && app.metadata.namespace !== 'argocd' ? app.metadata.namespace : undefined, project });

/**
 * The apps of the fleet, after `named` (the --app list), without duplicates, in a stable order. Empty
 * results are refused: a selector or an ApplicationSet that names nothing would make a wait pass on nothing.
 */
export async function resolveFleet(client: ArgoClient, named: AppRef[], f: FleetSpec, o: { appNamespace?: string; project?: string } = {}): Promise<AppRef[]> {
  const out = new Map<string, AppRef>();
  const add = (r: AppRef) => {
    if (r.name && !out.has(appLabel(r))) out.set(appLabel(r), r);
  };
  for (const r of named) add(r);
  if (f.selector) {
    const apps = await client.listApps({ selector: f.selector, appNamespace: o.appNamespace, project: o.project });
    if (!apps.length) {
      throw fail.usage(ArgoErrors.FLEET_EMPTY, `the selector ${JSON.stringify(f.selector)} matches no Application`, {
        hint: 'check the labels (`argocd app list -l …`), --app-namespace, and that the token may read the apps (Argo CD leaves out apps it may not)',
      });
    }
    for (const a of apps.sort((x, y) => (x.metadata?.name ?? '').localeCompare(y.metadata?.name ?? ''))) add(refOf(a, o.project));
  }
  for (const s of f.appsets) {
    let set;
    try {
      set = await client.getAppSet(s.name, s.namespace);
    } catch (e) {
      if (isGitopsError(e) && e.code === ArgoErrors.APP_NOT_FOUND) {
        throw fail.usage(ArgoErrors.APPSET_NOT_FOUND, `ApplicationSet ${s.namespace ? `${s.namespace}/` : ''}${s.name} not found`, { where: e.where, hint: 'check the name (`argocd appset list`) and its namespace (NS/NAME)' });
      }
      throw e;
    }
    let names = (set.status?.resources ?? []).filter((r) => !r.kind || r.kind === 'Application').map((r): AppRef => ({ name: r.name ?? '', namespace: r.namespace && r.namespace !== 'argocd' ? r.namespace : undefined, project: o.project }));
    if (!names.length) {
      // older controllers do not list resources: the apps whose ownerReference is this set
      const uid = set.metadata?.uid;
      const apps = await client.listApps({ appNamespace: o.appNamespace, project: o.project });
      names = apps.filter((a) => (a.metadata?.ownerReferences ?? []).some((r) => r.kind === 'ApplicationSet' && (uid ? r.uid === uid : r.name === s.name))).map((a) => refOf(a, o.project));
    }
    if (!names.length) {
      throw fail.usage(ArgoErrors.FLEET_EMPTY, `ApplicationSet ${s.name} has generated no Application`, { hint: 'check its generators and conditions (`argocd appset get`)' });
    }
    for (const r of names.sort((x, y) => appLabel(x).localeCompare(appLabel(y)))) add(r);
  }
  return [...out.values()];
}
