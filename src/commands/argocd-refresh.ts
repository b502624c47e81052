/**
 * `gitops-ci argocd refresh --app NAME [--hard]`: GET /api/v1/applications/{name}?refresh=normal|hard, which
 * returns once the controller has reconciled the app (so it has a client timeout: --timeout).
 */
import { bool, str, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { fail, isGitopsError } from '../core/errors.js';
import { ArgoClient } from '../argocd/client.js';
import { connectionOptions, resolveConnection } from '../argocd/config.js';
import { formatMs, parseDuration } from '../argocd/duration.js';
import { ArgoErrors } from '../argocd/errors.js';
import { appOption, appRefs, dotenvOption, validateAll } from '../argocd/support.js';
import { appLabel, shortSha } from '../argocd/types.js';
import { syncRevisions } from '../argocd/predicate.js';
import { stateLine } from '../argocd/wait.js';

export const spec: CommandSpec = {
  name: 'argocd refresh',
  usage: 'gitops-ci argocd refresh --app NAME... [--hard] [--timeout DURATION]',
  description: `
Ask Argo CD to compare the app with git now (a normal refresh; --hard also regenerates manifests without
the repo-server cache), and print the state after the reconcile: revision, sync, health.`,
  options: {
    app: appOption,
    hard: { type: 'boolean', description: 'hard refresh: regenerate manifests, bypassing the cache' },
    timeout: { type: 'string', value: 'DURATION', description: 'how long to wait for the reconcile', default: '2m' },
    dotenv: dotenvOption,
    ...connectionOptions,
  },
  examples: ['gitops-ci argocd refresh --app shovel-staging'],
};

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const [refs, timeoutMs, conn] = validateAll(
    () => appRefs(values, ctx.env),
    () => parseDuration(str(values, 'timeout') ?? '2m', 'timeout'),
    () => resolveConnection(values, ctx.env),
  );
  const client = new ArgoClient(conn, ctx.log);
  const kind = bool(values, 'hard') ? 'hard' : 'normal';
  try {
    await client.login();
    const apps = await Promise.all(
      refs.map(async (ref) => {
        try {
          const app = await client.getApp(ref, { refresh: kind, timeoutMs });
          ctx.log.info(`${appLabel(ref)}: ${stateLine(app)}`);
          return app;
        } catch (e) {
          if (isGitopsError(e) && e.kind === 'transient' && /in time/.test(e.message)) {
            throw fail.timeout(ArgoErrors.TIMEOUT, `${appLabel(ref)}: Argo CD did not finish the ${kind} refresh within ${formatMs(timeoutMs)}`, { where: `application ${appLabel(ref)}`, hint: 'the controller may be busy or the repo slow; raise --timeout' });
          }
          throw e;
        }
      }),
    );
    const first = apps[0];
    return {
      summary: `${refs.map(appLabel).join(', ')} refreshed (${kind}): ${shortSha(syncRevisions(first)[0])}, ${first.status?.sync?.status ?? 'Unknown'}, ${first.status?.health?.status ?? 'Unknown'}`,
      outputs: {
        ARGOCD_APP: refs.map(appLabel).join(','),
        ARGOCD_REVISION: syncRevisions(first)[0] ?? '',
        ARGOCD_SYNC_STATUS: first.status?.sync?.status ?? '',
        ARGOCD_HEALTH: first.status?.health?.status ?? '',
      },
    };
  } finally {
    client.close();
  }
}
