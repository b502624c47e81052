/**
 * `gitops-ci argocd sync --app NAME [--revision SHA] [--prune] [--wait]`: request a sync through
 * POST /api/v1/applications/{name}/sync. A sync window or "another operation is already in progress" is
 * waited out (retried until --timeout), not a failure. With --wait, the deploy predicate of `argocd wait`
 * must then hold for the synced revision.
 */
import { bool, str, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { fail } from '../core/errors.js';
import { descendantChecker } from '../argocd/ancestry.js';
import { ArgoClient, ArgoHttpError } from '../argocd/client.js';
import { connectionOptions, resolveConnection } from '../argocd/config.js';
import { formatMs, parseDuration } from '../argocd/duration.js';
import { ArgoErrors } from '../argocd/errors.js';
import { appOption, appRefs, dotenvOption, validateAll } from '../argocd/support.js';
import { appLabel, isAutomated, shortSha, type Application } from '../argocd/types.js';
import { outcomeLines, stateLine, waitForApps } from '../argocd/wait.js';
import { outputsOf } from './argocd-wait.js';

export const spec: CommandSpec = {
  name: 'argocd sync',
  usage: 'gitops-ci argocd sync --app NAME [--revision SHA] [--prune] [--wait] [--timeout DURATION]',
  description: `
Ask Argo CD to sync an application, optionally to a revision, and optionally wait until that revision is
deployed (the same predicate as \`argocd wait\`). While a sync window blocks syncing or another operation
is in progress, it waits and retries (every --retry-interval, up to --timeout) instead of failing.
For an app with automated sync, Argo CD refuses a revision other than its targetRevision, so the revision is
not sent: the app syncs its branch tip, and --wait verifies --revision (a later commit on the branch is
accepted when --allow-descendant is given).`,
  options: {
    app: appOption,
    revision: { type: 'string', value: 'SHA|REF', description: "revision to sync (default: the app's targetRevision)" },
    prune: { type: 'boolean', description: 'delete resources that are no longer in git' },
    wait: { type: 'boolean', description: 'wait until the synced revision is deployed and healthy' },
    timeout: { type: 'string', value: 'DURATION', description: 'overall limit for retries and --wait', default: '10m' },
    'retry-interval': { type: 'string', value: 'DURATION', description: 'retry interval while blocked by a sync window or another operation', default: '5s' },
    'allow-descendant': { type: 'boolean', description: 'with --wait: accept a later commit that contains --revision (git)' },
    dotenv: dotenvOption,
    ...connectionOptions,
  },
  examples: ['gitops-ci argocd sync --app shovel-production --revision "$CONFIG_SHA" --prune --wait --timeout 15m'],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isSha = (r: string) => /^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(r);

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const [refs, timeoutMs, retryMs, conn] = validateAll(
    () => appRefs(values, ctx.env, { single: true }),
    () => parseDuration(str(values, 'timeout') ?? '10m', 'timeout'),
    () => parseDuration(str(values, 'retry-interval') ?? '5s', 'retry-interval'),
    () => resolveConnection(values, ctx.env),
  );
  const ref = refs[0];
  const label = appLabel(ref);
  const deadline = Date.now() + timeoutMs;
  let revision = str(values, 'revision')?.trim();
  const client = new ArgoClient(conn, ctx.log);
  let descendants: ReturnType<typeof descendantChecker> | undefined;
  try {
    await client.login();
    // verify before mutating: the app exists and we may read it
    const app = await client.getApp(ref);
    ctx.log.info(`${label}: ${stateLine(app)}`);
    const target = app.spec?.source?.targetRevision || 'HEAD';
    let sendRevision = revision;
    if (revision && isAutomated(app) && revision !== target) {
      ctx.log.info(`${label} syncs automatically from ${target}: Argo CD refuses another revision for such apps, so the sync uses ${target}${bool(values, 'wait') ? ` and --wait checks ${shortSha(revision)}` : ''}`);
      sendRevision = undefined;
    }
    const requestedAt = Date.now();
    let blocked = '';
    let synced: Application | undefined;
    while (!synced) {
      try {
        synced = await client.sync(ref, { revision: sendRevision, prune: bool(values, 'prune') || undefined });
      } catch (e) {
        const busy = e instanceof ArgoHttpError && e.status === 400 && /another operation is already in progress/i.test(e.serverMessage);
        const window = e instanceof ArgoHttpError && e.status === 403 && /sync window/i.test(e.serverMessage);
        const transient = (e as { kind?: string }).kind === 'transient';
        if (!busy && !window && !transient) throw e;
        const why = busy ? 'another operation is in progress' : window ? 'a sync window blocks syncing' : `Argo CD is unavailable (${(e as Error).message})`;
        if (Date.now() + retryMs > deadline) {
          if (transient) throw e;
          throw fail.timeout(ArgoErrors.TIMEOUT, `${label}: could not start a sync within ${formatMs(timeoutMs)}: ${why}`, {
            where: `application ${label}`,
            hint: busy ? 'wait for the running operation, or terminate it in Argo CD if it is stuck' : 'run again after the sync window, or raise --timeout past it',
          });
        }
        if (why !== blocked) ctx.log.info(`${label}: ${why}; retrying every ${formatMs(retryMs)}`);
        blocked = why;
        await sleep(retryMs);
      }
    }
    ctx.log.info(`${label}: sync requested${sendRevision ? ` to ${shortSha(sendRevision)}` : ` (${target})`}${bool(values, 'prune') ? ' with prune' : ''}`);
    if (!bool(values, 'wait')) {
      return { summary: `${label}: sync requested${sendRevision ? ` to ${shortSha(sendRevision)}` : ''}`, outputs: { ARGOCD_APP: label, ARGOCD_REVISION: sendRevision ?? '' } };
    }
    // the revision to verify: the given SHA, else the one Argo CD resolved for our operation (the Sync API
    // resolves branches and tags before it sets the operation), else the one its result reports
    if (!revision || !isSha(revision)) {
      const resolved = synced.operation?.sync?.revision;
      revision = resolved && isSha(resolved) ? resolved : undefined;
      if (revision) ctx.log.info(`${label}: Argo CD resolved the sync to ${shortSha(revision)}`);
      while (!revision) {
        if (Date.now() > deadline) throw fail.timeout(ArgoErrors.TIMEOUT, `${label}: the sync did not resolve a revision within ${formatMs(timeoutMs)}`);
        const a = await client.getApp(ref);
        const os = a.status?.operationState;
        const rev = os?.syncResult?.revision;
        if (!a.operation && rev && os?.startedAt && Date.parse(os.startedAt) >= Math.floor(requestedAt / 1000) * 1000) revision = rev;
        else await sleep(Math.min(retryMs, 1000));
      }
    }
    const rev = revision.toLowerCase();
    descendants = bool(values, 'allow-descendant') ? descendantChecker({ env: ctx.env, cwd: ctx.cwd, log: ctx.log, deadline }) : undefined;
    const outcomes = await waitForApps(client, ctx.log, [ref], {
      revision: rev,
      timeoutMs: Math.max(1000, deadline - Date.now()),
      refresh: false,
      pollIntervalMs: 3000,
      retryForMs: Math.min(120_000, timeoutMs),
      streamIdleMs: 60_000,
      isDescendant: descendants?.isDescendant,
    });
    for (const l of outcomeLines(outcomes[0])) ctx.log.info(l);
    return { summary: `${label}: synced and deployed ${shortSha(outcomes[0].revision)}: Synced, Healthy`, outputs: outputsOf(outcomes) };
  } finally {
    client.close();
    await descendants?.cleanup();
  }
}
