/** Shared set-up of the `argocd …` commands: connection, client, login, app names. */
import { str, strs, type CommandContext, type OptionSpec, type Values } from '../core/command.js';
import { fail } from '../core/errors.js';
import { ArgoClient } from './client.js';
import { parseAppRef, resolveConnection } from './config.js';
import { ArgoErrors } from './errors.js';
import type { AppRef } from './types.js';

export const appOption: OptionSpec = { type: 'string', multiple: true, value: 'NAME', description: 'Application name, or NAMESPACE/NAME; repeat for several apps' };
export const dotenvOption: OptionSpec = { type: 'string', value: 'FILE', description: 'write ARGOCD_* outputs to FILE (GitLab artifacts:reports:dotenv)' };

export function appRefs(values: Values, env: NodeJS.ProcessEnv, opts: { single?: boolean } = {}): AppRef[] {
  const names = strs(values, 'app').flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  if (!names.length) throw fail.usage(ArgoErrors.CONFIG, 'no application: give --app NAME', { hint: 'e.g. --app shovel-staging, or --app team-ns/shovel-staging' });
  if (opts.single && names.length > 1) throw fail.usage(ArgoErrors.CONFIG, 'this command takes one --app');
  const ns = str(values, 'app-namespace') ?? (env.ARGOCD_APP_NAMESPACE || undefined);
  return names.map((n) => parseAppRef(n, ns, str(values, 'project')));
}

export async function connect(ctx: CommandContext, values: Values): Promise<ArgoClient> {
  const conn = resolveConnection(values, ctx.env);
  const client = new ArgoClient(conn, ctx.log);
  await client.login();
  return client;
}

/** a full commit SHA (sha1 or sha256): Argo CD reports resolved revisions in full */
export function checkSha(rev: string, flag = 'revision'): string {
  const r = rev.trim().toLowerCase();
  if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(r)) {
    throw fail.usage(ArgoErrors.CONFIG, `--${flag} ${JSON.stringify(rev)} is not a full commit SHA`, { hint: 'pass the full 40-character SHA of the config-repo commit (e.g. the output of `git rev-parse HEAD` after the push)' });
  }
  return r;
}

/** Runs validators and throws one usage error listing every problem. */
export function validateAll<T extends unknown[]>(...checks: { [K in keyof T]: () => T[K] }): T {
  const problems: string[] = [];
  const out = checks.map((c) => {
    try {
      return c();
    } catch (e) {
      const ge = e as { message: string; details?: string[] };
      if (ge.details?.length) problems.push(...ge.details);
      else problems.push(ge.message);
      return undefined;
    }
  }) as T;
  if (problems.length) {
    throw fail.usage(ArgoErrors.CONFIG, problems.length === 1 ? problems[0] : `${problems.length} configuration problems`, {
      details: problems.length > 1 ? problems : undefined,
      hint: 'see --help and docs/commands/argocd.md',
    });
  }
  return out;
}
