/**
 * gitops-ci promote: move exactly what one environment runs to another, by digest, never a rebuild.
 * Resolves the whole configuration first (flags over GitLab variables), reads the source overlay (at the
 * revision Argo CD verified, with --from-app), pins digests (resolving tags, copying with --copy-to), then
 * commits to the branch (bump's machinery) or opens/updates one merge request. See docs/commands/promote.md.
 */
import { bool, str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs, type Values } from '../core/command.js';
import { checkDeployFreeze } from '../core/freeze.js';
import { fail, type GitopsError } from '../core/errors.js';
import { intFlag, overlayFlag } from '../core/flags.js';
import { redactUrl } from '../core/mask.js';
import { envOf, originFromCi, shortImageOf, tersely, type Origin, type SkipCi } from '../bump/message.js';
import { configBranch, configRemote, type Remote } from '../git/url.js';
import { makeRegistries, registryOptions } from '../registry/options.js';
import { parseRef } from '../registry/ref.js';
import type { Registries } from '../registry/client.js';
import { PromoteErrors } from '../promote/errors.js';
import { gitlabOptions, type GitlabConfig } from '../gitlab/config.js';
import { deployedRevision, pinDigests, readSource, repinned, type Pinned, type Source } from '../promote/source.js';
import { promote, type MergeRequestApi, type PromoteOutcome } from '../promote/promote.js';
import { KIND_CHOICES, kindFlag, type KindChoice } from '../writeback/checkout.js';
import { decideVia, VIA_CHOICES, type ViaChoice } from '../writeback/api.js';
import { lockFileFlag, serverLockFlag, writebackOptions } from '../writeback/flags.js';
import type { ServerLockChoice } from '../writeback/server-lock.js';

export const spec: CommandSpec = {
  name: 'promote',
  usage: 'gitops-ci promote --repo URL|PATH --branch BRANCH --from OVERLAY --to OVERLAY [--image NAME]... [--from-app APP] [--via push|mr|api] [--copy-to REPO] [--dotenv FILE] [--dry-run]',
  description: `
Read the images pinned in --from (all, or the --image names) and set the same references in --to. Only
digests travel: a source pinned by tag is resolved to its digest through the registry (or refused with
--require-digest); a mutable tag is never promoted. --from-app reads --from at the config commit that
Argo CD reports deployed, synced and healthy for APP (the predicate of \`argocd wait\`), not at the branch
tip. --copy-to copies the image into another repository first (as \`image copy\`) and pins the copy.
--via push commits to BRANCH as bump does (retried when the branch moves). --via mr force-pushes our own
branch gitops-ci/promote/<env> (never BRANCH) and opens or updates one merge request into BRANCH, with the
change list, provenance and the rendered diff of --to. Already there: no commit, no MR, exit 0.
GitLab (--via mr): CI_API_V4_URL / CI_SERVER_URL, CI_PROJECT_ID or the project of --repo, GITOPS_GITLAB_TOKEN.`,
  options: {
    repo: { type: 'string', value: 'URL|PATH', description: 'config repo: https URL (token from the environment), ssh URL (deploy key) or local path', env: ['GITOPS_CONFIG_REPO', 'CI_REPOSITORY_URL'] },
    branch: { type: 'string', value: 'BRANCH', description: 'branch both overlays are read from, and the promotion goes to', env: ['GITOPS_CONFIG_BRANCH', 'CI_DEFAULT_BRANCH'] },
    from: { type: 'string', value: 'OVERLAY', description: 'source overlay, relative to the config repo root (e.g. .kubernetes/overlays/staging)' },
    to: { type: 'string', value: 'OVERLAY', description: 'target overlay, relative to the config repo root (e.g. .kubernetes/overlays/production)' },
    image: { type: 'string', multiple: true, value: 'NAME', description: 'promote only this images[].name of --from (repeatable; default: all)' },
    'from-app': { type: 'string', value: 'APP', description: 'read --from at the config commit this Argo CD app runs, verified deployed, synced and healthy (ARGOCD_SERVER, ARGOCD_AUTH_TOKEN)' },
    'verify-job': { type: 'string', value: 'URL', description: 'the job that verified --from (argocd wait), recorded in the provenance', env: ['GITOPS_VERIFY_JOB_URL'] },
    'target-kind': { type: 'string', value: 'KIND', description: `which file in --from and --to pins the images: ${KIND_CHOICES.join(', ')} (auto: the one kind of file found there)`, default: 'auto', env: ['GITOPS_TARGET_KIND'] },
    via: { type: 'string', value: 'push|mr|api', description: 'commit to BRANCH, or open/update a merge request into it, or commit to BRANCH through GitLab\'s commits API (no clone); push writes through git unless GITOPS_WRITE_VIA=auto|api says otherwise', default: 'push' },
    'copy-to': { type: 'string', multiple: true, value: '[NAME=]REPO', description: 'copy the image into REPO first and pin the copy (NAME= when promoting several images)' },
    'require-digest': { type: 'boolean', description: 'refuse a source pinned by tag instead of resolving it through the registry' },
    render: { type: 'boolean', description: '--via push: kustomize build --to before pushing and check the images are used (--via mr always renders)' },
    'skip-ci': { type: 'string', value: 'MODE', description: 'message ([skip ci] in the subject), push-option or none; default message for push, none for mr (the MR pipeline must run)', env: ['GITOPS_SKIP_CI'] },
    label: { type: 'string', multiple: true, value: 'LABEL', description: '--via mr: label for the merge request (repeatable, or comma-separated)' },
    assignee: { type: 'string', multiple: true, value: 'USER', description: '--via mr: assignee username or id (repeatable)' },
    reviewer: { type: 'string', multiple: true, value: 'USER', description: '--via mr: reviewer username or id (repeatable)' },
    draft: { type: 'boolean', description: '--via mr: open the merge request as a draft' },
    'auto-merge': { type: 'boolean', description: '--via mr: merge when the pipeline succeeds' },
    'auto-merge-timeout': { type: 'string', value: 'SECONDS', description: 'how long to retry setting auto-merge while GitLab is still checking the MR', default: '120' },
    title: { type: 'string', value: 'TITLE', description: '--via mr: merge request title (default: Promote <image>@<digest> from <env> to <env>)' },
    ...gitlabOptions,
    'argocd-server': { type: 'string', value: 'HOST[:PORT]|URL', description: '--from-app: Argo CD API server', env: ['ARGOCD_SERVER'] },
    'argocd-plaintext': { type: 'boolean', description: '--from-app: plain HTTP to a host[:port] Argo CD server', env: ['ARGOCD_PLAINTEXT=true'] },
    'app-namespace': { type: 'string', value: 'NS', description: '--from-app: namespace of the Application', env: ['ARGOCD_APP_NAMESPACE'] },
    'author-name': { type: 'string', value: 'NAME', description: 'commit author name', default: 'gitops-ci', env: ['GITLAB_USER_NAME'] },
    'author-email': { type: 'string', value: 'EMAIL', description: 'commit author email', default: 'gitops-ci@noreply.invalid', env: ['GITLAB_USER_EMAIL'] },
    'max-attempts': { type: 'string', value: 'N', description: '--via push: push attempts when the branch keeps moving', default: '20' },
    timeout: { type: 'string', value: 'SECONDS', description: 'time limit for the whole promotion', default: '300' },
    'lock-file': { ...writebackOptions['lock-file']!, description: `--via push or api: ${writebackOptions['lock-file']!.description}` },
    'server-lock': { ...writebackOptions['server-lock']!, description: `--via push or api: ${writebackOptions['server-lock']!.description}` },
    'ssh-accept-new': { type: 'boolean', description: 'trust an unknown ssh host key on first use; prefer SSH_KNOWN_HOSTS' },
    ...registryOptions,
    dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_PROMOTED, GITOPS_CHANGED, GITOPS_COMMIT_SHA, GITOPS_CONFIG_HEAD, GITOPS_SOURCE_COMMIT, GITOPS_MR_IID, GITOPS_MR_URL to FILE' },
    'ignore-deploy-freeze': { type: 'boolean', description: 'run even while GitLab reports a deploy freeze (CI_DEPLOY_FREEZE); by default the command refuses (EFREEZE_ACTIVE)' },
    'dry-run': { type: 'boolean', description: 'read, resolve and edit; print the diff (and, with --via mr, the rendered diff); push, copy and open nothing' },
  },
  examples: [
    'gitops-ci promote --from .kubernetes/overlays/staging --to .kubernetes/overlays/production --from-app shovel-staging --via mr --label promotion --dotenv promote.env',
    'gitops-ci promote --repo https://gitlab.example.com/team/config.git --branch main --from envs/staging --to envs/production --image registry.example.com/team/app --copy-to registry.example.com/team/app/release',
  ],
};

function overlayOpt(d: string | undefined, flag: string, problems: string[]): string | undefined {
  if (!d) {
    problems.push(`no --${flag}: name the ${flag === 'from' ? 'source' : 'target'} overlay, e.g. --${flag} .kubernetes/overlays/${flag === 'from' ? 'staging' : 'production'}`);
    return undefined;
  }
  return overlayFlag(d, flag, problems);
}

/** the promote configuration, resolved and checked (flags over GitLab variables) before anything is read */
interface Flags {
  remote: Remote;
  branch: string;
  from: string;
  to: string;
  names: string[];
  via: 'push' | 'mr' | 'api';
  skipCi: SkipCi;
  /** image name ('' for the one image) → repository to copy it to */
  copyTo: Map<string, string>;
  targetKind: KindChoice;
  maxAttempts: number;
  lockFile?: string;
  serverLock: ServerLockChoice;
  deadline: number;
  autoMergeS: number;
  author: { name: string; email: string };
  fromApp?: string;
  verifyJob?: string;
  dryRun: boolean;
  sshAcceptNew: boolean;
  /** how a commit to BRANCH is written (--via push or api): auto | git | api */
  writeVia: ViaChoice;
}

const list = (v: Values, k: string) => strs(v, k).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);

/** Step 1: every flag and variable, all problems at once (exit 2), before anything is read. */
function resolveFlags(ctx: CommandContext, values: Values): Flags {
  const { env } = ctx;
  const problems: string[] = [];
  const errors: GitopsError[] = [];

  const remote: Remote | undefined = configRemote(str(values, 'repo'), env, ctx.cwd, problems, errors);
  const branch = configBranch(str(values, 'branch'), env, problems);
  const from = overlayOpt(str(values, 'from'), 'from', problems);
  const to = overlayOpt(str(values, 'to'), 'to', problems);
  if (from && to && from === to) problems.push(`--from and --to are the same overlay (${from})`);
  const names = [...new Set(strs(values, 'image'))];
  for (const n of names) if (/[:@=\s]/.test(n)) problems.push(`--image ${JSON.stringify(n)} takes an images[].name of --from (no tag, digest or =): the references come from --from`);
  const via = str(values, 'via') ?? 'push';
  if (via !== 'push' && via !== 'mr' && via !== 'api') problems.push(`--via must be push, mr or api (got ${JSON.stringify(via)})`);
  const skipCi = (str(values, 'skip-ci') ?? env.GITOPS_SKIP_CI ?? (via === 'mr' ? 'none' : 'message')) as SkipCi;
  if (!['message', 'push-option', 'none'].includes(skipCi)) problems.push(`--skip-ci must be message, push-option or none (got ${JSON.stringify(skipCi)})`);
  const copyTo = copyToFlags(strs(values, 'copy-to'), problems);
  const targetKind = kindFlag(str(values, 'target-kind') ?? (env.GITOPS_TARGET_KIND || undefined), problems);
  const maxAttempts = intFlag(str(values, 'max-attempts'), 'max-attempts', 20, 1, 100, problems);
  const timeoutS = intFlag(str(values, 'timeout'), 'timeout', 300, 1, 86_400, problems);
  const lockFile = lockFileFlag(ctx, values, problems);
  const serverLock = serverLockFlag(ctx, values, problems);
  const autoMergeS = intFlag(str(values, 'auto-merge-timeout'), 'auto-merge-timeout', 120, 1, 86_400, problems);
  const mrOnly = ['label', 'assignee', 'reviewer', 'draft', 'auto-merge', 'title'].filter((k) => values[k] !== undefined && values[k] !== false && !(Array.isArray(values[k]) && !(values[k] as unknown[]).length));
  if (via !== 'mr' && mrOnly.length) problems.push(`${mrOnly.map((k) => `--${k}`).join(', ')} only apply with --via mr`);
  // how --via push writes: git (the default, as before), or GITOPS_WRITE_VIA=auto|api (input write-via); --via api: the API
  const writeVia = (via === 'api' ? 'api' : env.GITOPS_WRITE_VIA?.trim() || 'git') as ViaChoice;
  if (!VIA_CHOICES.includes(writeVia)) problems.push(`GITOPS_WRITE_VIA must be ${VIA_CHOICES.join(', ')} (got ${JSON.stringify(writeVia)})`);
  const author = {
    name: str(values, 'author-name') || env.GITLAB_USER_NAME || 'gitops-ci',
    email: str(values, 'author-email') || env.GITLAB_USER_EMAIL || 'gitops-ci@noreply.invalid',
  };
  if (/[<>\n]/.test(author.name) || /[<>\s]/.test(author.email)) problems.push('--author-name/--author-email must not contain <, > or line breaks');
  const fromApp = str(values, 'from-app');
  const verifyJob = str(values, 'verify-job') ?? (env.GITOPS_VERIFY_JOB_URL || undefined);
  if (verifyJob && !/^https?:\/\/\S+$/.test(verifyJob)) problems.push(`--verify-job must be a job URL (got ${JSON.stringify(redactUrl(verifyJob))})`);
  // it goes into the commit trailer and the MR description
  else if (verifyJob && /^https?:\/\/[^/]*@/.test(verifyJob)) problems.push(`--verify-job must not carry credentials (got ${JSON.stringify(redactUrl(verifyJob))}): give the job's web URL`);

  if (problems.length || errors.length) {
    const all = [...problems, ...errors.map((e) => `${e.message}${e.where && e.where !== 'command line' ? ` (${e.where})` : ''}`)];
    if (!problems.length && errors.length === 1) throw errors[0]!;
    throw fail.usage(PromoteErrors.CONFIG, all.length === 1 ? all[0]! : `${all.length} problems with the promote configuration`, {
      where: 'command line',
      details: all.length > 1 ? all.map((p) => `- ${p}`) : undefined,
      hint: 'run `gitops-ci promote --help` for the flags and the GitLab variables they default to',
    });
  }
  return {
    remote: remote!,
    branch: branch!,
    from: from!,
    to: to!,
    names,
    via: via as 'push' | 'mr' | 'api',
    writeVia,
    skipCi,
    copyTo,
    targetKind,
    maxAttempts,
    lockFile,
    serverLock,
    deadline: Date.now() + timeoutS * 1000,
    autoMergeS,
    author,
    fromApp,
    verifyJob,
    dryRun: bool(values, 'dry-run'),
    sshAcceptNew: bool(values, 'ssh-accept-new'),
  };
}

/** --copy-to [NAME=]REPO, each a repository without tag or digest */
function copyToFlags(raw: string[], problems: string[]): Map<string, string> {
  const copyTo = new Map<string, string>();
  for (const c of raw) {
    const eq = c.indexOf('=');
    const name = eq >= 0 ? c.slice(0, eq) : '';
    const repo = eq >= 0 ? c.slice(eq + 1) : c;
    try {
      const r = parseRef(`${repo}@sha256:${'0'.repeat(64)}`);
      if (!r.registry || /[:@]/.test(repo.slice(repo.lastIndexOf('/') + 1))) throw new Error('tag');
    } catch {
      problems.push(`--copy-to ${JSON.stringify(c)}: REPO is a repository (host/path/name), without tag or digest`);
      continue;
    }
    if (!name && raw.length > 1) problems.push(`--copy-to ${JSON.stringify(c)}: with several --copy-to, write NAME=REPO`);
    copyTo.set(name, repo);
  }
  return copyTo;
}

/** Step 2 (--from-app): the config commit Argo CD runs for the app, verified deployed, synced and healthy. */
async function deployedBy(ctx: CommandContext, values: Values, f: Flags): Promise<string | undefined> {
  if (!f.fromApp) return undefined;
  const { resolveConnection, parseAppRef } = await import('../argocd/config.js');
  const { ArgoClient } = await import('../argocd/client.js');
  const conn = resolveConnection({ server: str(values, 'argocd-server'), plaintext: bool(values, 'argocd-plaintext') || undefined, 'app-namespace': str(values, 'app-namespace') }, ctx.env);
  const client = new ArgoClient(conn, ctx.log);
  try {
    await client.login();
    const ref = parseAppRef(f.fromApp, str(values, 'app-namespace') ?? (ctx.env.ARGOCD_APP_NAMESPACE || undefined), undefined);
    return (await deployedRevision(client, ref, { from: f.from, repo: f.remote, log: ctx.log })).revision;
  } finally {
    client.close();
  }
}

/** Step 3: the source's images at the revision, each turned into a digest pin (tags resolved, --copy-to copied). */
async function sourcePins(ctx: CommandContext, values: Values, f: Flags, revision: string | undefined, api: GitlabConfig | undefined): Promise<{ source: Source; pinned: Pinned[] }> {
  const source = await readSource({ remote: f.remote, branch: f.branch, from: f.from, revision, names: f.names, targetKind: f.targetKind, env: ctx.env, log: ctx.log, deadline: f.deadline, sshAcceptNew: f.sshAcceptNew, historyDepth: 200, api });
  const copyTo = new Map(f.copyTo);
  if (copyTo.has('') && source.images.length > 1) {
    throw fail.usage(PromoteErrors.CONFIG, `--copy-to ${copyTo.get('')} names one repository, and ${source.images.length} images are promoted`, { where: 'command line', hint: 'write --copy-to NAME=REPO for each image, or promote one image with --image NAME' });
  }
  if (copyTo.has('')) copyTo.set(source.images[0]!.name, copyTo.get('')!);
  for (const n of copyTo.keys()) if (n && !source.images.some((i) => i.name === n)) throw fail.usage(PromoteErrors.CONFIG, `--copy-to ${n}=…: ${n} is not promoted`, { where: 'command line', hint: `images promoted: ${source.images.map((i) => i.name).join(', ')}` });
  let regs: Registries | undefined;
  let pinned = await pinDigests(source.images, {
    regs: async () => (regs ??= await makeRegistries(ctx, values, [...copyTo.values()].map((r) => parseRef(`${r}:x`).registry))),
    requireDigest: bool(values, 'require-digest'),
    // a dry run copies nothing: it pins what the copy would hold (same digest)
    copyTo: f.dryRun ? new Map() : copyTo,
    log: ctx.log,
  });
  if (f.dryRun) pinned = pinned.map((p) => (copyTo.get(p.name) ? repinned(p, copyTo.get(p.name)!) : p));
  return { source, pinned };
}

/** Step 5: the summary line and the dotenv outputs. */
function report(ctx: CommandContext, f: Flags, source: Source, pinned: Pinned[], out: PromoteOutcome): CommandResult {
  const { log } = ctx;
  const promoted = pinned.map((p) => `${p.name}=${p.repo}@${p.digest}`).join(' ');
  const short = (r: string) => r.replace(/(sha256:[0-9a-f]{12})[0-9a-f]{52}/g, '$1…');
  const listing = out.changes.map((c) => `${shortImageOf(c.image)} ${c.before ? short(tersely(c.image, c.before)) : '(new)'} → ${short(tersely(c.image, c.after))}`);
  const fromEnv = envOf(f.from);
  const toEnv = envOf(f.to);
  const outputs: Record<string, string | undefined> = {
    GITOPS_PROMOTED: promoted,
    GITOPS_CHANGED: out.changed ? 'true' : 'false',
    GITOPS_COMMIT_SHA: out.commit,
    GITOPS_CONFIG_HEAD: out.head,
    GITOPS_CONFIG_BRANCH: f.branch,
    GITOPS_SOURCE_COMMIT: source.commit,
    GITOPS_MR_IID: out.mr ? String(out.mr.iid) : undefined,
    GITOPS_MR_URL: out.mr?.webUrl,
    GITOPS_PROMOTION_BRANCH: out.mr?.branch,
  };
  if (out.dryRun) {
    if (out.diff) log.stdout(out.diff.endsWith('\n') ? out.diff : `${out.diff}\n`);
    if (out.rendered) log.stdout(`${out.rendered}\n`);
    for (const l of listing) log.info(`would set ${toEnv}: ${l}`);
    return { summary: out.changes.length ? `dry run: would promote ${listing.join('; ')} from ${fromEnv} to ${toEnv}${f.via === 'mr' ? ' through a merge request' : ''}; nothing pushed` : `dry run: ${toEnv} already runs what ${fromEnv} runs`, outputs: { ...outputs, GITOPS_CHANGED: 'false', GITOPS_COMMIT_SHA: undefined } };
  }
  if (!out.changed) {
    log.info(`no change: ${f.to} already pins ${pinned.map((p) => `${shortImageOf(p.name)}@${p.digest.slice(0, 19)}`).join(', ')}; no commit${f.via === 'mr' ? ', no merge request' : ''} (config HEAD ${out.head})`);
    return { summary: `no change: ${toEnv} already runs what ${fromEnv} runs (config HEAD ${out.head.slice(0, 12)})`, outputs };
  }
  for (const l of listing) log.info(`promoted ${fromEnv} → ${toEnv}: ${l}`);
  if (out.mr) {
    return { summary: `merge request !${out.mr.iid} ${out.mr.created ? 'opened' : out.mr.updated ? 'updated' : 'unchanged'}: promote ${listing.join('; ')} from ${fromEnv} to ${toEnv} (${out.mr.webUrl})`, outputs };
  }
  return { summary: `pushed ${out.commit!.slice(0, 12)} to ${f.branch}: promote ${listing.join('; ')} from ${fromEnv} to ${toEnv}`, outputs };
}

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const { env, log } = ctx;
  // a deploy freeze stops the change before anything is read or touched (a dry run changes nothing)
  if (!bool(values, 'dry-run') && checkDeployFreeze(env, { ignore: bool(values, 'ignore-deploy-freeze'), command: 'promote' }).frozen) {
    log.warn('a deploy freeze is in effect (CI_DEPLOY_FREEZE); going on because of --ignore-deploy-freeze');
  }
  const f = resolveFlags(ctx, values);

  // GitLab first for --via mr: a missing token fails before anything is read, copied or pushed
  let mrApi: MergeRequestApi | undefined;
  const getMrApi = async (): Promise<MergeRequestApi> => {
    if (!mrApi) {
      const { mergeRequestApi } = await import('../promote/gitlab.js');
      mrApi = await mergeRequestApi(ctx, values, f.remote);
    }
    return mrApi;
  };
  if (f.via === 'mr' && !f.dryRun) await getMrApi();

  // --via push/api: git or the API, decided (and said) before anything is read
  const path = f.via === 'mr' ? undefined : await decideVia(f.writeVia, { remote: f.remote, env, skipCi: f.skipCi, gitWhy: env.GITOPS_WRITE_VIA?.trim() ? 'GITOPS_WRITE_VIA=git' : '--via push writes through git unless GITOPS_WRITE_VIA=auto|api' });
  if (path) log.info(`write-back via ${path.via} (${path.why})`);

  const revision = await deployedBy(ctx, values, f);
  // through the API, the source is read through it too (no clone at all)
  const { source, pinned } = await sourcePins(ctx, values, f, revision, path?.via === 'api' ? path.gitlab : undefined);

  // Step 4: the write-back (src/writeback/ through promote.ts): the pins go to the edit layer as objects
  const job: Origin = originFromCi(env);
  const out = await promote({
    remote: f.remote,
    branch: f.branch,
    from: f.from,
    to: f.to,
    source,
    pinned,
    targetKind: f.targetKind,
    fromApp: f.fromApp,
    verifyJob: f.verifyJob,
    via: f.via,
    skipCi: f.skipCi,
    dryRun: f.dryRun,
    author: f.author,
    job,
    maxAttempts: f.maxAttempts,
    lockFile: f.lockFile,
    serverLock: f.serverLock,
    deadline: f.deadline,
    sshAcceptNew: f.sshAcceptNew,
    render: f.via === 'mr' || bool(values, 'render'),
    mr: { labels: list(values, 'label'), assignees: list(values, 'assignee'), reviewers: list(values, 'reviewer'), draft: bool(values, 'draft'), autoMerge: bool(values, 'auto-merge'), autoMergeTimeoutMs: f.autoMergeS * 1000, title: str(values, 'title') },
    mrApi: getMrApi,
    api: path?.gitlab ? { gitlab: path.gitlab } : undefined,
    env,
    log,
  });
  return report(ctx, f, source, pinned, out);
}
