/**
 * Waiting for an app to exist (`argocd wait --wait-created`: an ApplicationSet generates it from a commit, e.g. a
 * review app's directory) or to be gone (`argocd wait --gone`: its directory was removed, or it was deleted).
 *
 * Only a 404 proves that an app does not exist: without a project, Argo CD answers 403 both for a missing app and
 * for one the token may not read (it does not tell which, so as not to reveal names), so both modes need the
 * project (`--project`), with which a missing app is `404 … not found` (test/contracts/argocd-swagger.json:
 * runtimeError for GET /api/v1/applications/{name}). A deleted app with a finalizer stays readable, with
 * `metadata.deletionTimestamp`, until Argo CD has deleted its resources (cascade): "gone" is the 404 after that.
 * Polls GET every --poll-interval; 5xx/network errors are retried for --retry-for; 401/403 stop at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ArgoClient, ArgoHttpError } from './client.js';
import { formatMs } from './duration.js';
import { ArgoErrors } from './errors.js';
import { appLabel, type AppRef, type Application } from './types.js';

export interface PresenceOptions {
  want: 'gone' | 'created';
  timeoutMs: number;
  pollIntervalMs: number;
  retryForMs: number;
}

/** the app, or undefined for a 404 (with the project, the proof it does not exist) */
async function lookUp(client: ArgoClient, ref: AppRef): Promise<Application | undefined> {
  try {
    return await client.getApp(ref);
  } catch (e) {
    if (e instanceof ArgoHttpError && e.status === 404) return undefined;
    throw e;
  }
}

/**
 * Wait until every app of `refs` is gone (404) or exists. Returns how long it took. Timeout: EARGOCD_TIMEOUT
 * (exit 4) naming the apps still there (and whether their deletion started) or still missing.
 */
export async function waitPresence(client: ArgoClient, log: Logger, refs: AppRef[], o: PresenceOptions): Promise<number> {
  const start = Date.now();
  const deadline = start + o.timeoutMs;
  const left = new Map(refs.map((r) => [appLabel(r), r]));
  const last = new Map<string, string>();
  let firstTransient: number | undefined;
  for (;;) {
    for (const [label, ref] of [...left]) {
      let app: Application | undefined;
      try {
        app = await lookUp(client, ref);
        firstTransient = undefined;
      } catch (e) {
        if (!isGitopsError(e) || e.kind !== 'transient') throw e;
        firstTransient ??= Date.now();
        if (Date.now() - firstTransient >= o.retryForMs) throw e;
        log.warn(`${label}: ${e.message}; retrying`);
        continue;
      }
      const state = !app ? 'not found (404)' : app.metadata?.deletionTimestamp ? `being deleted since ${app.metadata.deletionTimestamp} (finalizer: its resources go first)` : 'exists';
      if (last.get(label) !== state) log.info(`${label}: ${state}`);
      // a 404 at the first look passes too (a re-run stop job), but it is also what a wrong name gives
      if (!app && o.want === 'gone' && !last.has(label)) log.warn(`${label} was not found at the first look: already deleted, or never existed under this name (check --app, --app-namespace and --project)`);
      last.set(label, state);
      if ((o.want === 'gone') === !app) left.delete(label);
    }
    if (!left.size) return Date.now() - start;
    if (Date.now() + o.pollIntervalMs > deadline) {
      const names = [...left.keys()];
      throw fail.timeout(ArgoErrors.TIMEOUT, o.want === 'gone'
        ? `${names.join(', ')} still exist${names.length === 1 ? 's' : ''} after ${formatMs(o.timeoutMs)}`
        : `${names.join(', ')} did not appear in ${formatMs(o.timeoutMs)}`, {
        where: names.join(', '),
        details: names.map((n) => `${n}: ${last.get(n) ?? 'not read'}`),
        hint: o.want === 'gone'
          ? 'Argo CD deletes an ApplicationSet-generated app after its directory is gone from the branch the generator reads, and the app only after its resources (finalizer): check the ApplicationSet controller and the app\'s resources (argocd app get), or raise --timeout'
          : 'the ApplicationSet controller generates the app when it next reads the branch (every 3 minutes by default, at once after a webhook: `gitops-ci argocd notify`); check the generator\'s directories and the app name, or raise --timeout',
      });
    }
    await sleep(o.pollIntervalMs);
  }
}
