/**
 * `gitops-ci rollback --env ENV [--to DIGEST|CONFIG-COMMIT|STEPS]`: return an environment to a state Argo CD
 * deployed before. The earlier states come from the overlay's history (the write-back commits), verified
 * against Argo CD's deploy history; the rollback is a NEW write-back commit that pins the old references
 * (their provenance trailers carried over), never a git revert of other changes. It goes the way a
 * promotion goes: pushed with bump's machinery (--via push), or as a merge request the gate checks (--via mr).
 */
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs, type Values } from '../core/command.js';
import { fail, type GitopsError } from '../core/errors.js';
import { intFlag, overlayFlag } from '../core/flags.js';
import { originFromCi, shortImageOf, type SkipCi } from '../bump/message.js';
import { bump } from '../bump/bump.js';
import { Checkout } from '../writeback/checkout.js';
import { configBranch, configRemote, type Remote } from '../git/url.js';
import { ArgoClient } from '../argocd/client.js';
import { connectionOptions, parseAppRef, resolveConnection } from '../argocd/config.js';
import { gitlabConnectionOptions } from '../gitlab/config.js';
import { pinDigests, readSource } from '../promote/source.js';
import { originOf, promote, rollbackBranch, trailersOf, type MergeRequestApi } from '../promote/promote.js';
import { appState, pinnedFileOf } from '../status/state.js';
import { describe, pick, verify, versions } from '../rollback/plan.js';
import { RollbackErrors } from '../rollback/errors.js';

export const TRAILER_ROLLBACK_TO = 'Gitops-Rollback-To';

export const spec: CommandSpec = {
  name: 'rollback',
  usage: 'gitops-ci rollback --env ENV [--to DIGEST|CONFIG-COMMIT|STEPS] [--image NAME]... [--app APP[,APP]] [--via push|mr] [--dry-run] [--dotenv FILE]',
  description: `
Return environment ENV to a state that Argo CD deployed before. The states are the overlay's earlier
versions (commits that changed it, newest first); a state is verified when every app of the environment has
it in its deploy history. --to 1 (the default) takes the verified state before the current one, --to N the
N-th, --to CONFIG-COMMIT a commit from the overlay's history, --to sha256:… the newest state pinning that
digest. The rollback is a new write-back commit pinning the old references by digest, with their source
commit and pipeline as provenance and a ${'Gitops-Rollback-To'} trailer: pushed as bump pushes (--via push),
or as a merge request into the branch that the gate checks, as a promotion (--via mr).
ENV defaults to CI_ENVIRONMENT_NAME (the job's environment:name). Apps: --app, else --app-template.`,
  options: {
    env: { type: 'string', value: 'ENV', description: 'the environment to roll back (its overlay: <--overlays>/ENV, or --overlay)', env: ['CI_ENVIRONMENT_NAME'] },
    overlay: { type: 'string', value: 'DIR', description: "the environment's overlay dir, when not <--overlays>/ENV" },
    overlays: { type: 'string', value: 'DIR', description: 'where the environment overlays live', default: '.kubernetes/overlays', env: ['GITOPS_OVERLAYS_DIR'] },
    to: { type: 'string', value: 'DIGEST|COMMIT|STEPS', description: 'the state to return to', default: '1' },
    image: { type: 'string', multiple: true, value: 'NAME', description: 'roll back only this images[].name (repeatable; default: every image of the overlay)' },
    repo: { type: 'string', value: 'URL|PATH', description: 'config repo', env: ['GITOPS_CONFIG_REPO', 'CI_REPOSITORY_URL'] },
    branch: { type: 'string', value: 'BRANCH', description: 'branch of the config repo', env: ['GITOPS_CONFIG_BRANCH', 'CI_DEFAULT_BRANCH'] },
    app: { type: 'string', value: 'APP[,APP]', description: 'the Argo CD app(s) of the environment (a fleet: several)' },
    'app-template': { type: 'string', value: 'TEMPLATE', description: 'the app without --app: {env}, {project} (CI_PROJECT_NAME)', default: '{project}-{env}' },
    'allow-unverified': { type: 'boolean', description: 'also return to a state Argo CD has no record of deploying (its history keeps 10 syncs)' },
    via: { type: 'string', value: 'push|mr', description: 'commit to the branch, or open/update a merge request into it (the gate checks it)', default: 'push' },
    label: { type: 'string', multiple: true, value: 'LABEL', description: '--via mr: label for the merge request' },
    'history-depth': { type: 'string', value: 'N', description: 'how many commits of the overlay to look back', default: '200' },
    'author-name': { type: 'string', value: 'NAME', description: 'commit author name', default: 'gitops-ci', env: ['GITLAB_USER_NAME'] },
    'author-email': { type: 'string', value: 'EMAIL', description: 'commit author email', default: 'gitops-ci@noreply.invalid', env: ['GITLAB_USER_EMAIL'] },
    'skip-ci': { type: 'string', value: 'MODE', description: 'message, push-option or none (default: message for push, none for mr)', env: ['GITOPS_SKIP_CI'] },
    timeout: { type: 'string', value: 'SECONDS', description: 'time limit for the whole rollback', default: '300' },
    'dry-run': { type: 'boolean', description: 'plan and print the target; push nothing' },
    dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_ROLLBACK_TO, GITOPS_CHANGED, GITOPS_COMMIT_SHA, GITOPS_CONFIG_HEAD, GITOPS_MR_URL to FILE' },
    // --project is Argo CD's (as for argocd wait); GitLab's project is --gitlab-project
    ...gitlabConnectionOptions('gitlab-project'),
    ...connectionOptions,
  },
  examples: [
    'gitops-ci rollback --env production                       # the verified state before the current one',
    'gitops-ci rollback --env production --to 4f1c0c0f --via mr  # a merge request the gate checks',
    'gitops-ci rollback --env staging --to sha256:3f2a9c1b…',
  ],
};

interface Config {
  remote: Remote;
  branch: string;
  env: string;
  overlay: string;
  to: string;
  names: string[];
  apps: string[];
  via: 'push' | 'mr';
  skipCi: SkipCi;
  historyDepth: number;
  deadline: number;
}

function resolveConfig(values: Values, env: NodeJS.ProcessEnv, cwd: string): Config {
  const problems: string[] = [];
  const errors: GitopsError[] = [];
  const remote = configRemote(str(values, 'repo'), env, cwd, problems, errors);
  const branch = configBranch(str(values, 'branch'), env, problems, 'main') ?? 'main';
  const name = str(values, 'env') ?? env.CI_ENVIRONMENT_NAME;
  if (!name) problems.push('no --env: name the environment to roll back (CI_ENVIRONMENT_NAME in a job with environment:)');
  else if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(name)) problems.push(`--env ${JSON.stringify(name)} is not an environment name`);
  const overlays = str(values, 'overlays') ?? env.GITOPS_OVERLAYS_DIR ?? '.kubernetes/overlays';
  const overlay = overlayFlag(str(values, 'overlay') ?? `${overlays}/${name ?? ''}`, 'overlay', problems) ?? '';
  const via = str(values, 'via') ?? 'push';
  if (via !== 'push' && via !== 'mr') problems.push(`--via must be push or mr (got ${JSON.stringify(via)})`);
  const skipCi = (str(values, 'skip-ci') ?? env.GITOPS_SKIP_CI ?? (via === 'mr' ? 'none' : 'message')) as SkipCi;
  if (!['message', 'push-option', 'none'].includes(skipCi)) problems.push(`--skip-ci must be message, push-option or none (got ${JSON.stringify(skipCi)})`);
  const to = str(values, 'to') ?? '1';
  if (!/^(\d{1,3}|sha256:[0-9a-f]{12,64}|[0-9a-f]{7,64})$/i.test(to.trim())) problems.push(`--to ${JSON.stringify(to)} is neither a number of steps, a config commit nor a digest (sha256:…)`);
  else if (/^0+$/.test(to.trim())) problems.push(`--to ${JSON.stringify(to)} is no step back: 1 is the verified state before the current one`);
  const names = [...new Set(strs(values, 'image'))];
  const tmpl = str(values, 'app-template') ?? '{project}-{env}';
  const apps = str(values, 'app')
    ? str(values, 'app')!.split(',').map((a) => a.trim()).filter(Boolean)
    : tmpl.includes('{project}') && !env.CI_PROJECT_NAME
      ? []
      : [tmpl.replaceAll('{project}', env.CI_PROJECT_NAME ?? '').replaceAll('{env}', (name ?? '').split('/').pop()!)];
  const historyDepth = intFlag(str(values, 'history-depth'), 'history-depth', 200, 1, 100_000, problems);
  const timeoutS = intFlag(str(values, 'timeout'), 'timeout', 300, 1, 86_400, problems);
  if (errors.length && !problems.length) throw errors[0];
  if (problems.length || errors.length) {
    const all = [...problems, ...errors.map((e) => e.message)];
    throw fail.usage(RollbackErrors.CONFIG, all.length === 1 ? all[0]! : `${all.length} configuration problems`, { details: all.length > 1 ? all : undefined, hint: 'see gitops-ci rollback --help' });
  }
  return { remote: remote!, branch, env: name!, overlay, to, names, apps, via: via as 'push' | 'mr', skipCi, historyDepth, deadline: Date.now() + timeoutS * 1000 };
}

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const { log, env } = ctx;
  const cfg = resolveConfig(values, env, ctx.cwd);
  const dryRun = bool(values, 'dry-run');
  const conn = env.ARGOCD_SERVER || str(values, 'server') ? resolveConnection(values, env) : undefined;
  if (!conn && !bool(values, 'allow-unverified')) {
    throw fail.usage(RollbackErrors.CONFIG, 'rollback returns to a state Argo CD deployed, and no Argo CD server is configured', { hint: 'set ARGOCD_SERVER and ARGOCD_AUTH_TOKEN (and --app), or pass --allow-unverified to trust the config repo\'s history alone' });
  }
  // GitLab first for --via mr: a missing token fails before anything is read or pushed
  let mrApi: MergeRequestApi | undefined;
  const getMrApi = async (): Promise<MergeRequestApi> => {
    if (!mrApi) {
      const { mergeRequestApi } = await import('../promote/gitlab.js');
      mrApi = await mergeRequestApi(ctx, { ...values, project: values['gitlab-project'] }, cfg.remote);
    }
    return mrApi;
  };
  if (cfg.via === 'mr' && !dryRun) await getMrApi();

  const client = conn ? new ArgoClient(conn, log) : undefined;
  // read-only: the one write-back checkout (temp dir through core/cleanup, every path through resolveInside)
  const co = await Checkout.open({ remote: cfg.remote, branch: cfg.branch, paths: [cfg.overlay], env, log, sshAcceptNew: false, deadline: cfg.deadline, purpose: 'rollback' });
  let target;
  let file: string;
  let head: string;
  try {
    const clone = co.clone;
    const pinned = await pinnedFileOf(co, cfg.overlay);
    file = pinned.rel;
    head = await clone.head();
    const { current, earlier } = await versions(clone, pinned.target, file, cfg.historyDepth, cfg.names);
    await client?.login();
    const ns = str(values, 'app-namespace') ?? (env.ARGOCD_APP_NAMESPACE || undefined);
    const apps = await Promise.all(cfg.apps.map((a) => appState(client, parseAppRef(a, ns, str(values, 'project')))));
    const missing = apps.filter((a) => a.error);
    if (client && (missing.length || !apps.length)) {
      throw fail.usage(RollbackErrors.CONFIG, apps.length ? `Argo CD app ${missing.map((a) => `${a.app} (${a.error})`).join(', ')} of ${cfg.env}` : `no Argo CD app for ${cfg.env}`, { hint: 'name the environment\'s app(s) with --app APP[,APP]' });
    }
    await verify(clone, pinned.target, file, earlier, apps, cfg.names);
    log.info(`${cfg.env} now: ${describe({ ...current, verified: false }).replace(/ \(not in Argo CD's history\)$/, '')}`);
    for (const v of earlier.slice(0, 10)) log.info(`  earlier ${describe(v)}`);
    target = pick(cfg.to, earlier);
    if (!target.verified && !bool(values, 'allow-unverified')) {
      throw fail.failed(RollbackErrors.NOT_VERIFIED, `${cfg.env} never ran ${target.commit.slice(0, 12)} according to Argo CD: not a verified state`, {
        where: `${file} at ${target.commit.slice(0, 12)}`,
        details: ['verified states:', ...earlier.filter((v) => v.verified).map((v) => `  ${describe(v)}`)],
        hint: 'pick a verified state (--to N counts only those), or --allow-unverified if Argo CD\'s history (10 syncs) no longer holds it',
      });
    }
  } finally {
    client?.close();
    await co.close();
  }
  log.info(`rolling ${cfg.env} back to ${describe(target)}`);

  // the old references, read at the target commit with their provenance, pinned by digest (as promote does)
  const source = await readSource({ remote: cfg.remote, branch: cfg.branch, from: cfg.overlay, revision: target.commit, names: Object.keys(target.refs), env, log, deadline: cfg.deadline, sshAcceptNew: false, historyDepth: cfg.historyDepth });
  const pinned = await pinDigests(source.images, { requireDigest: true, copyTo: new Map(), log });
  const job = originFromCi(env);
  const author = { name: str(values, 'author-name') || env.GITLAB_USER_NAME || 'gitops-ci', email: str(values, 'author-email') || env.GITLAB_USER_EMAIL || 'gitops-ci@noreply.invalid' };
  const trailers: Array<[string, string | undefined]> = [[TRAILER_ROLLBACK_TO, target.commit], ...trailersOf({ from: cfg.overlay, source, verifyJob: undefined, fromApp: cfg.apps.join(',') || undefined })];
  let commit: string | undefined;
  let changed: boolean;
  let mrUrl: string | undefined;
  let configHead: string;
  if (cfg.via === 'push') {
    const out = await bump({
      remote: cfg.remote,
      branch: cfg.branch,
      overlays: [cfg.overlay],
      // the pins travel as objects from where they were read to the edit layer
      pins: pinned.map((p) => p.pin),
      targetKind: 'auto',
      template: `rollback {images} in {envs} to ${target.commit.slice(0, 12)}`,
      skipCi: cfg.skipCi,
      render: false,
      // a rollback returns to an older build on purpose: the stale guard does not apply
      allowDowngrade: true,
      dryRun,
      author,
      origin: originOf(pinned, source, job),
      maxAttempts: 20,
      deadline: cfg.deadline,
      historyDepth: 1,
      sshAcceptNew: false,
      env,
      log,
      trailers,
    });
    if (out.diff && dryRun) log.stdout(out.diff.endsWith('\n') ? out.diff : `${out.diff}\n`);
    commit = out.commit;
    changed = out.changed;
    configHead = out.head;
  } else {
    const out = await promote({
      remote: cfg.remote,
      branch: cfg.branch,
      from: cfg.overlay,
      to: cfg.overlay,
      source,
      pinned,
      targetKind: 'auto',
      fromApp: cfg.apps.join(',') || undefined,
      via: 'mr',
      skipCi: cfg.skipCi,
      dryRun,
      author,
      job,
      maxAttempts: 20,
      deadline: cfg.deadline,
      sshAcceptNew: false,
      render: true,
      mr: { labels: strs(values, 'label'), assignees: [], reviewers: [], draft: false, autoMerge: false, autoMergeTimeoutMs: 120_000, title: `Rollback ${cfg.env} to ${target.commit.slice(0, 12)}` },
      mrBranch: rollbackBranch(cfg.overlay),
      mrApi: getMrApi,
      env,
      log,
    });
    commit = out.commit;
    changed = out.changed;
    mrUrl = out.mr?.webUrl;
    configHead = out.head;
  }
  const listing = pinned.map((p) => `${shortImageOf(p.name)}@${p.digest.slice(0, 19)}…`).join(', ');
  const outputs = { GITOPS_ROLLBACK_TO: target.commit, GITOPS_CHANGED: changed && !dryRun ? 'true' : 'false', GITOPS_COMMIT_SHA: dryRun ? undefined : commit, GITOPS_CONFIG_HEAD: configHead, GITOPS_MR_URL: mrUrl };
  if (dryRun) return { summary: `dry run: would roll ${cfg.env} back to ${target.commit.slice(0, 12)} (${listing}); nothing pushed`, outputs };
  if (!changed) return { summary: `no change: ${cfg.env} already pins what ${target.commit.slice(0, 12)} pinned (${listing}); config HEAD ${head.slice(0, 12)}`, outputs };
  if (mrUrl) return { summary: `merge request opened to roll ${cfg.env} back to ${target.commit.slice(0, 12)} (${listing}): ${mrUrl}`, outputs };
  return { summary: `pushed ${commit!.slice(0, 12)} to ${cfg.branch}: rolled ${cfg.env} back to ${target.commit.slice(0, 12)} (${listing})`, outputs };
}
