/**
 * Runs users' pipelines (component includes) in gitlab-ci-local against the harness's real services: a git
 * server (projects with branches), a registry with htpasswd, the GitLab double in front of that git server, and
 * the bundled CLI on PATH as the runner image has it. Shared by the template scenario tests.
 *
 * Variables: what GitLab itself provides (CI_*), the masked CI/CD variables the README tells users to set, and
 * the runner's environment (DOCKER_HOST: the shell executor stands in for the docker:dind service).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startGitServer, startRegistry, tmp, useDocker, type GitServer, type Registry } from './services.js';
import { git, writeTree, type Tree } from './config-repo.js';
import { CLI } from './cli.js';
import { GITLAB_CI_LOCAL, ROOT } from './gitlab-ci-local.js';
import { startGitlabDouble, type GitlabDouble, type MergeSettings } from '../doubles/gitlab/server.js';
import { installPushLog, type ListedJob, type PushEvent } from './gitlab-model.js';

/** the first ```yaml block of the README's "Use it in a pipeline" section */
export function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it in a pipeline'));
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no yaml example in "Use it in a pipeline"');
  return m[1]!;
}

/**
 * How often the Argo CD doubles of the pipeline tests poll the git server. The jobs do not wait for it: `argocd
 * wait` asks Argo CD to refresh when it has not seen the commit (and deploy's `notify` input posts the webhook),
 * as with a real Argo CD, which polls only every 3 minutes by default. Each poll is a git fetch per repository
 * (about 0.2 CPU-seconds with the git server's side; until 2026-12-07 the double fetched twice per app), so a
 * 500 ms poll kept part of a core busy for the whole file, in a suite that is CPU-bound on 2 cores; every few
 * seconds is plenty for what still relies on polling (an app whose own job did not make the last commit).
 */
export const ARGO_POLL_MS = 5000;

export interface PipelineHarness {
  srv: GitServer;
  reg: Registry;
  gl: GitlabDouble;
  /** projects: path → GitLab id */
  ids: Record<string, number>;
  /** a checkout of `branch` of `project`, as the runner clones it, with the components where gitlab-ci-local caches `version` */
  checkout(project: string, branch: string, version?: string): string;
  /** what GitLab provides to a pipeline of `project` (protected ref or not), plus the README's masked variables */
  vars(project: string, o: { protectedRef: boolean; argo?: { url: string; token: string } }): Record<string, string>;
  gcl(dir: string, extra: string[], v: Record<string, string>, unset?: string[]): Promise<{ code: number; out: string }>;
  /** the jobs the pipeline would run (rules evaluated), without running them */
  jobs(dir: string, v: Record<string, string>, unset?: string[]): Promise<string[]>;
  /** the pipeline's jobs (rules evaluated, `when: never` left out) with stage and needs, and its stages */
  pipeline(dir: string, v: Record<string, string>, unset?: string[]): Promise<{ stages: string[]; jobs: ListedJob[] }>;
  /** the rendered pipeline (includes, inputs and extends resolved), as YAML */
  preview(dir: string, v: Record<string, string>, unset?: string[]): Promise<string>;
  /** records every later push to `project` (ref, before, after, user, push options): what GitLab's pipeline creation sees */
  pushLog(project: string): { pushes(): PushEvent[] };
  /** the project's URL with the credentials of git user `user` (one of `gitUsers`, or the job token's user) */
  gitUrl(project: string, user?: string): string;
  stop(): Promise<void>;
}

function run(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(GITLAB_CI_LOCAL, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

export async function startPipelineHarness(
  projects: Array<{ path: string; tree: Tree; branches: string[]; binaries?: Record<string, string>; merge?: Partial<MergeSettings> }>,
  o: { gitUsers?: Record<string, string> } = {},
): Promise<PipelineHarness> {
  // the job token's user (gitlab-ci-token, password CI_JOB_TOKEN), and any other git users (a developer, a token)
  const srv = await startGitServer({ user: 'gitlab-ci-token', users: o.gitUsers });
  const reg = await startRegistry({ user: 'gitlab-ci-token' });
  const ids: Record<string, number> = {};
  projects.forEach((p, i) => (ids[p.path] = 10 + i));
  for (const p of projects) {
    srv.createRepo(`${p.path}.git`);
    const work = tmp('gci-proj-');
    git(work, ['init', '-q', '-b', p.branches[0]!]);
    writeTree(work, { ...p.tree, '.gitignore': '.gitlab-ci-local/\n' });
    for (const [to, from] of Object.entries(p.binaries ?? {})) cpSync(from, join(work, to));
    git(work, ['add', '-A']);
    git(work, ['commit', '-q', '-m', 'initial']);
    git(work, ['push', '-q', srv.authUrl(`${p.path}.git`), ...p.branches.map((b) => `HEAD:refs/heads/${b}`)]);
  }
  const gl = await startGitlabDouble({
    git: srv,
    projects: projects.map((p) => ({ path: p.path, repo: `${p.path}.git`, id: ids[p.path], merge: p.merge })),
    users: [{ username: 'gitops-bot', bot: true }, { username: 'dev' }, { username: 'alice' }],
  });
  const docker = await useDocker();
  // gitlab-ci-local starts the build job's docker:27-dind service even under the shell executor: a stand-in of
  // that name (a sleeping busybox, no ports) takes its place; the job uses the harness's engine (DOCKER_HOST)
  const denv = { ...process.env, DOCKER_HOST: docker.host };
  // (left in place afterwards: test files running at the same time share it; nothing can pull the real one here)
  if (!execFileSync('docker', ['images', '-q', 'docker:27-dind'], { env: denv }).toString().trim()) {
    const ctx = tmp('gci-dind-');
    cpSync('/bin/busybox', join(ctx, 'busybox'));
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nLABEL gitops-ci.test=dind-stand-in\nCMD ["/bin/busybox", "sleep", "3600"]\n');
    execFileSync('docker', ['build', '-q', '-t', 'docker:27-dind', ctx], { env: denv, stdio: 'ignore' });
  }
  const bin = tmp('gci-bin-');
  writeFileSync(join(bin, 'gitops-ci'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(bin, 'gitops-ci'), 0o755);

  const h: PipelineHarness = {
    srv,
    reg,
    gl,
    ids,
    checkout(project, branch, version) {
      const dir = join(tmp('gci-glc-'), 'p');
      git(dirname(dir), ['clone', '-q', '--branch', branch, srv.authUrl(`${project}.git`), 'p']);
      git(dir, ['remote', 'set-url', 'origin', `${srv.url}/${project}.git`]);
      if (version) {
        const cache = join(dir, '.gitlab-ci-local/includes/127.0.0.1/gitops-ci/gitops-ci', version, 'templates');
        mkdirSync(cache, { recursive: true });
        cpSync(join(ROOT, 'templates'), cache, { recursive: true });
      }
      return dir;
    },
    vars(project, o) {
      return {
        CI_COMMIT_REF_PROTECTED: String(o.protectedRef),
        CI_REGISTRY: reg.host,
        CI_REGISTRY_IMAGE: `${reg.host}/${project}`,
        CI_REGISTRY_USER: reg.user,
        CI_REGISTRY_PASSWORD: reg.password,
        CI_JOB_TOKEN: srv.password,
        CI_REPOSITORY_URL: `http://gitlab-ci-token:${srv.password}@127.0.0.1:${srv.port}/${project}.git`,
        CI_API_V4_URL: gl.apiUrl,
        CI_PROJECT_ID: String(ids[project]),
        GITOPS_GITLAB_TOKEN: gl.token,
        ...(o.argo ? { ARGOCD_SERVER: o.argo.url, ARGOCD_AUTH_TOKEN: o.argo.token } : {}),
      };
    },
    gcl(dir, extra, v, unset = []) {
      // gitlab-ci-local's shell executor runs the jobs in `dir` but says CI_PROJECT_DIR=/builds/<path>; GitLab says
      // where the checkout is
      v = { CI_PROJECT_DIR: dir, ...v };
      // A pipeline that runs is one GitLab created: it exists in the API, in its project, for the commit it runs,
      // with an id above every earlier one (https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline), which
      // is what the stale guard checks a recorded pipeline against. gitlab-ci-local numbers its pipelines per
      // checkout (two checkouts both run 1000), so the harness asks the GitLab double for the id.
      const listing = extra.some((a) => a === '--list-json' || a === '--preview' || a === '--list');
      const project = Object.entries(ids).find(([, id]) => String(id) === v.CI_PROJECT_ID)?.[0];
      if (!listing && project && !v.CI_PIPELINE_ID) {
        const sha = git(dir, ['rev-parse', 'HEAD']).trim();
        const ref = v.CI_COMMIT_BRANCH ?? v.CI_COMMIT_TAG ?? v.CI_MERGE_REQUEST_SOURCE_BRANCH_NAME ?? git(dir, ['rev-parse', '--abbrev-ref', 'HEAD']).trim();
        v = { ...v, CI_PIPELINE_ID: String(gl.hooks.addPipeline(project, { sha, ref, status: 'running' })) };
      }
      const all = { ...v, DOCKER_HOST: docker.host, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' };
      const args = [
        '--force-shell-executor',
        '--ignore-predefined-vars',
        Object.keys(v).filter((k) => k.startsWith('CI_')).join(','),
        ...Object.entries(all).flatMap(([k, val]) => ['--variable', `${k}=${val}`]),
        ...unset.flatMap((k) => ['--unset-variable', k]),
        ...extra,
      ];
      return run(args, { cwd: dir, env: { ...process.env, DOCKER_HOST: docker.host, PATH: `${bin}:${process.env.PATH}`, NO_COLOR: '1' } });
    },
    async jobs(dir, v, unset = []) {
      const r = await h.gcl(dir, ['--list-json', '--no-json-schema-validation'], v, unset);
      if (r.code !== 0) throw new Error(r.out);
      const list = JSON.parse(r.out.slice(r.out.indexOf('\n['))) as Array<{ name: string; when: string }>;
      return list.filter((j) => j.when !== 'never').map((j) => j.name).sort();
    },
    async pipeline(dir, v, unset = []) {
      const r = await h.gcl(dir, ['--list-json', '--no-json-schema-validation'], v, unset);
      if (r.code !== 0) throw new Error(r.out);
      const list = JSON.parse(r.out.slice(r.out.indexOf('\n['))) as ListedJob[];
      const yaml = await h.preview(dir, v, unset);
      const stages = (parseYaml(yaml) as { stages?: string[] }).stages ?? ['build', 'test', 'deploy'];
      return { stages, jobs: list.filter((j) => j.when !== 'never') };
    },
    async preview(dir, v, unset = []) {
      const r = await h.gcl(dir, ['--preview', '--no-json-schema-validation'], v, unset);
      if (r.code !== 0) throw new Error(r.out);
      // gitlab-ci-local prints its progress lines first; the document starts at the first top-level key
      const lines = r.out.split('\n');
      const at = lines.findIndex((l) => /^[A-Za-z.$"'][^ ]*:( |$)/.test(l) && !/^parsing and downloads/.test(l));
      return lines.slice(at < 0 ? 0 : at).join('\n');
    },
    pushLog(project) {
      return installPushLog(srv.repoPath(`${project}.git`));
    },
    gitUrl(project, user) {
      if (!user || user === srv.user) return srv.authUrl(`${project}.git`);
      const pw = o.gitUsers?.[user];
      if (!pw) throw new Error(`harness: no git user ${user}`);
      return `http://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${srv.port}/${project}.git`;
    },
    async stop() {
      await gl.stop();
      await reg.stop();
      await srv.stop();
    },
  };
  return h;
}
