/**
 * `gitops-ci argocd wait --app NAME... --revision SHA`: succeed only when Argo CD has deployed that commit
 * (synced to it, no operation pending, reconciled after the sync, Healthy). See src/argocd/predicate.ts.
 */
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { descendantChecker } from '../argocd/ancestry.js';
import { connectionOptions, resolveConnection } from '../argocd/config.js';
import { ArgoClient } from '../argocd/client.js';
import { formatMs, parseDuration } from '../argocd/duration.js';
import { appOption, appRefs, checkSha, dotenvOption, validateAll } from '../argocd/support.js';
import { fleetOptions, fleetSpec, hasFleet, resolveFleet } from '../argocd/fleet.js';
import { appLabel, shortSha } from '../argocd/types.js';
import { outcomeLines, waitForApps, type AppOutcome } from '../argocd/wait.js';
import { waitPresence } from '../argocd/presence.js';

export const spec: CommandSpec = {
  name: 'argocd wait',
  usage: 'gitops-ci argocd wait (--app NAME... | --selector LABELS | --appset NAME) --revision SHA [--timeout DURATION] [--allow-descendant] [--wait-blocked] [--wait-created --project P] [--dotenv FILE]\n       gitops-ci argocd wait --app NAME... --gone --project P [--timeout DURATION]',
  description: `
Wait until Argo CD has deployed commit SHA of the config repo for every --app: the app's sync revision is SHA
(or, with --allow-descendant, a later commit that contains it), no operation is pending, the last sync
succeeded, Argo CD reconciled the app after that sync, it is Synced and Healthy. An app already in that
state returns at once; health from before the commit never counts. Fails fast (exit 1) on a failed sync of
the commit, a Degraded app or a ComparisonError/InvalidSpecError, naming the resources and messages. Follows
Argo CD's watch stream (resumed after a drop, polling when it is unavailable) and asks for a refresh when
Argo CD has not seen the commit yet. A fleet (several --app, a --selector, an --appset) passes only when
every app runs the commit; the error names each app that does not. An Argo Rollouts canary paused at a
step (exit 5) or a sync window holding the sync (exit 6, with when it opens) ends the wait at once, unless
--wait-blocked; an aborted canary is a failed deploy (exit 1, EARGOCD_ROLLOUT_ABORTED).
--wait-created first waits for the apps to exist (an ApplicationSet generates them from the commit, e.g. a
review app); --gone waits, instead of a deploy, until the apps are deleted (404). Both need --project: without
it Argo CD answers 403, not 404, for an app that does not exist.
Exit codes: 0 deployed, 1 failed deploy, 2 usage, 3 auth (401/403), 4 timeout, 5 canary paused, 6 sync window, 75 Argo CD unreachable/5xx.`,
  options: {
    app: appOption,
    ...fleetOptions,
    revision: { type: 'string', value: 'SHA', description: 'full SHA of the config-repo commit that must be deployed' },
    timeout: { type: 'string', value: 'DURATION', description: 'give up after this long: 30s, 10m, or seconds', default: '10m' },
    'allow-descendant': { type: 'boolean', description: 'also accept a later commit on the branch that contains SHA (decided with git)' },
    repo: { type: 'string', value: 'DIR|URL', description: "git repo for --allow-descendant: a local clone, or a URL (default: the app's repoURL; credentials as for bump: GITOPS_GIT_TOKEN, CI_JOB_TOKEN, SSH_PRIVATE_KEY)" },
    'wait-blocked': { type: 'boolean', description: 'keep waiting through a paused canary or a sync window (reported instead of a timeout at the end)' },
    'skip-refresh': { type: 'boolean', description: 'do not ask Argo CD to refresh when it has not seen SHA yet' },
    poll: { type: 'boolean', description: 'poll instead of following the watch stream' },
    'poll-interval': { type: 'string', value: 'DURATION', description: 'poll interval when the watch stream is unavailable', default: '3s' },
    'retry-for': { type: 'string', value: 'DURATION', description: 'retry Argo CD 5xx/network errors this long before exit 75', default: '2m' },
    'stream-idle-timeout': { type: 'string', value: 'DURATION', description: 'reopen the watch stream after this long without data (proxies cut or stall idle streams)', default: '60s' },
    'wait-created': { type: 'boolean', description: 'the apps may not exist yet (an ApplicationSet generates them): wait for them first (needs --project)' },
    gone: { type: 'boolean', description: 'wait until the apps are deleted (404; needs --project), instead of a deploy: the stop of a review app' },
    dotenv: dotenvOption,
    ...connectionOptions,
  },
  examples: [
    'gitops-ci argocd wait --app shovel-staging --revision "$CONFIG_SHA" --timeout 10m --dotenv deploy.env',
    'gitops-ci argocd wait --app team-a/web --app team-a/worker --revision "$CONFIG_SHA" --allow-descendant',
    'gitops-ci argocd wait --appset web-production --revision "$CONFIG_SHA"   # every cluster the ApplicationSet generated',
    'gitops-ci argocd wait --selector env=production,team=web --revision "$CONFIG_SHA"',
    'gitops-ci argocd wait --app shovel-review-mr-12 --project default --wait-created --revision "$CONFIG_SHA"   # a review app',
    'gitops-ci argocd wait --app shovel-review-mr-12 --project default --gone --timeout 5m   # after review down',
  ],
};

export function outputsOf(outcomes: AppOutcome[]): Record<string, string> {
  const first = outcomes[0];
  const images = [...new Set(outcomes.flatMap((o) => o.app.status?.summary?.images ?? []))];
  return {
    ARGOCD_APP: outcomes.map((o) => appLabel(o.ref)).join(','),
    ARGOCD_REVISION: first?.revision ?? '',
    ARGOCD_SYNC_STATUS: first?.app.status?.sync?.status ?? '',
    ARGOCD_HEALTH: first?.app.status?.health?.status ?? '',
    ARGOCD_IMAGES: images.join(','),
    // the app's first http(s) external URL (its Ingress hosts): the deploy components' dynamic environment URL
    ARGOCD_URL: first?.app.status?.summary?.externalURLs?.find((u) => /^https?:\/\/[^\s"'<>]+$/.test(u)) ?? '',
    ARGOCD_WAIT_SECONDS: first ? (Math.max(...outcomes.map((o) => o.durationMs)) / 1000).toFixed(1) : '',
  };
}

/** --gone: wait until every --app is deleted (src/argocd/presence.ts) */
async function runGone(ctx: CommandContext, values: ParsedArgs['values']): Promise<CommandResult> {
  const [refs, timeoutMs, pollIntervalMs, retryForMs, conn] = validateAll(
    () => {
      if (hasFleet(fleetSpec(values))) throw new Error('--gone takes --app NAME (an app being deleted no longer matches a selector or its ApplicationSet)');
      if (str(values, 'revision')) throw new Error('--gone waits for a deletion: --revision does not apply');
      if (bool(values, 'wait-created')) throw new Error('--gone and --wait-created exclude each other');
      return appRefs(values, ctx.env);
    },
    () => parseDuration(str(values, 'timeout') ?? '10m', 'timeout'),
    () => parseDuration(str(values, 'poll-interval') ?? '3s', 'poll-interval'),
    () => parseDuration(str(values, 'retry-for') ?? '2m', 'retry-for'),
    () => resolveConnection(values, ctx.env),
    () => needProject(values, 'gone'),
  );
  const client = new ArgoClient(conn, ctx.log);
  try {
    await client.login();
    ctx.log.info(`waiting for ${refs.map(appLabel).join(', ')} to be deleted (timeout ${formatMs(timeoutMs)})`);
    const ms = await waitPresence(client, ctx.log, refs, { want: 'gone', timeoutMs, pollIntervalMs, retryForMs: Math.min(retryForMs, timeoutMs) });
    return { summary: `${refs.map(appLabel).join(', ')} deleted (404)`, outputs: { ARGOCD_APP: refs.map(appLabel).join(','), ARGOCD_WAIT_SECONDS: (ms / 1000).toFixed(1) } };
  } finally {
    client.close();
  }
}

/** only with the project does Argo CD answer 404 for a missing app (403 otherwise, as for an app the token may not read) */
function needProject(values: ParsedArgs['values'], flag: string): void {
  if (!str(values, 'project')) throw new Error(`--${flag} needs --project: without it Argo CD answers 403 for an app that does not exist, the same as for one the token may not read`);
}

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  if (bool(values, 'gone')) return runGone(ctx, values);
  const created = bool(values, 'wait-created');
  const [[named, fleet], revision, timeoutMs, pollIntervalMs, retryForMs, streamIdleMs, conn] = validateAll(
    () => {
      const f = fleetSpec(values);
      return [strs(values, 'app').length || !hasFleet(f) ? appRefs(values, ctx.env) : [], f] as const;
    },
    () => {
      const r = str(values, 'revision');
      if (!r) throw new Error('no --revision: give the full SHA of the config-repo commit to verify');
      return checkSha(r);
    },
    () => parseDuration(str(values, 'timeout') ?? '10m', 'timeout'),
    () => parseDuration(str(values, 'poll-interval') ?? '3s', 'poll-interval'),
    () => parseDuration(str(values, 'retry-for') ?? '2m', 'retry-for'),
    () => parseDuration(str(values, 'stream-idle-timeout') ?? '60s', 'stream-idle-timeout'),
    () => resolveConnection(values, ctx.env),
    () => (created ? needProject(values, 'wait-created') : undefined),
  );
  const client = new ArgoClient(conn, ctx.log);
  const descendants = bool(values, 'allow-descendant') ? descendantChecker({ env: ctx.env, cwd: ctx.cwd, log: ctx.log, repo: str(values, 'repo'), deadline: Date.now() + timeoutMs }) : undefined;
  try {
    await client.login();
    let left = timeoutMs;
    if (created) {
      // an ApplicationSet generates the apps from the commit: they may not exist yet (src/argocd/presence.ts)
      left = Math.max(1000, timeoutMs - await waitPresence(client, ctx.log, named, { want: 'created', timeoutMs, pollIntervalMs, retryForMs: Math.min(retryForMs, timeoutMs) }));
    }
    const refs = hasFleet(fleet) ? await resolveFleet(client, named, fleet, { appNamespace: str(values, 'app-namespace') ?? (ctx.env.ARGOCD_APP_NAMESPACE || undefined), project: str(values, 'project') }) : named;
    ctx.log.info(`waiting for ${refs.map(appLabel).join(', ')} to deploy ${shortSha(revision)} (timeout ${formatMs(timeoutMs)})`);
    const outcomes = await waitForApps(client, ctx.log, refs, {
      revision,
      timeoutMs: left,
      isDescendant: descendants?.isDescendant,
      refresh: !bool(values, 'skip-refresh'),
      pollIntervalMs,
      retryForMs: Math.min(retryForMs, timeoutMs),
      streamIdleMs,
      poll: bool(values, 'poll'),
      waitBlocked: bool(values, 'wait-blocked'),
    });
    for (const o of outcomes) for (const l of outcomeLines(o)) ctx.log.info(l);
    const sup = outcomes.some((o) => o.superseded);
    return {
      summary: `${outcomes.map((o) => appLabel(o.ref)).join(', ')} deployed ${shortSha(outcomes[0].revision)}${sup ? ` (descendant of ${shortSha(revision)})` : ''}: Synced, Healthy`,
      outputs: outputsOf(outcomes),
    };
  } finally {
    client.close();
    await descendants?.cleanup();
  }
}
