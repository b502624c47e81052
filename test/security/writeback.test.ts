/**
 * One write-back path, one guarantee (issue #17): bump, promote --via push and promote --via mr all read and
 * write the config repo through the shared checkout (src/writeback/checkout.ts), so the checks of
 * test/security/outside.test.ts hold for each of them. Every command below is run through the same cases: a
 * target (or source) kustomization that is a symlink out of the clone — absolute, relative, or a symlinked
 * overlay directory — is refused before it is read (exit 2), the outside file is neither printed nor changed,
 * nothing is pushed (no commit on main, no promotion branch, no merge request), and the clone's temp dir is
 * gone afterwards (TMPDIR is a fresh dir per run, empty at the end). review up|down (whole directories through
 * bump's loop) go through the same cases. bump and promote --via api (no clone: the
 * files come through GitLab's repository API) go through the same cases. Before the shared checkout, promote
 * --via mr read, rendered and rewrote such a file.
 *
 * Against the real smart-HTTP git server and kustomize; GitLab is the double, its responses checked against
 * test/contracts/gitlab-api.json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { deploymentYaml, git, seedBare } from '../helpers/config-repo.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';
import { startGitlabDouble, type GitlabDouble } from '../doubles/gitlab/server.js';
import { gitlabContractRecorder } from '../gitlab/contract.js';

const MARK = `outside-content-${Math.random().toString(36).slice(2, 10)}`;
const DIGEST = `sha256:${'cd34'.repeat(16)}`;
const OLD = `sha256:${'0f0f'.repeat(16)}`;
const DEPLOY = deploymentYaml('registry.example.com/team/app');
const overlay = (digest: string, marker = '') => `${marker}apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deploy.yaml
images:
- name: registry.example.com/team/app
  digest: ${digest}
`;
const VICTIM = overlay(OLD, `# ${MARK}\n`);

// one repository per case: the symlink matrix above and the inside-the-clone test below (about 65 in all)
const PROJECTS = 96;
let srv: GitServer;
let gl: GitlabDouble;
const recorder = gitlabContractRecorder();
let seq = 0;

beforeAll(async () => {
  srv = await startGitServer();
  for (let i = 1; i <= PROJECTS; i++) srv.createRepo(`group/wb${i}.git`);
  gl = await startGitlabDouble({
    git: srv,
    projects: Array.from({ length: PROJECTS }, (_, i) => ({ path: `group/wb${i + 1}`, repo: `group/wb${i + 1}.git`, id: 500 + i + 1 })),
    users: [{ username: 'gitops-bot', name: 'GitOps Bot', bot: true }],
    onResponse: recorder.onResponse,
  });
});
afterAll(async () => {
  expect(recorder.violations).toEqual([]);
  await gl?.stop();
  await srv?.stop();
});

/** the victim outside every clone: a kustomization file, and a directory holding one */
function victims(): { file: string; dir: string } {
  const d = tmp('gci-victim-');
  const file = join(d, 'kustomization.yaml');
  writeFileSync(file, VICTIM);
  const dir = join(d, 'overlay');
  mkdirSync(dir);
  writeFileSync(join(dir, 'kustomization.yaml'), VICTIM);
  writeFileSync(join(dir, 'deploy.yaml'), DEPLOY);
  return { file, dir };
}

type Link = 'absolute file' | 'relative file' | 'directory';

/**
 * A project with envs/staging (pins DIGEST) and envs/production (pins OLD), where `linked` (one of them) is a
 * symlink out of the repo of the given kind. A relative link climbs past / (where `..` stays at /) and then
 * names the victim, so it leads out wherever the clone is.
 */
function project(linked: 'envs/staging' | 'envs/production', link: Link, v: ReturnType<typeof victims>) {
  const n = ++seq;
  const path = `group/wb${n}`;
  const tree: Record<string, string> = {
    'envs/staging/kustomization.yaml': overlay(DIGEST),
    'envs/staging/deploy.yaml': DEPLOY,
    'envs/production/kustomization.yaml': overlay(OLD),
    'envs/production/deploy.yaml': DEPLOY,
  };
  if (link === 'directory') {
    for (const k of Object.keys(tree)) if (k.startsWith(`${linked}/`)) delete tree[k];
  } else delete tree[`${linked}/kustomization.yaml`];
  // the commit goes straight into the server's repo (seedBare: one process, no clone and push per case)
  const symlinks =
    link === 'directory'
      ? { [linked]: v.dir }
      : { [`${linked}/kustomization.yaml`]: link === 'absolute file' ? v.file : `${'../'.repeat(40)}${v.file.slice(1)}` };
  const head = seedBare(srv.repoPath(`${path}.git`), tree, { symlinks });
  const tmpdir = tmp('gci-tmpdir-');
  const env = { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, TMPDIR: tmpdir, CI_PIPELINE_ID: '77' };
  return { path, url: `${srv.url}/${path}.git`, head, env, bare: srv.repoPath(`${path}.git`), tmpdir };
}

interface Command {
  name: string;
  args: (url: string) => string[];
  /** the symlinked overlay is the command's target (production) or its source (staging) */
  linked: 'envs/staging' | 'envs/production';
  /** runs only with --dry-run (preview posts to a merge request otherwise) */
  dryOnly?: boolean;
  /** runs only without --dry-run: review's refusal is its verify step, before anything is planned, dry run or not
   * (the inside-the-clone case below runs it with --dry-run) */
  wetOnly?: boolean;
  /** what its --dry-run prints of the followed file (default: the new digest; review down shows what it removes) */
  shows?: string;
}

const COMMANDS: Command[] = [
  { name: 'bump', linked: 'envs/production', args: (url) => ['bump', '--repo', url, '--branch', 'main', '--dir', 'envs/production', '--image', `registry.example.com/team/app@${DIGEST}`] },
  // the write-back without a clone (src/writeback/api.ts): the files read through GitLab's API land in a temp dir as
  // they are in git (a symlink stays a symlink), and the same LocalTree refuses them
  { name: 'bump --via api', linked: 'envs/production', args: (url) => ['bump', '--via', 'api', '--repo', url, '--branch', 'main', '--dir', 'envs/production', '--image', `registry.example.com/team/app@${DIGEST}`] },
  { name: 'promote --via api (target)', linked: 'envs/production', args: (url) => ['promote', '--repo', url, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production', '--via', 'api'] },
  { name: 'promote --via push (target)', linked: 'envs/production', args: (url) => ['promote', '--repo', url, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production', '--via', 'push'] },
  { name: 'promote --via mr (target)', linked: 'envs/production', args: (url) => ['promote', '--repo', url, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production', '--via', 'mr'] },
  { name: 'promote --via push (source)', linked: 'envs/staging', args: (url) => ['promote', '--repo', url, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production', '--via', 'push'] },
  { name: 'promote --via mr (source)', linked: 'envs/staging', args: (url) => ['promote', '--repo', url, '--branch', 'main', '--from', 'envs/staging', '--to', 'envs/production', '--via', 'mr'] },
  { name: 'preview --image (target)', linked: 'envs/production', dryOnly: true, args: (url) => ['preview', '--repo', url, '--branch', 'main', '--dir', 'envs/production', '--image', `registry.example.com/team/app@${DIGEST}`] },
  // review apps write and remove whole directories through bump's loop (BumpConfig.directory); with the review root
  // `envs` and the environment review/production, the review overlay is envs/production itself
  { name: 'review up (target)', linked: 'envs/production', wetOnly: true, args: (url) => ['review', 'up', '--repo', url, '--branch', 'main', '--review-root', 'envs', '--env', 'review/production', '--base', 'envs/staging', '--image', `registry.example.com/team/app@${DIGEST}`] },
  { name: 'review up (base)', linked: 'envs/staging', wetOnly: true, args: (url) => ['review', 'up', '--repo', url, '--branch', 'main', '--review-root', 'envs', '--env', 'review/production', '--base', 'envs/staging', '--image', `registry.example.com/team/app@${DIGEST}`] },
  { name: 'review down (target)', linked: 'envs/production', wetOnly: true, args: (url) => ['review', 'down', '--repo', url, '--branch', 'main', '--review-root', 'envs', '--env', 'review/production'], shows: OLD },
  { name: 'preview --from (source)', linked: 'envs/staging', dryOnly: true, args: (url) => ['preview', '--repo', url, '--branch', 'main', '--from', 'envs/staging', '--dir', 'envs/production'] },
];

describe('every write-back command: a symlink out of the clone', () => {
  for (const c of COMMANDS) {
    for (const link of ['absolute file', 'relative file', 'directory'] as Link[]) {
      for (const dryRun of c.dryOnly ? [true] : c.wetOnly ? [false] : [true, false]) {
        it(`${c.name}, ${link}${dryRun ? ' (--dry-run)' : ''}: refused before it is read; not printed, not changed; nothing pushed; no temp dir left`, async () => {
          const v = victims();
          const p = project(c.linked, link, v);
          const res = await runCli([...c.args(p.url), ...(dryRun ? ['--dry-run'] : [])], { env: p.env });
          expect(res.code, res.all).toBe(2);
          // a symlinked directory is no tree in git: refused as not an overlay before anything under it is read
          expect(res.stderr).toMatch(link === 'directory' ? /EKUSTOMIZE_OUTSIDE|EBUMP_OVERLAY_NOT_FOUND|EPROMOTE_SOURCE_NOT_FOUND|EPREVIEW_OVERLAY_NOT_FOUND/ : /EKUSTOMIZE_OUTSIDE/);
          expect(res.all).not.toContain(MARK);
          expect(readFileSync(v.file, 'utf8')).toBe(VICTIM);
          expect(readFileSync(join(v.dir, 'kustomization.yaml'), 'utf8')).toBe(VICTIM);
          expect(git(p.bare, ['rev-parse', 'main'])).toBe(p.head);
          expect(git(p.bare, ['for-each-ref', '--format=%(refname)'])).toBe('refs/heads/main');
          expect(gl.hooks.mergeRequests(p.path)).toEqual([]);
          expect(readdirSync(p.tmpdir)).toEqual([]);
        });
      }
    }
  }

  // one test per command (they ran in one loop under one 60 s timeout, which a loaded 2-core run exceeded)
  for (const c of COMMANDS) {
    it(`a symlink that stays inside the clone is followed by ${c.name}, as before`, async () => {
      const n = ++seq;
      const path = `group/wb${n}`;
      const other = c.linked === 'envs/staging' ? 'envs/production' : 'envs/staging';
      seedBare(
        srv.repoPath(`${path}.git`),
        { 'envs/staging/real.yaml': overlay(DIGEST), 'envs/staging/deploy.yaml': DEPLOY, 'envs/production/real.yaml': overlay(OLD), 'envs/production/deploy.yaml': DEPLOY },
        { symlinks: { [`${c.linked}/kustomization.yaml`]: 'real.yaml', [`${other}/kustomization.yaml`]: 'real.yaml' } },
      );
      // the GitLab connection is what the --via api commands read through (the others clone: another port than the API)
      const env = { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, CI_API_V4_URL: gl.apiUrl, GITOPS_GITLAB_TOKEN: gl.token, TMPDIR: tmp('gci-tmpdir-') };
      const res = await runCli([...c.args(`${srv.url}/${path}.git`), '--dry-run'], { env });
      expect(res.code, `${c.name}\n${res.all}`).toBe(0);
      expect(res.stdout, c.name).toContain(c.shows ?? DIGEST);
      expect(readdirSync(env.TMPDIR), c.name).toEqual([]);
    });
  }
});
