/**
 * A hostile audit of failure paths and bad input (the cases no other file covers): each failure is a catalogued
 * error with what / where / what to do and the exit code of its class, and leaves files, branches, images and
 * remote state as they were.
 *
 * - GITOPS_RETRY_ATTEMPTS out of range: the registry client gave up before its first request with a transient
 *   75 ("after -1 attempts"), which the templates retry; GitLab's client took it silently. Now a usage error (2)
 *   before any command acts (src/cli.ts), as are the other numeric tuning variables, which fell back to their
 *   defaults unseen (GITOPS_RENDER_MEMORY_MB=4096MB rendered with 2048).
 * - a file that is not UTF-8 (a Latin-1 comment): read with replacement characters, it was written back with
 *   them by pin, set-image and the write-back (bump), changing bytes that no edit touched. Now refused (2),
 *   naming the file, line and column of the first bad byte.
 * - rollback --to 0: passed the flag checks, then failed (1) after the clone and Argo CD reads as "goes further
 *   back". Now a usage error up front.
 * - image build --push with tags on two registries, the second refusing our credentials: the first tag was
 *   pushed, then exit 3. Now every repository written is checked for a push (an upload opened and cancelled)
 *   before the build.
 * - bump (review up, preview --image) took any expression set-image takes: a digest of the wrong length, an
 *   uppercase repository, a tag with a character no tag holds were committed and pushed, for Argo CD to
 *   deploy pods that cannot pull (InvalidImageName). Now refused (2) before the clone; set-image keeps
 *   kustomize's leniency (test/set-image/conformance.test.ts). pin --value and the image commands refuse a
 *   sha256/sha512 digest that is not lowercase hex of its length.
 * - bump --workdir naming a file or a directory with files: git's clone failed after the session opened, exit 1
 *   with the repo as `where`. Now a usage error (2) with the other flag problems.
 * - argocd notify --secret-file naming a directory: "EISDIR: illegal operation on a directory, read", naming
 *   neither the flag nor the file. Now "cannot read --secret-file DIR: EISDIR", as --ca-file's.
 * - --dotenv in a directory that does not exist or cannot be written, or naming a directory: found when the
 *   outputs were written, after bump had pushed, image copy had tagged, set-image had edited, and reported as a
 *   failure (1) of work that was done. Now checked before the command acts (EDOTENV_PATH, 2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeUnwritable } from '../helpers/unwritable.js';
import { git, seedBare } from '../helpers/config-repo.js';
import { startGitServer, startRegistry, tmp, type GitServer, type Registry } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';
import { configRepo, headOf, jobEnv, PROD } from '../bump/fixture.js';
import { docker as getDocker, makeBase, writeTree } from '../image/helpers.js';
import { IMAGE, dockerAuth, layout, manifestDigest, pushTinyImage, STAGING } from '../promote/fixture.js';

/** a Latin-1 comment: é is the single byte 0xE9, which is not UTF-8 */
const LATIN1 = Buffer.from('# propri\xe9taire: ne pas modifier\n', 'latin1');

let srv: GitServer;
let reg: Registry;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();

beforeAll(async () => {
  srv = await startGitServer();
  reg = await startRegistry();
  srv.createRepo('group/retry.git');
  gl = await startGitlabDouble({
    git: srv,
    projects: [{ path: 'group/retry', repo: 'group/retry.git', id: 901 }],
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }],
    onResponse: recorder.onResponse,
  });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await reg?.stop();
  await srv?.stop();
});

const expectRefusal = (r: { code: number; stderr: string }, code: string, exit: number, where: string | RegExp) => {
  expect(r.code, r.stderr).toBe(exit);
  expect(r.stderr).toContain(`code: ${code} (exit ${exit})`);
  expect(r.stderr).toMatch(typeof where === 'string' ? new RegExp(`where: ${where.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) : where);
  expect(r.stderr).toMatch(/what to do: \S/);
  expect(r.stderr).not.toMatch(/internal error|    at /);
};

describe('GITOPS_RETRY_ATTEMPTS that no client can use is a usage error, before any request', () => {
  it('image copy: -1, 0, a fraction, a word or too many attempts exit 2 and push nothing; 1 copies', async () => {
    await pushTinyImage(reg, 'audit/app', '1');
    const env = (v: string) => ({ CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: reg.password, GITOPS_RETRY_ATTEMPTS: v });
    const args = ['image', 'copy', `${reg.host}/audit/app:1`, `${reg.host}/audit/app:prod`];
    for (const v of ['-1', '0', '2.5', 'three', '1e1', '21']) {
      const r = await runCli(args, { env: env(v) });
      expectRefusal(r, 'EENV_NUMBER', 2, 'environment variable GITOPS_RETRY_ATTEMPTS');
      expect(r.stderr).toContain(`GITOPS_RETRY_ATTEMPTS must be a whole number from 1 to 20 (got ${JSON.stringify(v)})`);
      expect(r.stderr).not.toContain('EREGISTRY_NETWORK');
      expect(await manifestDigest(reg, 'audit/app', 'prod')).toBeUndefined();
    }
    const ok = await runCli(args, { env: env('1') });
    expect(ok.code, ok.all).toBe(0);
    expect(await manifestDigest(reg, 'audit/app', 'prod')).toBe(await manifestDigest(reg, 'audit/app', '1'));
  });

  it('promote --via mr: exit 2 before GitLab is asked or a branch is pushed', async () => {
    const head = seedBare(srv.repoPath('group/retry.git'), layout(), { message: 'initial config' });
    const asked = gl.requests.length;
    const pushesBefore = srv.requests.filter((q) => q.method === 'POST' && q.path.endsWith('git-receive-pack')).length;
    const r = await runCli(['promote', '--repo', `${srv.url}/group/retry.git`, '--branch', 'main', '--from', STAGING, '--to', PROD, '--via', 'mr'], {
      env: { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, GITOPS_RETRY_ATTEMPTS: '-1' },
    });
    expectRefusal(r, 'EENV_NUMBER', 2, 'environment variable GITOPS_RETRY_ATTEMPTS');
    expect(gl.requests.length).toBe(asked);
    expect(srv.requests.filter((q) => q.method === 'POST' && q.path.endsWith('git-receive-pack')).length).toBe(pushesBefore);
    expect(gl.hooks.branchSha('group/retry', 'gitops-ci/promote/production')).toBeUndefined();
    expect(gl.hooks.branchSha('group/retry', 'main')).toBe(head);
    expect(gl.hooks.mergeRequests('group/retry')).toHaveLength(0);
    for (const s of [gl.token, srv.password]) expect(r.stderr).not.toContain(s);
  });
  it('every numeric tuning variable is checked before any command acts: set-image --render exits 2 and writes nothing', async () => {
    const dir = tmp('gci-audit-');
    const before = Buffer.from('images:\n- name: app\n  newTag: "1"\n');
    writeFileSync(join(dir, 'kustomization.yaml'), before);
    // 4096MB fell back to the 2048 default unseen, and 0 concurrency to 32
    for (const [name, v] of [['GITOPS_RETRY_ATTEMPTS', '0'], ['GITOPS_RENDER_MEMORY_MB', '4096MB'], ['GITOPS_RENDER_MAX_MB', '-1'], ['GITOPS_SETIMAGE_CONCURRENCY', '0'], ['GITOPS_GITLAB_MAX_PAGES', 'all']] as const) {
      const r = await runCli(['set-image', '--render', 'app:2'], { cwd: dir, env: { [name]: v } });
      expectRefusal(r, 'EENV_NUMBER', 2, `environment variable ${name}`);
      expect(r.stderr).toContain(`${name} must be a whole number from`);
      expect(readFileSync(join(dir, 'kustomization.yaml')).equals(before)).toBe(true);
    }
  });
});

describe('a file that is not UTF-8 is refused, never written back with replacement characters', () => {
  it('pin: exit 2 naming file:line:col of the first bad byte; the file keeps every byte', async () => {
    const dir = tmp('gci-audit-');
    const bytes = Buffer.concat([LATIN1, Buffer.from('image:\n  repository: registry.example.com/app\n  tag: "1.0"\n')]);
    writeFileSync(join(dir, 'values.yaml'), bytes);
    const r = await runCli(['pin', '--kind', 'helm', '--file', 'values.yaml', '--target', 'image.tag', '--value', '2.0'], { cwd: dir });
    expectRefusal(r, 'EEDIT_YAML', 2, 'values.yaml:1:9');
    expect(r.stderr).toContain('values.yaml is not UTF-8 text (byte 0xE9 at line 1, column 9)');
    expect(readFileSync(join(dir, 'values.yaml')).equals(bytes)).toBe(true);
  });

  it('set-image over two overlays, one of them Latin-1: exit 2 and neither file is written', async () => {
    const dir = tmp('gci-audit-');
    const good = Buffer.from('images:\n- name: app\n  newTag: "1"\n');
    const bad = Buffer.concat([Buffer.from('images:\n- name: app\n  newTag: "1"\n'), LATIN1]);
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'a', 'kustomization.yaml'), good);
    writeFileSync(join(dir, 'b', 'kustomization.yaml'), bad);
    const r = await runCli(['set-image', '--dir', 'a', '--dir', 'b', 'app:2'], { cwd: dir });
    expectRefusal(r, 'EKUSTOMIZE_YAML', 2, 'b/kustomization.yaml:4:9');
    expect(readFileSync(join(dir, 'a', 'kustomization.yaml')).equals(good)).toBe(true);
    expect(readFileSync(join(dir, 'b', 'kustomization.yaml')).equals(bad)).toBe(true);
  });

  it('bump: exit 2 naming the overlay file; the config repo is not pushed to', async () => {
    const r = configRepo(srv);
    // the production kustomization gets a Latin-1 comment, committed as raw bytes
    const work = tmp('gci-audit-');
    git(work, ['clone', '-q', r.path, '.']);
    const file = join(work, PROD, 'kustomization.yaml');
    writeFileSync(file, Buffer.concat([LATIN1, readFileSync(file)]));
    git(work, ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-am', 'latin-1 comment']);
    git(work, ['push', '-q', 'origin', 'HEAD:main']);
    const head = headOf(r.path);
    const blob = execFileSync('git', ['-C', r.path, 'show', `main:${PROD}/kustomization.yaml`]);
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:1a2b3c4`], { env: jobEnv(srv) });
    expectRefusal(res, 'EEDIT_YAML', 2, `${PROD}/kustomization.yaml:1:9`);
    expect(headOf(r.path)).toBe(head);
    expect(execFileSync('git', ['-C', r.path, 'show', `main:${PROD}/kustomization.yaml`]).equals(blob)).toBe(true);
    expect(res.stderr).not.toContain(srv.password);
  });
});

describe('rollback --to 0 is a usage error, before the config repo is read', () => {
  it('0 and 000 exit 2 with EROLLBACK_CONFIG; nothing is cloned', async () => {
    for (const to of ['0', '000']) {
      const before = srv.requests.length;
      const r = await runCli(['rollback', '--repo', `${srv.url}/group/retry.git`, '--env', 'staging', '--to', to, '--allow-unverified'], { env: jobEnv(srv) });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`--to ${JSON.stringify(to)} is no step back: 1 is the verified state before the current one`);
      expect(r.stderr).toContain('code: EROLLBACK_CONFIG (exit 2)');
      expect(r.stderr).toMatch(/what to do: \S/);
      expect(srv.requests.length).toBe(before);
    }
  });
});

describe('--dotenv that cannot be written is a usage error before the command acts', () => {
  it('bump: a missing directory exits 2 and nothing is pushed', async () => {
    const r = configRepo(srv);
    const missing = join(tmp('gci-audit-'), 'no-such-dir', 'bump.env');
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:1a2b3c4`, '--dotenv', missing], { env: jobEnv(srv) });
    expectRefusal(res, 'EDOTENV_PATH', 2, missing);
    expect(res.stderr).toContain('does not exist; nothing was done');
    expect(headOf(r.path)).toBe(r.head);
  });

  it('image copy: a directory as --dotenv exits 2 and the tag is not pushed', async () => {
    await pushTinyImage(reg, 'audit/dot', '1');
    const dir = tmp('gci-audit-');
    const res = await runCli(['image', 'copy', `${reg.host}/audit/dot:1`, `${reg.host}/audit/dot:prod`, '--dotenv', dir], {
      env: { CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: reg.password },
    });
    expectRefusal(res, 'EDOTENV_PATH', 2, dir);
    expect(res.stderr).toContain('it is a directory');
    expect(await manifestDigest(reg, 'audit/dot', 'prod')).toBeUndefined();
  });

  it('set-image: an unwritable directory exits 2 and the overlay keeps its bytes', async (t) => {
    const dir = tmp('gci-audit-');
    const out = join(dir, 'out');
    mkdirSync(join(dir, 'o'));
    mkdirSync(out);
    const before = Buffer.from('images:\n- name: app\n  newTag: "1"\n');
    writeFileSync(join(dir, 'o', 'kustomization.yaml'), before);
    const undo = makeUnwritable(out);
    if (!undo) return t.skip('cannot make a directory unwritable here (root without mount)');
    try {
      const res = await runCli(['set-image', '--dir', 'o', '--dotenv', 'out/set.env', 'app:2'], { cwd: dir });
      expectRefusal(res, 'EDOTENV_PATH', 2, 'out/set.env');
      expect(res.stderr).toMatch(/cannot be written \((EACCES|EROFS)\)/);
      expect(readFileSync(join(dir, 'o', 'kustomization.yaml')).equals(before)).toBe(true);
    } finally {
      undo();
    }
  });
});

describe('image build --push to two registries', () => {
  it('the second refusing our credentials: exit 3 before the build, and the first tag is not pushed', async () => {
    const { docker: d, host } = await getDocker();
    const base = await makeBase(d);
    const other = await startRegistry({ user: 'other', password: 'other-pw-4f1c9e' });
    try {
      const dir = writeTree(tmp('gci-audit-'), { Dockerfile: `FROM ${base}\nRUN echo audit > /audit\n` });
      const env = { DOCKER_HOST: host, CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: reg.password };
      const args = ['image', 'build', '--push', '--tag', `${reg.host}/audit/two:1`, '--tag', `${other.host}/audit/two:1`];
      const r = await runCli(args, { env, cwd: dir });
      expectRefusal(r, 'EREGISTRY_AUTH', 3, new RegExp(`where: POST \\S*${other.host.replace(/\./g, '\\.')}/v2/audit/two/blobs/uploads/`));
      expect(r.stderr).not.toMatch(/docker build|docker push/);
      expect(await manifestDigest(reg, 'audit/two', '1')).toBeUndefined();
      for (const s of [reg.password, other.password]) expect(r.all).not.toContain(s);

      // with credentials for both, both tags are pushed (the check leaves nothing in the way)
      const ok = await runCli(args, { env: { ...env, DOCKER_AUTH_CONFIG: dockerAuth(other) }, cwd: dir });
      expect(ok.code, ok.all).toBe(0);
      const digest = await manifestDigest(reg, 'audit/two', '1');
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(await manifestDigest(other, 'audit/two', '1')).toBe(digest);
    } finally {
      await other.stop();
    }
  }, 300_000);
});

describe('bump refuses an expression whose reference no registry serves, before the clone', () => {
  it('a short or uppercase digest, an uppercase repository, a bad tag: exit 2, each named; nothing is fetched or pushed', async () => {
    const r = configRepo(srv);
    const upper = `${IMAGE}@sha256:${'AB12'.repeat(16)}`;
    for (const [expr, why] of [
      [`${IMAGE}@sha256:abc123`, 'bad digest "sha256:abc123"'],
      [upper, '(a sha256 digest is 64 lowercase hex characters)'],
      ['app=Registry.example.com/Team/App:1.0', 'bad path component "Team"'],
      [`${IMAGE}:-rc1`, 'bad tag "-rc1"'],
    ] as const) {
      const before = srv.requests.length;
      const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', expr], { env: jobEnv(srv) });
      expectRefusal(res, 'EKUSTOMIZE_BAD_IMAGE_EXPR', 2, 'command line');
      expect(res.stderr).toContain(`invalid image expression ${JSON.stringify(expr)}: it would pin`);
      expect(res.stderr).toContain(why);
      expect(srv.requests.length).toBe(before);
      expect(headOf(r.path)).toBe(r.head);
    }
    // the same digest, written right, goes through
    const ok = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}@sha256:${'ab12'.repeat(16)}`], { env: jobEnv(srv) });
    expect(ok.code, ok.all).toBe(0);
    expect(headOf(r.path)).not.toBe(r.head);
  });
});

describe('a digest of the wrong length or case is refused wherever one is given', () => {
  it('pin --value sha256:abc: exit 2 and the file keeps its bytes; image resolve with an uppercase digest: exit 2', async () => {
    const dir = tmp('gci-audit-');
    const bytes = Buffer.from(`image:\n  digest: "sha256:${'ab12'.repeat(16)}"\n`);
    writeFileSync(join(dir, 'values.yaml'), bytes);
    const r = await runCli(['pin', '--kind', 'helm', '--file', 'values.yaml', '--target', 'image.digest', '--value', 'sha256:abc'], { cwd: dir });
    expectRefusal(r, 'EEDIT_BAD_VALUE', 2, 'command line');
    expect(r.stderr).toContain('--value "sha256:abc" is not a digest a registry serves: a sha256 digest is 64 lowercase hex characters');
    expect(readFileSync(join(dir, 'values.yaml')).equals(bytes)).toBe(true);

    const upper = `${reg.host}/audit/app@sha256:${'AB12'.repeat(16)}`;
    const res = await runCli(['image', 'resolve', upper], { env: { CI_REGISTRY: reg.host, CI_REGISTRY_USER: reg.user, CI_REGISTRY_PASSWORD: reg.password } });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain('code: EREGISTRY_BAD_REF (exit 2)');
    expect(res.stderr).toContain('(a sha256 digest is 64 lowercase hex characters)');
  });
});

describe('bump --workdir that git cannot clone into', () => {
  it('a directory with files, or a file: exit 2 naming the flag; the directory keeps its files and nothing is fetched', async () => {
    const r = configRepo(srv);
    const dir = tmp('gci-audit-');
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const before = srv.requests.length;
    for (const [wd, why] of [
      [dir, `--workdir ${dir} is not empty: name a new or empty directory to clone into`],
      [join(dir, 'notes.txt'), `--workdir ${join(dir, 'notes.txt')} is a file: name a new or empty directory to clone into`],
    ] as const) {
      const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}:1a2b3c4`, '--workdir', wd], { env: jobEnv(srv) });
      expectRefusal(res, 'EBUMP_CONFIG', 2, 'command line');
      expect(res.stderr).toContain(why);
    }
    expect(srv.requests.length).toBe(before);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine\n');
    expect(headOf(r.path)).toBe(r.head);
  });
});

describe('argocd notify --secret-file that cannot be read', () => {
  it('a directory or a missing file: exit 2 naming the flag and the path', async () => {
    const dir = tmp('gci-audit-');
    for (const [f, code] of [[dir, 'EISDIR'], [join(dir, 'missing'), 'ENOENT']] as const) {
      const r = await runCli(['argocd', 'notify', '--secret-file', f, '--repo-url', 'https://gitlab.example.com/g/config', '--branch', 'main', '--after', 'a'.repeat(40), '--webhook-url', 'http://127.0.0.1:1/api/webhook']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`cannot read --secret-file ${f}: ${code}`);
      expect(r.stderr).toContain('code: EARGOCD_CONFIG (exit 2)');
      expect(r.stderr).toMatch(/what to do: \S/);
    }
  });
});
