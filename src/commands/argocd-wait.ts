/**
 * `gitops-ci argocd wait --app NAME... --revision SHA`: succeed only when Argo CD has deployed that commit
 * (synced to it, no operation pending, reconciled after the sync, Healthy). See src/argocd/predicate.ts.
 */
import { bool, str, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { descendantChecker } from '../argocd/ancestry.js';
import { connectionOptions, resolveConnection } from '../argocd/config.js';
import { ArgoClient } from '../argocd/client.js';
import { formatMs, parseDuration } from '../argocd/duration.js';
import { appOption, appRefs, checkSha, dotenvOption, validateAll } from '../argocd/support.js';
import { appLabel, shortSha } from '../argocd/types.js';
import { outcomeLines, waitForApps, type AppOutcome } from '../argocd/wait.js';

export const spec: CommandSpec = {
  name: 'argocd wait',
  usage: 'gitops-ci argocd wait --app NAME... --revision SHA [--timeout DURATION] [--allow-descendant] [--dotenv FILE]',
  description: `
Wait until Argo CD has deployed commit SHA of the config repo for every --app: the app's sync revision is SHA
(or, with --allow-descendant, a later commit that contains it), no operation is pending, the last sync
succeeded, Argo CD reconciled the app after that sync, it is Synced and Healthy. An app already in that
state returns at once; health from before the commit never counts. Fails fast (exit 1) on a failed sync of
the commit, a Degraded app or a ComparisonError/InvalidSpecError, naming the resources and messages. Follows
Argo CD's watch stream (resumed after a drop, polling when it is unavailable) and asks for a refresh when
Argo CD has not seen the commit yet.
Exit codes: 0 deployed, 1 failed deploy, 2 usage, 3 auth (401/403), 4 timeout, 75 Argo CD unreachable/5xx.`,
  options: {
    app: appOption,
    revision: { type: 'string', value: 'SHA', description: 'full SHA of the config-repo commit that must be deployed' },
    timeout: { type: 'string', value: 'DURATION', description: 'give up after this long: 30s, 10m, or seconds', default: '10m' },
    'allow-descendant': { type: 'boolean', description: 'also accept a later commit on the branch that contains SHA (decided with git)' },
    repo: { type: 'string', value: 'DIR|URL', description: "git repo for --allow-descendant: a local clone, or a URL (default: the app's repoURL; credentials as for bump: GITOPS_GIT_TOKEN, CI_JOB_TOKEN, SSH_PRIVATE_KEY)" },
    'skip-refresh': { type: 'boolean', description: 'do not ask Argo CD to refresh when it has not seen SHA yet' },
    poll: { type: 'boolean', description: 'poll instead of following the watch stream' },
    'poll-interval': { type: 'string', value: 'DURATION', description: 'poll interval when the watch stream is unavailable', default: '3s' },
    'retry-for': { type: 'string', value: 'DURATION', description: 'retry Argo CD 5xx/network errors this long before exit 75', default: '2m' },
    'stream-idle-timeout': { type: 'string', value: 'DURATION', description: 'reopen the watch stream after this long without data (proxies cut or stall idle streams)', default: '60s' },
    dotenv: dotenvOption,
    ...connectionOptions,
  },
  examples: [
    'gitops-ci argocd wait --app shovel-staging --revision "$CONFIG_SHA" --timeout 10m --dotenv deploy.env',
    'gitops-ci argocd wait --app team-a/web --app team-a/worker --revision "$CONFIG_SHA" --allow-descendant',
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

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const [refs, revision, timeoutMs, pollIntervalMs, retryForMs, streamIdleMs, conn] = validateAll(
    () => appRefs(values, ctx.env),
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
  );
  const client = new ArgoClient(conn, ctx.log);
  const descendants = bool(values, 'allow-descendant') ? descendantChecker({ env: ctx.env, cwd: ctx.cwd, log: ctx.log, repo: str(values, 'repo'), deadline: Date.now() + timeoutMs }) : undefined;
  try {
    await client.login();
    ctx.log.info(`waiting for ${refs.map(appLabel).join(', ')} to deploy ${shortSha(revision)} (timeout ${formatMs(timeoutMs)})`);
    const outcomes = await waitForApps(client, ctx.log, refs, {
      revision,
      timeoutMs,
      isDescendant: descendants?.isDescendant,
      refresh: !bool(values, 'skip-refresh'),
      pollIntervalMs,
      retryForMs: Math.min(retryForMs, timeoutMs),
      streamIdleMs,
      poll: bool(values, 'poll'),
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
