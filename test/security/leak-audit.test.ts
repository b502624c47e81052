/**
 * A hostile audit for secrets leaking (docs/security.md, promise 1): paths the other files of test/security do
 * not cover. Each case makes a real call fail or run — the real git smart-HTTP server with basic auth, the
 * real docker-registry with htpasswd, the Argo CD and GitLab doubles — and checks that the secret reached
 * nobody who should not have it: no output, file, child argv or payload (runAbused), and no server other
 * than its own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { deploymentYaml, git, pushTree, seedBare, seedLayout, writeTree, type Tree } from '../helpers/config-repo.js';
import { PROD } from '../promote/fixture.js';
import { startGitServer, startRegistry, tmp, type GitServer, type Registry } from '../helpers/services.js';
import { setupGitlab, type GitlabFixture } from '../gitlab/fixture.js';
import { IMAGE, overlayWithTag, setup, STAGING, stopFixtures } from '../argocd/fixture.js';
import { expectNoLeak, runAbused } from './abuse.js';
import { docker as getDocker, makeBase } from '../image/helpers.js';

const RAND = Math.random().toString(36).slice(2, 10);

describe('argocd wait --allow-descendant: the git token goes only to the config repo, not to the host Argo CD names', () => {
  // the config repo the pipeline was given (GITOPS_CONFIG_REPO), and another server that the Argo CD app
  // reads from (its repoURL, with Argo CD's own repository credentials). The other server would accept the
  // token (the same bot exists there): whether it was sent shows in what it recorded.
  const TOKEN = `glpat-ancestry-${RAND}`;
  let config: GitServer;
  let other: GitServer;
  beforeAll(async () => {
    config = await startGitServer({ user: 'bot', password: TOKEN });
    other = await startGitServer({ user: 'argocd-repo', password: `argo-${RAND}`, users: { bot: TOKEN } });
  });
  afterAll(async () => {
    await config?.stop();
    await other?.stop();
  });
  afterEach(() => stopFixtures({ checked: true }));

  /** an app on `other`, deployed one commit past `c1`: the wait for c1 asks git whether the deployed one descends from it */
  async function superseded(name: string) {
    other.createRepo(`${name}.git`);
    const bare = other.repoPath(`${name}.git`);
    const c1 = seedBare(bare, seedLayout(IMAGE));
    const fx = await setup({ repoURL: other.authUrl(`${name}.git`) });
    const c2 = pushTree(bare, { [`${STAGING}/kustomization.yaml`]: overlayWithTag('9.9.9') }, { message: 'bump 9.9.9 [skip ci]' });
    fx.argo.pollNow();
    for (let i = 0; i < 400 && fx.argo.app('shovel-staging').status.health.status !== 'Healthy' || fx.argo.app('shovel-staging').status.sync.revision !== c2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(fx.argo.app('shovel-staging').status.sync.revision).toBe(c2);
    return { fx, c1 };
  }

  it("an app whose repoURL is on another host than the config repo: no token sent there (exit 3, says why), none shown", async () => {
    const { fx, c1 } = await superseded('elsewhere');
    const before = other.requests.length;
    const res = await runAbused(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '30s'], {
      env: { ...fx.env, GITOPS_CONFIG_REPO: `${config.url}/group/config.git`, GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: TOKEN },
      secret: TOKEN,
      users: ['bot'],
    });
    // what the other server saw from this run: nothing authenticated as the bot
    const seen = other.requests.slice(before);
    expect(seen.filter((r) => r.user === 'bot'), res.all).toEqual([]);
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EGIT_AUTH');
    expect(res.stderr).toMatch(/not the config repo's host/);
  });

  it('the same app when the config repo is on that host: the token is used and the wait passes', async () => {
    const { fx, c1 } = await superseded('samehost');
    const res = await runAbused(['argocd', 'wait', '--app', 'shovel-staging', '--revision', c1, '--allow-descendant', '--timeout', '30s'], {
      env: { ...fx.env, GITOPS_CONFIG_REPO: `${other.url}/samehost.git`, GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: TOKEN },
      secret: TOKEN,
      users: ['bot'],
    });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/descends from/);
    expect(other.requests.some((r) => r.user === 'bot')).toBe(true);
    expectNoLeak('stderr', res.stderr, TOKEN, ['bot']);
  });
});

// (DOCKER_AUTH_CONFIG's `auth` and CI_REGISTRY_PASSWORD refused at a push or resolve: test/image/build.test.ts)
describe('rejected credentials, with --verbose: the secret in no output, file, child argv', () => {
  // characters that URL-encoding and base64 both change
  const PW = `r3g+p=${RAND}/x`;
  const WRONG = `wr0ng+p=${RAND}/y`;
  let reg: Registry;
  let srv: GitServer;
  let gl: GitlabFixture;
  beforeAll(async () => {
    [reg, srv, gl] = await Promise.all([startRegistry({ user: 'reguser', password: PW }), startGitServer({ user: 'gitlab-ci-token', password: PW }), setupGitlab()]);
    srv.createRepo('group/config.git');
  });
  afterAll(async () => {
    expect(gl?.recorder.violations).toEqual([]);
    await Promise.all([reg?.stop(), srv?.stop(), gl?.stop()]);
  });

  const rows: Array<{ name: string; args: () => string[]; env: () => NodeJS.ProcessEnv; secret: string; users?: string[]; code: number; says: RegExp }> = [
    {
      name: 'DOCKER_AUTH_CONFIG `identitytoken` at a registry that knows only basic auth (image resolve)',
      args: () => ['--verbose', 'image', 'resolve', `${reg.host}/group/app:1`],
      env: () => ({ DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [reg.host]: { identitytoken: `idtok-${WRONG}` } } }) }),
      secret: `idtok-${WRONG}`,
      code: 3,
      says: /EREGISTRY_AUTH/,
    },
    {
      name: 'CI_REGISTRY_PASSWORD refused (image copy, the destination)',
      args: () => ['--verbose', 'image', 'copy', `${reg.host}/group/app:1`, `${reg.host}/group/copy:1`],
      env: () => ({ CI_REGISTRY: reg.host, CI_REGISTRY_USER: 'reguser', CI_REGISTRY_PASSWORD: WRONG }),
      secret: WRONG,
      users: ['reguser'],
      code: 3,
      says: /EREGISTRY_AUTH/,
    },
    {
      name: 'CI_REPOSITORY_URL with a job token the git server refuses (bump)',
      args: () => ['--verbose', 'bump', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1', '--timeout', '30'],
      env: () => ({ CI_REPOSITORY_URL: `http://gitlab-ci-token:${encodeURIComponent(WRONG)}@127.0.0.1:${srv.port}/group/config.git`, CI_JOB_TOKEN: WRONG, CI_SERVER_HOST: '127.0.0.1' }),
      secret: WRONG,
      users: ['gitlab-ci-token'],
      code: 3,
      says: /EGIT_AUTH/,
    },
    {
      name: 'a `"` and a `\\` in the password of an image reference: the error quotes it JSON-escaped, masked all the same',
      args: () => ['image', 'resolve', `HTTP://user:p"w\\d-${RAND}@${reg.host}/app:1`],
      env: () => ({}),
      secret: `p"w\\d-${RAND}`,
      code: 2,
      says: /EREGISTRY_BAD_REF/,
    },
    {
      name: 'a GitLab read token GitLab refuses (gate)',
      args: () => ['--verbose', 'gate', '--mr', '1', '--approvals', '1'],
      env: () => ({ CI_API_V4_URL: gl.gl.apiUrl, CI_SERVER_URL: gl.gl.url, CI_PROJECT_ID: '42', GITOPS_GITLAB_READ_TOKEN: `glpat-${WRONG}` }),
      secret: `glpat-${WRONG}`,
      code: 3,
      says: /EGITLAB_AUTH/,
    },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const res = await runAbused(row.args(), { env: row.env(), secret: row.secret, users: row.users });
      expect(res.code, res.all).toBe(row.code);
      expect(res.stderr).toMatch(row.says);
    });
  }
});

describe('a hostile merge request asks kustomize for the job\'s variables (preview)', () => {
  // kustomize reads the value of a key without `=` in a generator's env file from its own environment in some
  // versions: an MR that names the job's variables there would put them in the note everyone can read. The
  // renderer's environment has none of them (src/render/sandbox.ts sandboxEnv), whatever their names.
  it('a configMapGenerator env file naming the job\'s variables: no value in the note, and the renderer is given none of them', async () => {
    const dir = tmp('gci-leak-mr-');
    const commit = (t: Tree) => {
      writeTree(dir, t);
      git(dir, ['add', '-A']);
      git(dir, ['commit', '-q', '-m', 'change']);
      return git(dir, ['rev-parse', 'HEAD']);
    };
    git(dir, ['init', '-q', '-b', 'main']);
    const base = commit(seedLayout(IMAGE));
    const kust = seedLayout(IMAGE)[`${PROD}/kustomization.yaml`]!;
    expect(kust).toContain('configMapGenerator:\n');
    const VARS = { CI_JOB_JWT_V2: `jwt-${RAND}-payload`, DEPLOY_API_KEY: `apikey-${RAND}-value`, GITOPS_GITLAB_TOKEN: `glpat-${RAND}-note`, CI_JOB_TOKEN: `jobtok-${RAND}-x`, KUBE_CONFIG_B64: Buffer.from(`kubeconf-${RAND}`).toString('base64') };
    const head = commit({
      [`${PROD}/exfil.env`]: `${Object.keys(VARS).join('\n')}\n`,
      // one more generator in the overlay's own list (a second `configMapGenerator:` key is refused before kustomize runs)
      [`${PROD}/kustomization.yaml`]: kust.replace('configMapGenerator:\n', 'configMapGenerator:\n  - name: exfil\n    envs: [exfil.env]\n'),
    });
    // the secret the abuse harness follows in all its forms; the others are checked raw below
    const res = await runAbused(['preview', '--dry-run', '--repo-dir', dir, '--base', base, '--head', head], { env: VARS, secret: VARS.DEPLOY_API_KEY, cwd: dir });
    expect(res.code, res.all).toBe(0);
    // the generator did render (the attack ran): its keys are in the note, with no value of ours
    expect(res.stdout).toContain('exfil');
    expect(res.stdout).toContain('CI_JOB_JWT_V2');
    for (const v of Object.values(VARS)) expectNoLeak('the preview note', res.stdout + res.stderr, v);
    // and kustomize was given none of them, whatever their names: kustomize before v5 reads the value of a key
    // without `=` in an env file from its environment (https://github.com/kubernetes-sigs/kustomize/pull/4957
    // removed that in v5.0), and a runner image may carry an older one (kubectl ≤ 1.26 bundles kustomize 4)
    const renderer = res.childEnv.split(/^== /m).filter((sec) => /^(kustomize|kubectl)\n/.test(sec));
    expect(renderer.length, 'kustomize or kubectl ran through the shim').toBeGreaterThan(0);
    for (const sec of renderer) {
      for (const [k, v] of Object.entries(VARS)) {
        expect(sec, `the renderer was given ${k}`).not.toContain(`${k}=`);
        expectNoLeak(`the renderer's environment (${k})`, sec, v);
      }
    }
  });
});

describe('promote: the explicit registry credentials go only to the registries it writes to', () => {
  // GITOPS_REGISTRY_USER/PASSWORD (a project's credentials for the registry its build pushes to) are in every job of
  // the project. promote reads the registries the source overlay names — whatever host a merged change wrote
  // there — and writes to none without --copy-to (docs/commands/image.md: explicit credentials are for the
  // registries a command writes to). The other registry here asks for basic auth and records what it is sent.
  const REGPW = `regpw-${RAND}+/=`;
  const seen: string[] = [];
  let other: http.Server;
  let srv: GitServer;
  beforeAll(async () => {
    other = http.createServer((req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.writeHead(401, { 'Docker-Distribution-API-Version': 'registry/2.0', 'WWW-Authenticate': 'Basic realm="elsewhere"', 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    srv = await startGitServer();
  });
  afterAll(async () => {
    await new Promise((r) => other?.close(r));
    await srv?.stop();
  });

  it('promote without --copy-to: a source image on another registry is read without them (exit 3), and that registry saw no password', async () => {
    const host = `127.0.0.1:${(other.address() as AddressInfo).port}`;
    srv.createRepo('group/promote.git');
    const overlay = (tag: string) => `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deploy.yaml\nimages:\n- name: registry.example.com/team/app\n  newName: ${host}/team/app\n  newTag: "${tag}"\n`;
    seedBare(srv.repoPath('group/promote.git'), {
      'envs/staging/kustomization.yaml': overlay('2.0'),
      'envs/staging/deploy.yaml': deploymentYaml('registry.example.com/team/app'),
      'envs/production/kustomization.yaml': overlay('1.0'),
      'envs/production/deploy.yaml': deploymentYaml('registry.example.com/team/app'),
    });
    const res = await runAbused(['promote', '--repo', `${srv.url}/group/promote.git`, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production', '--via', 'push', '--dry-run'], {
      env: { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, GITOPS_REGISTRY_USER: 'builder', GITOPS_REGISTRY_PASSWORD: REGPW },
      secret: REGPW,
      users: ['builder'],
    });
    expect(seen.length, res.all).toBeGreaterThan(0);
    for (const a of seen) expectNoLeak('an Authorization header the other registry received', `${a} ${Buffer.from(a.replace(/^Basic /, ''), 'base64').toString('latin1')}`, REGPW, ['builder']);
    expect(res.code, res.all).toBe(3);
    expect(res.stderr).toContain('EREGISTRY_AUTH');
  });
});

describe('image build: the job token GitLab Runner leaves in .git/config never reaches the image', () => {
  // GitLab Runner before 18.0 (and later with FF_GIT_URLS_WITHOUT_TOKENS=false) clones with the job token in the
  // remote URL, which git keeps in .git/config (https://gitlab.com/gitlab-org/gitlab/-/issues/474043); a
  // Dockerfile's `COPY . .` then puts it into a pushed image. The real engine builds; the saved image is searched.
  it('COPY . of a checkout whose .git/config holds the token: the image holds the config without it', async () => {
    const TOKEN = `glcbt-64_${RAND}jobtoken`;
    const { docker: d, host } = await getDocker();
    const base = await makeBase(d);
    const ctx = tmp('gci-leak-ctx-');
    writeTree(ctx, {
      Dockerfile: `FROM ${base}\nCOPY . /src\n`,
      'app.txt': `app ${RAND}\n`,
      '.git/config': `[core]\n\trepositoryformatversion = 0\n[remote "origin"]\n\turl = https://gitlab-ci-token:${TOKEN}@gitlab.example.com/group/app.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[http "https://gitlab.example.com"]\n\textraheader = Authorization: Basic ${Buffer.from(`gitlab-ci-token:${TOKEN}`).toString('base64')}\n`,
      '.git/HEAD': 'ref: refs/heads/main\n',
    });
    const tag = `gci-leak/ctx:${RAND}`;
    const res = await runAbused(['image', 'build', '--context', ctx, '--file', join(ctx, 'Dockerfile'), '--tag', tag, '--builder', 'classic'], {
      env: { DOCKER_HOST: host, CI_JOB_TOKEN: TOKEN },
      secret: TOKEN,
      users: ['gitlab-ci-token'],
    });
    expect(res.code, res.all).toBe(0);
    const chunks: Buffer[] = [];
    for await (const c of (await d.getImage(tag).get()) as AsyncIterable<Buffer>) chunks.push(c);
    const saved = Buffer.concat(chunks).toString('latin1');
    // the checkout's git config is in the image (git still works there), without credentials
    expect(saved).toContain('https://gitlab.example.com/group/app.git');
    expect(saved).toContain(`app ${RAND}`);
    expectNoLeak('the image built from the context', saved, TOKEN, ['gitlab-ci-token']);
    await d.getImage(tag).remove({ force: true });
  });

  it('--build-arg CI_JOB_TOKEN (its value from the environment): allowed, with a warning that names the argument, never the value', async () => {
    const TOKEN = `glcbt-64_${RAND}argtoken`;
    const { docker: d, host } = await getDocker();
    const base = await makeBase(d);
    const ctx = tmp('gci-leak-arg-');
    writeTree(ctx, { Dockerfile: `FROM ${base}\nARG CI_JOB_TOKEN\nRUN test -n "$CI_JOB_TOKEN" && echo fetched-deps\n` });
    const tag = `gci-leak/arg:${RAND}`;
    const res = await runAbused(['image', 'build', '--context', ctx, '--file', join(ctx, 'Dockerfile'), '--tag', tag, '--build-arg', 'CI_JOB_TOKEN'], {
      env: { DOCKER_HOST: host, CI_JOB_TOKEN: TOKEN },
      secret: TOKEN,
      users: ['gitlab-ci-token'],
    });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('fetched-deps');
    expect(res.stderr).toMatch(/warning: --build-arg CI_JOB_TOKEN holds a secret: .*image's history/);
    // what the warning says is so: the engine kept the value in the image's history
    const history = JSON.stringify(await d.getImage(tag).history());
    expect(history).toContain(TOKEN);
    await d.getImage(tag).remove({ force: true });
  });
});

describe('templates: a credentialed config-repo input reaches the CLI in a variable, never on its command line', () => {
  // The deploy and promote jobs' scripts, as the components define them, run by sh with a `gitops-ci` on PATH that
  // records its argv and the GITOPS_CONFIG_REPO it was given. The config-repo input may carry credentials
  // (`https://oauth2:$TOKEN@…`: CI/CD variables are expanded in inputs): a command line is readable by every
  // process (/proc/<pid>/cmdline), a variable only by the job's own user. argocd wait gets it too: it gives
  // the git token only to the config repo's host (test above).
  const TOKEN = `glpat-tpl-${RAND}`;
  const HEAD = 'c'.repeat(40);
  /** the branch the recording write-back reports in its dotenv (GITOPS_CONFIG_BRANCH), as bump and review do */
  const WRITTEN = 'config-main';

  function jobScript(file: string, runs: string): string {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'templates', file), 'utf8')).map((d) => d.toJS() as Record<string, { script?: string[] }>);
    const job = Object.values(docs[1]!).find((j) => j?.script?.some((l) => l.includes(runs)));
    expect(job, `${file}: a job that runs ${runs}`).toBeDefined();
    return job!.script!.join('\n');
  }

  function run(script: string, env: Record<string, string>): Array<{ argv: string[]; repo: string }> {
    const dir = tmp('gci-tpl-');
    const log = join(dir, 'calls.log');
    writeFileSync(log, '');
    // records argv (NUL-separated) and GITOPS_CONFIG_REPO, and writes the dotenv the script reads back
    writeFileSync(
      join(dir, 'gitops-ci'),
      `#!/bin/sh\n{ printf '%s\\0' "$@"; printf '\\n%s\\n' "REPO=\${GITOPS_CONFIG_REPO-}"; } >> '${log}'\nwhile [ $# -gt 0 ]; do if [ "$1" = --dotenv ]; then printf 'GITOPS_CONFIG_HEAD=${HEAD}\\nGITOPS_CONFIG_BRANCH=${WRITTEN}\\nGITOPS_CHANGED=true\\n' > "$2"; fi; shift; done\n`,
    );
    chmodSync(join(dir, 'gitops-ci'), 0o755);
    execFileSync('sh', ['-c', script], { cwd: dir, env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = readFileSync(log, 'utf8').split('\n');
    const calls: Array<{ argv: string[]; repo: string }> = [];
    for (let i = 0; i + 1 < lines.length; i += 2) calls.push({ argv: lines[i]!.split('\0').filter(Boolean), repo: lines[i + 1]!.replace(/^REPO=/, '') });
    return calls;
  }

  const common = (repo: string) => ({
    GITOPS_INPUT_ENVIRONMENT: 'production',
    GITOPS_INPUT_OVERLAY: '',
    GITOPS_INPUT_APP: 'shop-production',
    GITOPS_INPUT_CONFIG_REPO: repo,
    GITOPS_INPUT_CONFIG_BRANCH: 'main',
    GITOPS_INPUT_TIMEOUT: '5m',
    GITOPS_INPUT_SKIP_CI: 'auto',
    GITOPS_INPUT_DEPLOY_FREEZE: 'respect',
    GITOPS_INPUT_TARGET_KIND: 'auto',
    CI_JOB_NAME: 'deploy-production',
    CI_COMMIT_BRANCH: 'main',
    CI_COMMIT_SHA: 'd'.repeat(40),
    // a project variable the inputs must win over
    GITOPS_CONFIG_REPO: 'https://gitlab.example.com/elsewhere/other.git',
  });
  const REPO = `https://oauth2:${TOKEN}@gitlab.example.com/group/config.git`;

  // notify: the job posts Argo CD a push event (input notify: true); it must name the config repo and the branch the
  // write-back reports, which the apps track, not this pipeline's project and branch (Argo CD refreshes only the apps
  // whose repoURL and targetRevision match the event: https://argo-cd.readthedocs.io/en/stable/operator-manual/webhook/)
  const cases: Array<{ name: string; file: string; runs: string; env: Record<string, string>; notify?: boolean }> = [
    {
      name: 'deploy (bump, argocd wait)',
      file: 'deploy.yml',
      runs: 'gitops-ci bump',
      env: { ...common(REPO), GITOPS_INPUT_BUILD_JOB: 'gitops-build', GITOPS_INPUT_IMAGE_NAME: 'registry.example.com/shop/app', GITOPS_INPUT_NOTIFY: 'notify=true', GITOPS_BUILD_IMAGE: `registry.example.com/shop/app@sha256:${'e'.repeat(64)}` },
      notify: true,
    },
    {
      name: 'review up (review up, argocd wait)',
      file: 'review.yml',
      runs: 'gitops-ci review up',
      env: { ...common(REPO), GITOPS_INPUT_BUILD_JOB: 'gitops-build', GITOPS_INPUT_IMAGE_NAME: 'registry.example.com/shop/app', GITOPS_INPUT_NOTIFY: 'notify=true', GITOPS_BUILD_IMAGE: `registry.example.com/shop/app@sha256:${'e'.repeat(64)}`, GITOPS_INPUT_REVIEW_ROOT: 'envs/review', GITOPS_INPUT_BASE: 'envs/staging', GITOPS_INPUT_APP_PREFIX: 'shop-', GITOPS_INPUT_PROJECT: 'default', CI_MERGE_REQUEST_IID: '7' },
      notify: true,
    },
    {
      name: 'promote (promote, argocd wait)',
      file: 'promote.yml',
      runs: 'gitops-ci promote',
      env: { ...common(REPO), GITOPS_INPUT_GATE: 'none', GITOPS_INPUT_APPROVALS: '1', GITOPS_INPUT_APPROVERS: '', GITOPS_INPUT_IMAGE_NAMES: '', GITOPS_INPUT_FROM_ENVIRONMENT: 'staging', GITOPS_INPUT_FROM_OVERLAY: '', GITOPS_INPUT_FROM_APP: 'shop-staging' },
    },
  ];
  for (const c of cases) {
    it(`${c.name}: no credential in any argv; the write-back${c.notify ? ', the push event to Argo CD' : ''} and the wait are given the input's URL`, () => {
      const calls = run(jobScript(c.file, c.runs), c.env);
      const write = calls.find((k) => k.argv.join(' ').startsWith(c.runs.split(' ').slice(1).join(' ')));
      const wait = calls.find((k) => k.argv[0] === 'argocd' && k.argv[1] === 'wait');
      expect(write, JSON.stringify(calls)).toBeDefined();
      expect(wait, JSON.stringify(calls)).toBeDefined();
      for (const k of calls) expectNoLeak(`the command line gitops-ci ${k.argv.slice(0, 2).join(' ')}`, k.argv.join(' '), TOKEN, ['oauth2']);
      expect(write!.repo).toBe(REPO);
      expect(wait!.repo).toBe(REPO);
      const notify = calls.find((k) => k.argv[0] === 'argocd' && k.argv[1] === 'notify');
      if (c.notify) {
        expect(notify, JSON.stringify(calls)).toBeDefined();
        expect(notify!.repo).toBe(REPO);
        expect(notify!.argv).toEqual(['argocd', 'notify', '--branch', WRITTEN, '--after', HEAD]);
      } else expect(notify).toBeUndefined();
    });
  }

  it('review down: the push event of the removal names the config repo and the branch written; no credential in any argv', () => {
    const env = { ...common(REPO), GITOPS_INPUT_NOTIFY: 'notify=true', GITOPS_INPUT_REVIEW_ROOT: 'envs/review', GITOPS_INPUT_APP_PREFIX: 'shop-', GITOPS_INPUT_PROJECT: 'default', CI_MERGE_REQUEST_IID: '7' };
    const calls = run(jobScript('review.yml', 'gitops-ci review down'), env);
    for (const k of calls) expectNoLeak(`the command line gitops-ci ${k.argv.slice(0, 2).join(' ')}`, k.argv.join(' '), TOKEN, ['oauth2']);
    expect(calls.find((k) => k.argv[0] === 'review' && k.argv[1] === 'down')?.repo).toBe(REPO);
    const notify = calls.find((k) => k.argv[0] === 'argocd' && k.argv[1] === 'notify');
    expect(notify?.repo, JSON.stringify(calls)).toBe(REPO);
    expect(notify!.argv).toEqual(['argocd', 'notify', '--branch', WRITTEN, '--after', HEAD]);
  });

  it('deploy with no config-repo input (the seed: this repository): no --repo and no GITOPS_CONFIG_REPO, so CI_REPOSITORY_URL applies', () => {
    const calls = run(jobScript('deploy.yml', 'gitops-ci bump'), { ...common(''), GITOPS_INPUT_CONFIG_BRANCH: '', GITOPS_INPUT_BUILD_JOB: 'gitops-build', GITOPS_INPUT_IMAGE_NAME: 'registry.example.com/shop/app', GITOPS_INPUT_NOTIFY: 'notify=false', GITOPS_BUILD_IMAGE: `registry.example.com/shop/app@sha256:${'e'.repeat(64)}` });
    const bump = calls.find((k) => k.argv[0] === 'bump')!;
    expect(bump.repo).toBe('');
    expect(bump.argv).not.toContain('--repo');
  });
});
