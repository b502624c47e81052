/**
 * `make demo`: the main job, end to end, on an embedded default, against real local services:
 *   1. a throwaway config repo laid out like the seed's `.kubernetes` (base + staging/production overlays),
 *      served by a git smart-HTTP server with basic auth;
 *   2. the sample app's image built through the Docker Engine API and pushed to a local registry (htpasswd);
 *   3. `set-image` on staging (diff, then both overlays rendered with kustomize);
 *   4. `bump`: staging pinned to the pushed digest, committed with [skip ci] and pushed;
 *   5. `argocd wait`: an Argo CD stand-in deploys that commit; the job passes only once it is synced and healthy;
 *   6. `promote` + `gate`: the verified staging digest goes to production through a merge request on a GitLab
 *      stand-in, with the rendered diff; the gate refuses it until approved; it merges.
 * Every service is started here and stopped at the end, whatever happens.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commands } from '../src/commands/index.js';
import { startGitServer, startRegistry, stopSharedServices, tmp, useDocker, type GitServer, type Registry } from '../test/helpers/services.js';
import { git, pushTree, seedLayout } from '../test/helpers/config-repo.js';
import { $ } from 'zx';

const CLI = fileURLToPath(new URL('../dist/gitops-ci.cjs', import.meta.url));
const ARGO_DOUBLE = '../test/doubles/argocd/server.js'; // built with issue #5; loaded only when present
const GITLAB_DOUBLE = '../test/doubles/gitlab/server.js';
const available = (name: string) => commands.some((c) => c.name === name && !c.unavailable);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (n: number, title: string) => console.log(`\n${bold(`━━ ${n}. ${title}`)}`);

function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<{ code: number; stdout: string }> {
  console.log(`$ gitops-ci ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d) => {
      stdout += d;
      process.stdout.write(d);
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

async function must(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<string> {
  const r = await cli(args, env, cwd);
  if (r.code !== 0) throw new Error(`gitops-ci ${args[0]} exited with ${r.code}`);
  return r.stdout;
}

const cleanups: Array<() => Promise<void> | void> = [];

async function main(): Promise<void> {
  const IMAGE_NAME = 'registry.example.com/shovel/shovel-gitops';
  const work = tmp('gci-demo-');
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));

  step(1, 'A throwaway config repo, laid out like the seed (.kubernetes/base + overlays/{staging,production})');
  // the job token (user gitlab-ci-token), and a project access token of the config project (its bot user), which
  // the six bumps of step 7 write with, as jobs of other projects do on GitLab
  const configBotToken = `glpat-demo-${Math.random().toString(36).slice(2, 12)}`;
  const srv: GitServer = await startGitServer({ user: 'gitlab-ci-token', users: { 'shovel-config-bot': configBotToken } });
  cleanups.push(() => srv.stop());
  srv.createRepo('shovel/shovel-config.git');
  const first = pushTree(srv.authUrl('shovel/shovel-config.git'), seedLayout(IMAGE_NAME), { message: 'initial config' });
  console.log(`config repo ${srv.url}/shovel/shovel-config.git at ${first.slice(0, 8)} (served by git http-backend with basic auth)`);
  // the Argo CD stand-in watches the config repo from the start: staging is Synced and Healthy on this first
  // commit, which is exactly the state in which `argocd app wait` would wrongly report the next deploy as done
  let argo: { url: string; token: string; stop(): Promise<void> } | undefined;
  if (available('argocd wait') && existsSync(fileURLToPath(new URL('../test/doubles/argocd/server.ts', import.meta.url)))) {
    const { startArgoCdDouble } = (await import(ARGO_DOUBLE)) as { startArgoCdDouble: (o: Record<string, unknown>) => Promise<{ url: string; token: string; stop(): Promise<void> }> };
    argo = await startArgoCdDouble({
      repoURL: srv.authUrl('shovel/shovel-config.git'),
      apps: [{ name: 'shovel-staging', path: '.kubernetes/overlays/staging', targetRevision: 'main' }],
      // review apps (step 9): one app per directory under review/, as an ApplicationSet git directories generator makes them
      appsets: [{ name: 'shovel-review', directories: 'review/*', template: { name: 'shovel-review-{{path.basename}}', path: '{{path}}', targetRevision: 'main', destinationNamespace: 'review-{{path.basename}}' } }],
      pollIntervalMs: 2000,
    });
    cleanups.push(() => argo!.stop());
    console.log(`Argo CD stand-in at ${argo.url}: shovel-staging Synced and Healthy at ${first.slice(0, 8)}`);
  }
  const ciEnv: NodeJS.ProcessEnv = {
    CI: 'true',
    CI_PROJECT_PATH: 'shovel/shovel-gitops',
    CI_PROJECT_URL: 'https://gitlab.example.com/shovel/shovel-gitops',
    CI_COMMIT_SHA: 'c0ffee0000000000000000000000000000000001',
    CI_COMMIT_SHORT_SHA: 'c0ffee00',
    CI_COMMIT_REF_SLUG: 'main',
    CI_DEFAULT_BRANCH: 'main',
    CI_PIPELINE_ID: '1001',
    CI_PIPELINE_URL: 'https://gitlab.example.com/shovel/shovel-gitops/-/pipelines/1001',
    CI_JOB_URL: 'https://gitlab.example.com/shovel/shovel-gitops/-/jobs/5001',
    GITLAB_USER_NAME: 'Demo Developer',
    GITLAB_USER_EMAIL: 'dev@example.com',
  };

  let newRef = `${IMAGE_NAME}:c0ffee00`;
  let pinnedExpr = `${IMAGE_NAME}:c0ffee00`;

  step(2, 'Build the sample app image through the Docker Engine API and push it to a local registry');
  if (available('image build')) {
    const docker = await useDocker();
    cleanups.push(() => stopSharedServices(process.env.GITOPS_TEST_RUN_DIR!));
    const reg: Registry = await startRegistry({ user: 'gitlab-ci-token' });
    cleanups.push(() => reg.stop());
    const app = join(work, 'app');
    mkdirSync(app, { recursive: true });
    copyFileSync('/bin/busybox', join(app, 'busybox'));
    writeFileSync(join(app, 'index.html'), '<h1>shovel</h1>\n');
    writeFileSync(join(app, '.dockerignore'), 'secrets.env\n');
    writeFileSync(join(app, 'secrets.env'), 'TOKEN=never-in-the-image\n');
    writeFileSync(
      join(app, 'Dockerfile'),
      `# a multi-stage build FROM locally made bases (no Docker Hub here)
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base AS build
RUN mkdir -p /out && echo "built at build time" > /out/build.txt

FROM base
COPY --from=build /out /srv
COPY index.html /srv/index.html
CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/srv"]
`,
    );
    const dotenv = join(work, 'build.env');
    const env = {
      ...ciEnv,
      DOCKER_HOST: docker.host,
      CI_REGISTRY: reg.host,
      CI_REGISTRY_IMAGE: `${reg.host}/shovel/shovel-gitops`,
      CI_REGISTRY_USER: reg.user,
      CI_REGISTRY_PASSWORD: reg.password,
    };
    await must(['image', 'build', '--context', app, '--push', '--dotenv', dotenv], env);
    const out = Object.fromEntries(readFileSync(dotenv, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    console.log(`dotenv for the next job: ${readFileSync(dotenv, 'utf8').trim().split('\n').join('  ')}`);
    newRef = out.IMAGE!;
    pinnedExpr = `${IMAGE_NAME}=${out.IMAGE}`;
  } else {
    console.log('(image build arrives with issue #4; the demo uses a tag instead)');
  }

  step(3, 'set-image on staging: the diff, then both overlays rendered with kustomize');
  const local = join(work, 'checkout');
  git(work, ['clone', '-q', srv.authUrl('shovel/shovel-config.git'), local]);
  const staging = join(local, '.kubernetes/overlays/staging');
  await must(['set-image', '--dir', staging, '--dry-run', pinnedExpr]);
  await must(['set-image', '--dir', staging, '--render', pinnedExpr]);
  for (const env of ['staging', 'production']) {
    const rendered = (await $`kubectl kustomize ${join(local, `.kubernetes/overlays/${env}`)}`).stdout;
    const images = [...rendered.matchAll(/image: (\S+)/g)].map((m) => m[1]);
    console.log(`rendered ${env}: ${images.join(', ')}`);
  }
  rmSync(local, { recursive: true, force: true });

  let commit = first;
  step(4, 'bump: pin staging in the config repo, commit with [skip ci], push');
  if (available('bump')) {
    const dotenv = join(work, 'bump.env');
    await must(['bump', '--repo', `${srv.url}/shovel/shovel-config.git`, '--branch', 'main', '--dir', '.kubernetes/overlays/staging', '--image', pinnedExpr, '--dotenv', dotenv], {
      ...ciEnv,
      CI_JOB_TOKEN: srv.password,
    });
    const vars = readFileSync(dotenv, 'utf8');
    commit = /GITOPS_COMMIT_SHA=(\w+)/.exec(vars)?.[1] ?? commit;
    const show = join(work, 'show');
    git(work, ['clone', '-q', srv.authUrl('shovel/shovel-config.git'), show]);
    console.log(git(show, ['log', '-1', '--stat', '--format=commit %H%nAuthor: %an <%ae>%n%n%B']));
    console.log(git(show, ['show', '--format=', 'HEAD', '--', '.kubernetes/overlays/staging/kustomization.yaml']));
  } else {
    console.log('(bump arrives with issue #3)');
  }

  step(5, 'argocd wait: an Argo CD stand-in deploys the commit; pass only when synced to it and healthy');
  if (argo) {
    await must(['argocd', 'wait', '--app', 'shovel-staging', '--revision', commit, '--timeout', '60s', '--plaintext'], { ...ciEnv, ARGOCD_SERVER: argo.url, ARGOCD_AUTH_TOKEN: argo.token });
  } else {
    console.log('(argocd wait arrives with issue #5)');
  }

  step(6, 'promote: the verified staging digest to production through a merge request, gated by approvals');
  let promoted = '';
  if (available('promote') && available('gate') && pinnedExpr.includes('@sha256:')) {
    promoted = await promoteToProduction({ srv, argo, ciEnv, work });
  } else {
    console.log('(promote needs a digest in staging (image build), the promote and gate commands; skipped)');
  }

  step(7, 'many pipelines at once (issue #12): six services bump one branch together, then a late, older pipeline');
  let raced = '';
  if (available('bump')) raced = await racingPipelines({ url: `${srv.url}/shovel/shovel-config.git`, authUrl: srv.authUrl('shovel/shovel-config.git'), token: configBotToken, ciEnv, work });
  else console.log('(bump arrives with issue #3)');

  step(8, 'status and rollback (issue #19): what runs where; a bad release; back to the state Argo CD ran before; the Rollback button');
  let rolledBack = '';
  if (argo && available('rollback') && available('status') && pinnedExpr.includes('@sha256:')) {
    rolledBack = await statusAndRollback({ url: `${srv.url}/shovel/shovel-config.git`, token: srv.password, argo, ciEnv, image: IMAGE_NAME, buildExpr: pinnedExpr });
  } else {
    console.log('(needs the Argo CD stand-in, a digest in staging (image build), status and rollback; skipped)');
  }

  step(9, 'review app (issue #19): a merge request gets an app of its own; merging the MR stops it and Argo CD deletes it');
  let reviewed = '';
  if (argo && available('review up') && pinnedExpr.includes('@sha256:')) {
    reviewed = await reviewApp({ url: `${srv.url}/shovel/shovel-config.git`, token: srv.password, argo, ciEnv, buildExpr: pinnedExpr });
  } else {
    console.log('(needs the Argo CD stand-in, a digest (image build) and review up/down; skipped)');
  }

  console.log(`\n${bold('demo done')}: ${newRef} is in staging${commit !== first ? ` at config commit ${commit.slice(0, 8)}` : ''}${promoted ? `, and in production at ${promoted.slice(0, 8)}` : ''}${raced ? `; ${raced}` : ''}${rolledBack ? `; ${rolledBack}` : ''}${reviewed ? `; ${reviewed}` : ''}`);
}

/**
 * Step 9: MR !12's pipeline writes its review overlay (review/mr-12/), the ApplicationSet generates the app and it
 * runs healthy; the MR is merged, GitLab runs the environment's stop job: the overlay goes and Argo CD deletes the app.
 */
async function reviewApp(o: { url: string; token: string; argo: { url: string; token: string }; ciEnv: NodeJS.ProcessEnv; buildExpr: string }): Promise<string> {
  const env = { ...o.ciEnv, CI_JOB_TOKEN: o.token, ARGOCD_SERVER: o.argo.url, ARGOCD_AUTH_TOKEN: o.argo.token, CI_MERGE_REQUEST_IID: '12', CI_PIPELINE_ID: '1020', CI_COMMIT_SHA: `fea7${'0'.repeat(36)}` };
  const repo = ['--repo', o.url, '--branch', 'main', '--env', 'review/mr-12'];
  const dotenv = join(tmp('gci-demo-review-'), 'review.env');
  await must(['review', 'up', ...repo, '--base', '.kubernetes/overlays/staging', '--image', o.buildExpr, '--dotenv', dotenv], env);
  const head = /GITOPS_CONFIG_HEAD=(\w+)/.exec(readFileSync(dotenv, 'utf8'))?.[1];
  if (!head) throw new Error('review up wrote no GITOPS_CONFIG_HEAD');
  await must(['argocd', 'wait', '--app', 'shovel-review-mr-12', '--project', 'default', '--wait-created', '--revision', head, '--timeout', '60s', '--poll-interval', '500ms'], env);
  console.log('\nMR !12 is merged: GitLab runs the environment\'s on_stop job');
  await must(['review', 'down', ...repo], env);
  await must(['argocd', 'wait', '--app', 'shovel-review-mr-12', '--project', 'default', '--gone', '--timeout', '60s', '--poll-interval', '500ms'], env);
  return 'review app mr-12 started healthy, stopped and deleted';
}

/** a bump run quietly (six at once would interleave their logs): exit code, its summary line, its retries, and whether
 *  it waited for the server's write-back lock */
function bumpQuiet(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; summary: string; retries: number; waited: boolean }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, 'bump', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const lines = err.trim().split('\n');
      resolve({ code: code ?? 1, summary: lines.filter((l) => /^(✔|✖|warning: skipped)/.test(l)).join(' | ') || lines[lines.length - 1]!, retries: (err.match(/push rejected/g) ?? []).length, waited: /holds the server's write-back lock/.test(err) });
    });
  });
}

/**
 * Step 7: six bump jobs of six services (pipelines 1002–1007) push to one branch at the same moment: each
 * lands exactly once, as its own commit, without a force push: they take turns through the config repo's write-back
 * lock (the Git LFS locks API the demo's git server serves as GitLab does); where a server offers none, the losers of
 * the race fetch, re-apply and push again. Then pipeline 995, older than 1002 and finishing last, tries to put its older worker-0 back:
 * the stale-pipeline guard skips it (exit 0, no commit). Returns a one-line summary.
 */
async function racingPipelines(o: { url: string; authUrl: string; token: string; ciEnv: NodeJS.ProcessEnv; work: string }): Promise<string> {
  const n = 6;
  const args = (i: number, tag: string) => ['--repo', o.url, '--branch', 'main', '--dir', '.kubernetes/overlays/staging', '--image', `registry.example.com/shovel/worker-${i}:${tag}`];
  // a config repo in another project takes a token of its own on GitLab (a job token pushes only to its own
  // project, and takes no LFS lock): GITOPS_GIT_TOKEN, a project access token of the config project
  const env = (pipeline: number) => ({
    ...o.ciEnv,
    GITOPS_GIT_USER: 'shovel-config-bot',
    GITOPS_GIT_TOKEN: o.token,
    CI_PIPELINE_ID: String(pipeline),
    CI_COMMIT_SHA: `c0ffee${String(pipeline).padStart(34, '0')}`,
    CI_COMMIT_SHORT_SHA: `c0ffee${String(pipeline).slice(-2)}`,
  });
  const probe = join(o.work, 'race');
  git(o.work, ['clone', '-q', o.authUrl, probe]);
  const before = git(probe, ['rev-parse', 'HEAD']).trim();
  console.log(`$ ${n} × gitops-ci bump --repo ${o.url} --branch main --dir .kubernetes/overlays/staging --image registry.example.com/shovel/worker-<i>:1.0.<i>   (at once)`);
  const t0 = Date.now();
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => bumpQuiet(args(i, `1.0.${i}`), env(1002 + i))));
  runs.forEach((r, i) => console.log(`  pipeline ${1002 + i}: exit ${r.code}, ${r.waited ? 'waited for its turn' : 'first in'}, ${r.retries} retr${r.retries === 1 ? 'y' : 'ies'}: ${r.summary}`));
  if (runs.some((r) => r.code !== 0)) throw new Error('a racing bump failed');
  const waited = runs.filter((r) => r.waited).length;
  console.log(`all ${n} landed in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${waited} of them after waiting for their turn at the config repo's write-back lock (GitLab's Git LFS locks, --server-lock auto), ${runs.reduce((a, r) => a + r.retries, 0)} retries in all; the branch, one commit each, none forced:`);
  git(probe, ['pull', '-q', '--ff-only']);
  console.log(git(probe, ['log', '--format=%h %s', `${before}..HEAD`]).trimEnd());
  console.log(`\n$ gitops-ci bump ... --image registry.example.com/shovel/worker-0:0.9.0   (pipeline 995, older than 1002, finishing last)`);
  const late = await bumpQuiet(args(0, '0.9.0'), env(995));
  console.log(`  pipeline 995: exit ${late.code}: ${late.summary}`);
  git(probe, ['pull', '-q', '--ff-only']);
  const staging = readFileSync(join(probe, '.kubernetes/overlays/staging/kustomization.yaml'), 'utf8');
  const kept = /name: registry\.example\.com\/shovel\/worker-0\s+newTag: "?([^"\s]+)/.exec(staging)?.[1];
  console.log(`staging keeps worker-0 at ${kept}`);
  if (late.code !== 0 || kept !== '1.0.0') throw new Error('the stale-pipeline guard did not hold');
  return `${n} pipelines at once landed once each (${waited} took their turn at the server's lock), and the older one was skipped`;
}

/**
 * Step 6: a GitLab stand-in (test/doubles/gitlab) in front of the same git server. promote reads staging at the
 * commit Argo CD verified, opens one MR into main with the rendered diff; the gate refuses it until a reviewer
 * approves; the MR then merges (its pipeline succeeds) and `gate --commit` confirms the merged change was
 * approved. Returns the merge commit.
 */
async function promoteToProduction(o: { srv: GitServer; argo?: { url: string; token: string }; ciEnv: NodeJS.ProcessEnv; work: string }): Promise<string> {
  const { startGitlabDouble } = (await import(GITLAB_DOUBLE)) as typeof import('../test/doubles/gitlab/server.js');
  const PROJECT = 'shovel/shovel-config';
  const gl = await startGitlabDouble({
    git: o.srv,
    projects: [{ path: PROJECT, repo: 'shovel/shovel-config.git', id: 42 }],
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }, { username: 'alice', name: 'Alice Reviewer' }, { username: 'bob', name: 'Bob Release' }],
  });
  cleanups.push(() => gl.stop());
  console.log(`GitLab stand-in at ${gl.apiUrl} (project ${PROJECT}, MRs and merges are real git on the same server)`);
  const env: NodeJS.ProcessEnv = {
    ...o.ciEnv,
    CI_JOB_TOKEN: o.srv.password,
    CI_SERVER_HOST: '127.0.0.1',
    CI_API_V4_URL: gl.apiUrl,
    CI_PROJECT_ID: '42',
    GITOPS_GITLAB_TOKEN: gl.token,
    ...(o.argo ? { ARGOCD_SERVER: o.argo.url, ARGOCD_AUTH_TOKEN: o.argo.token } : {}),
  };
  const dotenv = join(o.work, 'promote.env');
  await must(
    ['promote', '--repo', `${o.srv.url}/${PROJECT}.git`, '--branch', 'main', '--from', '.kubernetes/overlays/staging', '--to', '.kubernetes/overlays/production', ...(o.argo ? ['--from-app', 'shovel-staging', '--argocd-plaintext'] : []), '--via', 'mr', '--label', 'promotion', '--reviewer', 'alice', '--dotenv', dotenv],
    env,
  );
  const out = Object.fromEntries(readFileSync(dotenv, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const iid = Number(out.GITOPS_MR_IID);
  const mr = gl.hooks.mergeRequest(PROJECT, iid) as { title: string; web_url: string; description: string };
  console.log(`\nmerge request !${iid}: ${mr.title}\n${mr.web_url}\n${'─'.repeat(100)}\n${mr.description}\n${'─'.repeat(100)}`);

  console.log('\nthe production gate, before any approval (expected to refuse):');
  const refused = await cli(['gate', '--mr', String(iid), '--approvals', '1'], env);
  if (refused.code === 0) throw new Error('the gate passed without an approval');
  gl.hooks.approve(PROJECT, iid, 'alice');
  console.log('\nalice approves; the gate again:');
  await must(['gate', '--mr', String(iid), '--approvals', '1'], env);

  // the gate job passed, the MR pipeline succeeds; the release manager merges (pinned to the head that was approved)
  gl.hooks.setPipeline(PROJECT, iid, 'success');
  const { gitlabClient } = await import('../src/gitlab/client.js');
  const { resolveGitlabConfig } = await import('../src/gitlab/config.js');
  const client = gitlabClient(resolveGitlabConfig({ ...env, GITOPS_GITLAB_TOKEN: gl.tokenOf('bob') }, {}));
  const merged = await client.mergeMergeRequest(42, iid, { sha: out.GITOPS_COMMIT_SHA });
  client.close();
  const mergeCommit = merged.mergeCommitSha ?? gl.hooks.branchSha(PROJECT, 'main')!;
  console.log(`\nmerge request !${iid} ${merged.state}: main is at ${mergeCommit.slice(0, 12)}`);
  console.log('the production deploy job checks that the change it deploys was approved before it merged:');
  await must(['gate', '--commit', mergeCommit, '--branch', 'main', '--approvals', '1'], env);
  const show = join(o.work, 'show-prod');
  git(o.work, ['clone', '-q', o.srv.authUrl(`${PROJECT}.git`), show]);
  console.log(git(show, ['log', '-2', '--format=%h %s']));
  console.log(readFileSync(join(show, '.kubernetes/overlays/production/kustomization.yaml'), 'utf8').split('images:')[1]?.trim() ?? '');
  return mergeCommit;
}

/**
 * Step 8: staging as it is (status), then pipeline 1010 ships a bad build; `rollback --env staging` returns the
 * app image to the state Argo CD ran before (a new write-back commit, the old build's provenance), Argo CD deploys
 * it, status shows it. Before that, GitLab's "Rollback environment" button re-runs pipeline 1001's deploy job:
 * refused (exit 1) with the rollback to run instead, never a skip reported as success. Returns a one-line summary.
 */
async function statusAndRollback(o: { url: string; token: string; argo: { url: string; token: string }; ciEnv: NodeJS.ProcessEnv; image: string; buildExpr: string }): Promise<string> {
  const env = { ...o.ciEnv, CI_JOB_TOKEN: o.token, ARGOCD_SERVER: o.argo.url, ARGOCD_AUTH_TOKEN: o.argo.token };
  const repo = ['--repo', o.url, '--branch', 'main'];
  const tipOf = async () => {
    const r = await cli(['status', ...repo, '--env', 'staging', '--app', 'staging=shovel-staging', '--json'], env);
    return JSON.parse(r.stdout).environments[0].configHead as string;
  };
  // the racing bumps of step 7 reach Argo CD first
  await must(['argocd', 'wait', '--app', 'shovel-staging', '--revision', await tipOf(), '--timeout', '60s'], env);
  await must(['status', ...repo, '--env', 'staging', '--app', 'staging=shovel-staging'], env);
  const bad = `${o.image}@sha256:${'bad0'.repeat(16)}`;
  const badEnv = { ...env, CI_PIPELINE_ID: '1010', CI_COMMIT_SHA: `badc0de${'0'.repeat(33)}`, CI_PIPELINE_URL: 'https://gitlab.example.com/shovel/shovel-gitops/-/pipelines/1010' };
  console.log('\npipeline 1010 ships a bad build to staging:');
  await must(['bump', ...repo, '--dir', '.kubernetes/overlays/staging', '--image', bad], badEnv);
  await must(['argocd', 'wait', '--app', 'shovel-staging', '--revision', await tipOf(), '--timeout', '60s'], env);
  console.log(`\nGitLab's "Rollback environment" button re-runs pipeline 1001's deploy job (step 4), whose build was replaced since:`);
  const rerun = await cli(['bump', ...repo, '--dir', '.kubernetes/overlays/staging', '--image', o.buildExpr], env);
  if (rerun.code === 0) throw new Error('a re-run of an old deploy job passed as if it had rolled back');
  console.log(`  exit ${rerun.code}: refused, with the rollback to run instead (GITOPS_ON_RERUN=rollback would let it roll back)`);
  console.log('\nroll staging\'s app image back to the state Argo CD ran before:');
  const dotenv = join(tmp('gci-demo-rollback-'), 'rollback.env');
  await must(['rollback', ...repo, '--env', 'staging', '--app', 'shovel-staging', '--image', o.image, '--dotenv', dotenv], env);
  const commit = /GITOPS_COMMIT_SHA=(\w+)/.exec(readFileSync(dotenv, 'utf8'))?.[1];
  if (!commit) throw new Error('rollback pushed no commit');
  await must(['argocd', 'wait', '--app', 'shovel-staging', '--revision', commit, '--timeout', '60s'], env);
  await must(['status', ...repo, '--env', 'staging', '--app', 'staging=shovel-staging'], env);
  return `staging rolled back to ${o.buildExpr.slice(o.buildExpr.indexOf('@') + 1, o.buildExpr.indexOf('@') + 20)}… at ${commit.slice(0, 8)}, and a re-run deploy job refused`;
}

main()
  .catch((e) => {
    console.error(`demo failed: ${(e as Error).message}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  });
