/**
 * `gitops-ci status [--env ENV]...`: per environment and image, what runs where: the reference pinned in the
 * overlay (digest, tag), its source commit and pipeline (the write-back trailers of the config commit that
 * set it), that config commit, since when Argo CD has run it (its history), and Argo CD's sync and health. A
 * table on stdout, or JSON (--json); in a pipeline, a GitLab annotations report (--annotations FILE).
 */
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs, type Values } from '../core/command.js';
import { fail, isGitopsError, type GitopsError } from '../core/errors.js';
import { intFlag, overlayFlag } from '../core/flags.js';
import { resolveInside, writeFileAtomic } from '../core/fsutil.js';
import { envOf } from '../bump/message.js';
import { History } from '../bump/guard.js';
import { Checkout } from '../writeback/checkout.js';
import { configBranch, configRemote, type Remote } from '../git/url.js';
import { ArgoClient } from '../argocd/client.js';
import { connectionOptions, parseAppRef, resolveConnection } from '../argocd/config.js';
import { shortSha } from '../argocd/types.js';
import { envState, type EnvSpec, type EnvState } from '../status/state.js';
import { StatusErrors } from '../status/errors.js';

export const spec: CommandSpec = {
  name: 'status',
  usage: 'gitops-ci status [--env ENV[=OVERLAY]]... [--repo URL|PATH] [--branch BRANCH] [--app ENV=APP[,APP]]... [--json] [--annotations FILE]',
  description: `
Print, per environment and image: the reference the overlay pins (digest, tag), the source commit and
pipeline it was built from and the config commit that set it (from the write-back trailers), since when
Argo CD runs it (the app's deploy history), and Argo CD's sync and health with the config commit it runs.
Environments: --env NAME (the overlay <--overlays>/NAME) or NAME=OVERLAY; all overlays under --overlays when
none is given. Argo CD apps: --app ENV=APP[,APP] (a fleet: several), else --app-template (default
{project}-{env}, project = CI_PROJECT_NAME) when ARGOCD_SERVER is set. Read-only: nothing is pushed.`,
  options: {
    env: { type: 'string', multiple: true, value: 'ENV[=OVERLAY]', description: 'an environment (repeatable; default: every overlay under --overlays)' },
    overlays: { type: 'string', value: 'DIR', description: 'where the environment overlays live in the config repo', default: '.kubernetes/overlays', env: ['GITOPS_OVERLAYS_DIR'] },
    repo: { type: 'string', value: 'URL|PATH', description: 'config repo: https URL (token from the environment), ssh URL (deploy key) or local path', env: ['GITOPS_CONFIG_REPO', 'CI_REPOSITORY_URL'] },
    branch: { type: 'string', value: 'BRANCH', description: 'branch of the config repo', env: ['GITOPS_CONFIG_BRANCH', 'CI_DEFAULT_BRANCH'] },
    app: { type: 'string', multiple: true, value: 'ENV=APP[,APP]', description: 'the Argo CD app(s) of an environment (repeatable)' },
    'app-template': { type: 'string', value: 'TEMPLATE', description: 'the app of an environment without --app: {env}, {project} (CI_PROJECT_NAME)', default: '{project}-{env}' },
    'history-depth': { type: 'string', value: 'N', description: 'how many commits back to look for the commit that set an image', default: '200' },
    json: { type: 'boolean', description: 'print JSON instead of the table' },
    timeout: { type: 'string', value: 'SECONDS', description: 'time limit for reading the config repo', default: '120' },
    annotations: { type: 'string', value: 'FILE', description: 'write a GitLab annotations report (artifacts:reports:annotations) linking each environment\'s Argo CD app, pipeline, source and config commits' },
    ...connectionOptions,
  },
  examples: [
    'gitops-ci status',
    'gitops-ci status --env staging --env production --app production=web-eu,web-us --json',
    'gitops-ci status --annotations status.json   # in a job: artifacts: reports: annotations: status.json',
  ],
};

interface Config {
  remote: Remote;
  branch: string;
  overlays: string;
  envs: Array<{ env: string; overlay?: string }>;
  appsByEnv: Map<string, string[]>;
  appTemplate?: string;
  historyDepth: number;
  annotations?: string;
  /** Date.now() ms */
  deadline: number;
}

function resolveConfig(values: Values, env: NodeJS.ProcessEnv, cwd: string): Config {
  const problems: string[] = [];
  const errors: GitopsError[] = [];
  const remote = configRemote(str(values, 'repo'), env, cwd, problems, errors);
  const branch = configBranch(str(values, 'branch'), env, problems, 'main') ?? 'main';
  const overlays = overlayFlag(str(values, 'overlays') ?? env.GITOPS_OVERLAYS_DIR ?? '.kubernetes/overlays', 'overlays', problems) ?? '';
  const envs = strs(values, 'env')
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => {
      const [name, overlay] = e.split(/=(.*)/s, 2) as [string, string | undefined];
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) problems.push(`--env ${JSON.stringify(e)}: ${JSON.stringify(name)} is not an environment name`);
      return { env: name, overlay: overlay !== undefined ? overlayFlag(overlay, 'env', problems) : undefined };
    });
  const appsByEnv = new Map<string, string[]>();
  for (const a of strs(values, 'app')) {
    const m = /^([^=]+)=(.+)$/.exec(a.trim());
    if (!m) {
      problems.push(`--app ${JSON.stringify(a)} must be ENV=APP[,APP]`);
      continue;
    }
    appsByEnv.set(m[1]!.trim(), m[2]!.split(',').map((x) => x.trim()).filter(Boolean));
  }
  const tmpl = str(values, 'app-template') ?? '{project}-{env}';
  const appTemplate = tmpl.includes('{project}') && !env.CI_PROJECT_NAME ? undefined : tmpl.replaceAll('{project}', env.CI_PROJECT_NAME ?? '');
  const historyDepth = intFlag(str(values, 'history-depth'), 'history-depth', 200, 1, 100_000, problems);
  const timeoutS = intFlag(str(values, 'timeout'), 'timeout', 120, 1, 86_400, problems);
  if (errors.length && !problems.length) throw errors[0];
  if (problems.length || errors.length) {
    const all = [...problems, ...errors.map((e) => e.message)];
    throw fail.usage(StatusErrors.CONFIG, all.length === 1 ? all[0]! : `${all.length} configuration problems`, { details: all.length > 1 ? all : undefined, hint: 'see gitops-ci status --help' });
  }
  return { remote: remote!, branch, overlays, envs, appsByEnv, appTemplate, historyDepth, annotations: str(values, 'annotations'), deadline: Date.now() + timeoutS * 1000 };
}

/** the web page of a commit in a GitLab-hosted repo (http remotes only) */
function commitUrl(repoWeb: string | undefined, sha: string | undefined): string | undefined {
  return repoWeb && sha ? `${repoWeb}/-/commit/${sha}` : undefined;
}

function repoWebOf(remote: Remote): string | undefined {
  if (remote.kind !== 'http') return undefined;
  const u = new URL(remote.url);
  u.username = '';
  u.password = '';
  return `${u.origin}${u.pathname.replace(/\.git$/, '').replace(/\/+$/, '')}`;
}

/** Argo CD's sync/health of an app, and that it is being deleted (the state it shows then is the last one it had) */
const appHealth = (a: { sync?: string; health?: string; deleting?: string }) => `${a.sync ?? '?'}/${a.health ?? '?'}${a.deleting ? ` (being deleted since ${a.deleting})` : ''}`;

export function table(states: EnvState[]): string {
  const rows: string[][] = [['ENV', 'IMAGE', 'TAG', 'DIGEST', 'SOURCE COMMIT', 'PIPELINE', 'CONFIG COMMIT', 'DEPLOYED SINCE', 'ARGO CD']];
  for (const s of states) {
    const argo = s.apps.length ? s.apps.map((a) => (a.error ? `${a.app}: ${a.error}` : `${a.app}: ${appHealth(a)} @${shortSha(a.revision)}${a.revision && a.revision !== s.configHead ? ` (tip ${shortSha(s.configHead)})` : ''}`)).join('; ') : '-';
    if (!s.images.length) rows.push([s.env, '(no images)', '-', '-', '-', '-', '-', '-', argo]);
    for (const i of s.images) {
      rows.push([
        s.env,
        i.image,
        i.tag ?? '-',
        i.digest ? `${i.digest.slice(0, 19)}…` : '-',
        i.sourceCommit ? shortSha(i.sourceCommit) : '-',
        i.pipelineId ? `#${i.pipelineId}` : '-',
        i.setBy ? shortSha(i.setBy) : '(no write-back trailer)',
        i.deployedSince ?? (i.setAt ? `${i.setAt} (committed)` : '-'),
        argo,
      ]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

/**
 * GitLab's annotations report: `{ "<section>": [{ "external_link": { "label", "url" } }] }`, one section per
 * environment (https://docs.gitlab.com/ci/yaml/artifacts_reports/#artifactsreportsannotations).
 */
export function annotations(states: EnvState[], o: { configWeb?: string; serverUrl?: string }): Record<string, Array<{ external_link: { label: string; url: string } }>> {
  const out: Record<string, Array<{ external_link: { label: string; url: string } }>> = {};
  for (const s of states) {
    const links: Array<{ external_link: { label: string; url: string } }> = [];
    const add = (label: string, url: string | undefined) => url && links.push({ external_link: { label, url } });
    for (const a of s.apps) add(`Argo CD ${a.app}: ${appHealth(a)}`, a.url);
    for (const i of s.images) {
      const short = i.image.slice(i.image.lastIndexOf('/') + 1);
      add(`${short}: pipeline #${i.pipelineId ?? '?'}`, i.pipelineUrl);
      add(`${short}: source commit ${shortSha(i.sourceCommit)}`, o.serverUrl && i.sourceProject && i.sourceCommit ? `${o.serverUrl}/${i.sourceProject}/-/commit/${i.sourceCommit}` : undefined);
      add(`${short}: merge requests of ${shortSha(i.sourceCommit)}`, o.serverUrl && i.sourceProject && i.sourceCommit ? `${o.serverUrl}/${i.sourceProject}/-/commit/${i.sourceCommit}/merge_requests` : undefined);
      add(`${short}: config commit ${shortSha(i.setBy)}`, commitUrl(o.configWeb, i.setBy));
    }
    out[`gitops-ci status: ${s.env}`] = links;
  }
  return out;
}

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const cfg = resolveConfig(values, ctx.env, ctx.cwd);
  const conn = ctx.env.ARGOCD_SERVER || str(values, 'server') ? resolveConnection(values, ctx.env) : undefined;
  const client = conn ? new ArgoClient(conn, ctx.log) : undefined;
  const paths = cfg.envs.length && cfg.envs.every((e) => e.overlay) ? cfg.envs.map((e) => e.overlay!) : [cfg.overlays, ...cfg.envs.filter((e) => e.overlay).map((e) => e.overlay!)];
  // read-only: the one write-back checkout (temp dir through core/cleanup, every path through resolveInside)
  const co = await Checkout.open({ remote: cfg.remote, branch: cfg.branch, paths, env: ctx.env, log: ctx.log, sshAcceptNew: false, deadline: cfg.deadline, purpose: 'status' });
  try {
    const clone = co.clone;
    let envs = cfg.envs;
    if (!envs.length) {
      const dirs = (await clone.local(['ls-tree', '-d', '--name-only', 'HEAD', `${cfg.overlays}/`])).split('\n').filter(Boolean);
      if (!dirs.length) throw fail.usage(StatusErrors.OVERLAY, `no environment overlays under ${cfg.overlays} on ${cfg.branch}`, { where: cfg.remote.display, hint: 'name them with --env ENV=OVERLAY, or point --overlays at their parent dir' });
      envs = dirs.map((d) => ({ env: envOf(d), overlay: d }));
    }
    await client?.login();
    const ns = str(values, 'app-namespace') ?? (ctx.env.ARGOCD_APP_NAMESPACE || undefined);
    const specs: EnvSpec[] = envs.map((e) => {
      const names = cfg.appsByEnv.get(e.env) ?? (client && cfg.appTemplate ? [cfg.appTemplate.replaceAll('{env}', e.env)] : []);
      return { env: e.env, overlay: e.overlay ?? `${cfg.overlays}/${e.env}`, apps: names.map((n) => parseAppRef(n, ns, str(values, 'project'))) };
    });
    const history = new History(clone, cfg.historyDepth);
    await history.moved(await clone.head());
    const states: EnvState[] = [];
    for (const s of specs) states.push(await envState({ co, history, spec: s, client, serverUrl: conn?.baseUrl, log: ctx.log }));
    if (bool(values, 'json')) ctx.log.stdout(JSON.stringify({ branch: cfg.branch, environments: states }, null, 2) + '\n');
    else ctx.log.stdout(table(states));
    if (cfg.annotations) {
      const target = await resolveInside(ctx.cwd, cfg.annotations);
      if (!target.inside) throw fail.usage(StatusErrors.WRITE, `--annotations ${cfg.annotations} is outside the working directory`, { where: cfg.annotations, hint: 'GitLab collects artifacts from the project directory: use a relative path' });
      try {
        await writeFileAtomic(target.real, JSON.stringify(annotations(states, { configWeb: repoWebOf(cfg.remote), serverUrl: ctx.env.CI_SERVER_URL }), null, 2) + '\n');
      } catch (e) {
        throw fail.failed(StatusErrors.WRITE, `cannot write ${cfg.annotations}: ${(e as Error).message}`, { where: cfg.annotations, cause: e });
      }
    }
    const images = states.reduce((n, s) => n + s.images.length, 0);
    const notOk = states.flatMap((s) => s.apps.filter((a) => !a.error && (a.sync !== 'Synced' || a.health !== 'Healthy' || !!a.deleting)).map((a) => (a.deleting ? `${a.app} (being deleted)` : a.app)));
    return { summary: `${states.length} environment${states.length === 1 ? '' : 's'}, ${images} image${images === 1 ? '' : 's'}${notOk.length ? `; not Synced/Healthy: ${notOk.join(', ')}` : ''}` };
  } catch (e) {
    if (isGitopsError(e)) throw e;
    throw e;
  } finally {
    client?.close();
    await co.close();
  }
}
