/**
 * `gitops-ci argocd notify`: POST a GitLab push event to Argo CD's /api/webhook so that apps tracking the
 * pushed branch refresh at once instead of at the next poll (default every 120-180 s). The webhook needs no
 * Argo CD token; its secret (argocd-secret `webhook.gitlab.secret`) goes in X-Gitlab-Token.
 */
import { readFileSync } from 'node:fs';
import { str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import { fail } from '../core/errors.js';
import { addSecret, redactUrl, stripUserinfo } from '../core/mask.js';
import { ArgoClient, parseErrorBody } from '../argocd/client.js';
import { connectionOptions, normalizeServer, resolveConnection } from '../argocd/config.js';
import { ArgoErrors } from '../argocd/errors.js';
import { dotenvOption, validateAll } from '../argocd/support.js';
import { shortSha } from '../argocd/types.js';
import { parseRemote } from '../git/url.js';
import { assertUsableSecret } from '../core/secrets.js';

const { 'auth-token': _t, username: _u, 'app-namespace': _n, project: _p, ...tlsOptions } = connectionOptions;

export const spec: CommandSpec = {
  name: 'argocd notify',
  usage: 'gitops-ci argocd notify [--repo-url URL] [--branch BRANCH] [--after SHA] [--before SHA]',
  description: `
Send Argo CD a GitLab "Push Hook" event for a push to the config repo, so that every app tracking that
repo and branch refreshes now (and auto-sync apps sync). Defaults: the config repo of \`bump\`
(GITOPS_CONFIG_REPO, GITOPS_CONFIG_BRANCH, and GITOPS_COMMIT_SHA from its dotenv) when GITOPS_CONFIG_REPO is
set; else the pipeline's own repo (CI_PROJECT_URL, CI_COMMIT_BRANCH, CI_COMMIT_SHA), for a config-repo pipeline.
The secret is read from ARGOCD_WEBHOOK_SECRET (or GITOPS_WEBHOOK_SECRET, or --secret-file) and sent as
X-Gitlab-Token; leave it unset when Argo CD has no GitLab webhook secret.`,
  options: {
    'repo-url': { type: 'string', value: 'URL', description: "the config repo's web URL, as in the apps' repoURL (with or without .git)", env: ['GITOPS_CONFIG_REPO', 'CI_PROJECT_URL'] },
    branch: { type: 'string', value: 'BRANCH', description: 'the branch that was pushed', env: ['GITOPS_CONFIG_BRANCH', 'CI_COMMIT_BRANCH'] },
    after: { type: 'string', value: 'SHA', description: 'the new tip of the branch', env: ['GITOPS_COMMIT_SHA', 'CI_COMMIT_SHA'] },
    before: { type: 'string', value: 'SHA', description: 'the previous tip (zeros when unknown)', env: ['CI_COMMIT_BEFORE_SHA'] },
    'default-branch': { type: 'string', value: 'BRANCH', description: "the repo's default branch (apps on HEAD refresh when it is pushed)", env: ['CI_DEFAULT_BRANCH'] },
    changed: { type: 'string', multiple: true, value: 'PATH', description: 'changed files (apps with manifest-generate-paths refresh only when these touch them); default: none listed, every app refreshes' },
    'webhook-url': { type: 'string', value: 'URL', description: 'webhook endpoint (default: <server>/api/webhook)', env: ['ARGOCD_WEBHOOK_URL'] },
    'secret-file': { type: 'string', value: 'FILE', description: 'file holding the webhook secret', env: ['ARGOCD_WEBHOOK_SECRET', 'GITOPS_WEBHOOK_SECRET'] },
    dotenv: dotenvOption,
    ...tlsOptions,
  },
  examples: ['gitops-ci argocd notify --repo-url https://gitlab.example.com/platform/config --branch main --after "$CONFIG_SHA"'],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** the web URL GitLab would put in project.web_url for a clone URL: no credentials, https for ssh, no .git */
export function webUrlOf(cloneUrl: string, cwd: string): string {
  const r = parseRemote(cloneUrl, cwd); // registers credentials found in the URL with the masker
  let u = r.kind === 'local' ? r.display : r.url;
  if (r.kind === 'ssh') {
    const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/)(.+)$/.exec(u);
    u = scp ? `https://${scp[1]}/${scp[2]}` : u.replace(/^(git\+)?ssh:\/\/([^@/]+@)?([^:/]+)(:\d+)?\//i, 'https://$3/');
  }
  return u.replace(/\.git\/?$/, '').replace(/\/+$/, '');
}

export async function run(ctx: CommandContext, { values }: ParsedArgs): Promise<CommandResult> {
  const env = ctx.env;
  const [secret] = validateAll(() => {
    const f = str(values, 'secret-file');
    let s = env.ARGOCD_WEBHOOK_SECRET || env.GITOPS_WEBHOOK_SECRET || '';
    if (f) {
      try {
        s = readFileSync(f, 'utf8').trim();
      } catch (e) {
        // as --ca-file's: the flag and the file named (node's message alone named neither for a directory)
        throw fail.usage(ArgoErrors.CONFIG, `cannot read --secret-file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
          where: f,
          hint: 'give a readable file holding the webhook secret (argocd-secret webhook.gitlab.secret), or set ARGOCD_WEBHOOK_SECRET; nothing was sent',
        });
      }
    }
    addSecret(s);
    if (s) assertUsableSecret(s, f ? `the webhook secret in ${f}` : 'the webhook secret');
    return s;
  });
  // defaults: the config repo `bump` pushed to (GITOPS_CONFIG_REPO, GITOPS_CONFIG_BRANCH, GITOPS_COMMIT_SHA from
  // its dotenv) in an app repo's pipeline; else the pipeline's own repo (a pipeline of the config repo)
  const cfg = env.GITOPS_CONFIG_REPO ? webUrlOf(env.GITOPS_CONFIG_REPO, ctx.cwd) : undefined;
  const zeros = '0000000000000000000000000000000000000000';
  const repoUrl = str(values, 'repo-url') ?? cfg ?? env.CI_PROJECT_URL;
  const branch = str(values, 'branch') ?? (cfg ? env.GITOPS_CONFIG_BRANCH || env.CI_DEFAULT_BRANCH : env.CI_COMMIT_BRANCH);
  const after = str(values, 'after') ?? (cfg ? env.GITOPS_COMMIT_SHA : env.CI_COMMIT_SHA);
  const before = str(values, 'before') ?? (cfg ? zeros : env.CI_COMMIT_BEFORE_SHA || zeros);
  const defaultBranch = str(values, 'default-branch') ?? (cfg ? branch : env.CI_DEFAULT_BRANCH || branch);
  const webhookUrl = str(values, 'webhook-url') ?? (env.ARGOCD_WEBHOOK_URL || undefined);
  const problems: string[] = [];
  if (!repoUrl) problems.push('no repo URL: give --repo-url (or set GITOPS_CONFIG_REPO, or run in the config repo pipeline: CI_PROJECT_URL)');
  if (!branch) problems.push('no branch: give --branch (GITOPS_CONFIG_BRANCH / CI_COMMIT_BRANCH are unset)');
  if (!after) problems.push('no commit: give --after SHA (or GITOPS_COMMIT_SHA from the bump job)');
  let conn;
  try {
    conn = resolveConnection(webhookUrl ? { ...values, server: webhookUrl.replace(/\/api\/webhook\/?$/, '') } : values, env, { needAuth: false });
  } catch (e) {
    problems.push(...((e as { details?: string[] }).details ?? [(e as Error).message]));
  }
  if (problems.length) throw fail.usage(ArgoErrors.CONFIG, problems.length === 1 ? problems[0] : `${problems.length} configuration problems`, { details: problems.length > 1 ? problems : undefined });
  const url = webhookUrl ? normalizeServer(webhookUrl, false) : `${conn!.baseUrl}/api/webhook`;
  // the web URL, without credentials (a credentialed --repo-url such as $CI_REPOSITORY_URL), never sent to Argo CD
  const web = stripUserinfo(repoUrl!).replace(/\.git$/, '');
  const payload = {
    object_kind: 'push',
    event_name: 'push',
    ref: `refs/heads/${branch}`,
    before,
    after,
    checkout_sha: after,
    user_name: 'gitops-ci',
    project: { web_url: web, default_branch: defaultBranch, path_with_namespace: (!str(values, 'repo-url') && env.CI_PROJECT_PATH) || web.replace(/^[a-z+]+:\/\/[^/]+\//i, '').replace(/^[^@/]+@[^:]+:/, '').replace(/^\//, ''), git_http_url: `${web}.git` },
    repository: { url: `${web}.git`, homepage: web, git_http_url: `${web}.git` },
    commits: [{ id: after, message: 'gitops-ci notify', timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), added: [], modified: strs(values, 'changed'), removed: [] }],
    total_commits_count: 1,
  };
  const client = new ArgoClient(conn!, ctx.log);
  try {
    for (let attempt = 1; ; attempt++) {
      let r;
      try {
        r = await client.raw('POST', '/api/webhook', { url, anonymous: true, body: payload, headers: { 'X-Gitlab-Event': 'Push Hook', ...(secret ? { 'X-Gitlab-Token': secret } : {}) } });
      } catch (e) {
        if ((e as { kind?: string }).kind === 'transient' && attempt < 4) {
          ctx.log.info(`webhook: ${(e as Error).message}; retrying`);
          await sleep(500 * attempt);
          continue;
        }
        throw e;
      }
      if (r.status >= 200 && r.status < 300) break;
      const msg = parseErrorBody(r.text).message;
      if ((r.status >= 500 || r.status === 429) && attempt < 4) {
        ctx.log.info(`webhook: ${r.status} ${msg}; retrying`);
        await sleep(500 * attempt);
        continue;
      }
      if (r.status >= 500 || r.status === 429) throw fail.transient(ArgoErrors.UNAVAILABLE, `Argo CD's webhook answered ${r.status}: ${msg}`, { where: redactUrl(url) });
      if (r.status === 400 && /processing failed/i.test(msg)) {
        throw fail.auth(ArgoErrors.WEBHOOK_REJECTED, `Argo CD refused the push event (400 ${msg})`, {
          where: redactUrl(url),
          hint: secret
            ? "the X-Gitlab-Token did not match argocd-secret's webhook.gitlab.secret: check ARGOCD_WEBHOOK_SECRET"
            : "Argo CD has a GitLab webhook secret configured: set ARGOCD_WEBHOOK_SECRET to argocd-secret's webhook.gitlab.secret",
        });
      }
      throw fail.failed(ArgoErrors.REJECTED, `Argo CD's webhook answered ${r.status}: ${msg}`, { where: redactUrl(url) });
    }
  } finally {
    client.close();
  }
  ctx.log.info(`push event sent: ${web} ${branch} ${shortSha(before)} → ${shortSha(after)}`);
  return { summary: `Argo CD notified of ${branch} at ${shortSha(after)}`, outputs: { ARGOCD_NOTIFIED_REVISION: after } };
}
