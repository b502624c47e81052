/**
 * Nothing is read or written outside the clone (bump) or the git work tree (set-image) (High 1 of issue #10):
 * an overlay whose kustomization file, or a directory on its path, is a symlink out of it — absolute or
 * relative — is refused before it is read: exit 2, EKUSTOMIZE_OUTSIDE, the outside file neither printed
 * (--dry-run) nor changed, and nothing pushed. Against the real smart-HTTP git server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { git, writeTree } from '../helpers/config-repo.js';
import { startGitServer, tmp, type GitServer } from '../helpers/services.js';

const MARK = `outside-content-${Math.random().toString(36).slice(2, 10)}`;
const VICTIM = `# ${MARK}
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
- name: app
  newTag: "1"
`;
const OVERLAY = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
- name: app
  newTag: "1"
`;

let srv: GitServer;
beforeAll(async () => {
  srv = await startGitServer({ user: 'bot', password: `pw-${MARK}` });
});
afterAll(() => srv?.stop());

/** the victim outside: a file and a directory holding a kustomization */
function victims(): { dir: string; file: string; kdir: string } {
  const dir = tmp('gci-victim-');
  const file = join(dir, 'kustomization.yaml');
  writeFileSync(file, VICTIM);
  const kdir = join(dir, 'overlay');
  mkdirSync(kdir);
  writeFileSync(join(kdir, 'kustomization.yaml'), VICTIM);
  return { dir, file, kdir };
}

/** a repo on the server with envs/ok and a symlinked envs/<name> (committed as a symlink) */
function repoWithLink(name: string, link: { path: string; target: string }, extra: Record<string, string> = {}): { url: string; path: string; head: string } {
  const repo = `group/outside-${name}-${Math.random().toString(36).slice(2, 8)}.git`;
  const url = srv.createRepo(repo);
  const work = tmp('gci-cfg-');
  git(work, ['init', '-q', '-b', 'main']);
  writeTree(work, { 'envs/ok/kustomization.yaml': OVERLAY, ...extra });
  mkdirSync(join(work, link.path, '..'), { recursive: true });
  symlinkSync(link.target, join(work, link.path));
  git(work, ['add', '-A']);
  git(work, ['commit', '-q', '-m', 'config']);
  git(work, ['push', '-q', srv.authUrl(repo), 'HEAD:refs/heads/main']);
  const head = git(work, ['rev-parse', 'HEAD']);
  rmSync(work, { recursive: true, force: true });
  return { url, path: srv.repoPath(repo), head };
}

const env = () => ({ GITOPS_GIT_USER: 'bot', GITOPS_GIT_TOKEN: srv.password });

describe('bump: symlinks out of the clone', () => {
  const cases: Array<{ name: string; link: (v: ReturnType<typeof victims>, work: string) => { path: string; target: string }; dir: string; victim: (v: ReturnType<typeof victims>, work: string) => string }> = [
    { name: 'an absolute symlinked kustomization file', link: (v) => ({ path: 'envs/abs/kustomization.yaml', target: v.file }), dir: 'envs/abs', victim: (v) => v.file },
    // --workdir W/clone: from W/clone/envs/rel, ../../../victim.yaml is W/victim.yaml
    { name: 'a relative symlinked kustomization file', link: () => ({ path: 'envs/rel/kustomization.yaml', target: '../../../victim.yaml' }), dir: 'envs/rel', victim: (_v, work) => join(work, 'victim.yaml') },
    { name: 'an absolute symlinked overlay directory', link: (v) => ({ path: 'envs/dirabs', target: v.kdir }), dir: 'envs/dirabs', victim: (v) => join(v.kdir, 'kustomization.yaml') },
    { name: 'a relative symlinked directory on the path', link: () => ({ path: 'envs/up', target: '../..' }), dir: 'envs/up/victimdir', victim: (_v, work) => join(work, 'victimdir', 'kustomization.yaml') },
  ];
  for (const c of cases) {
    for (const dryRun of [true, false]) {
      it(`${c.name}${dryRun ? ' (--dry-run)' : ''}: refused before it is read; the outside file is not printed, not changed; nothing pushed`, async () => {
        const v = victims();
        const work = tmp('gci-work-');
        writeFileSync(join(work, 'victim.yaml'), VICTIM);
        mkdirSync(join(work, 'victimdir'));
        writeFileSync(join(work, 'victimdir', 'kustomization.yaml'), VICTIM);
        const r = repoWithLink(c.dir.replace(/\W/g, ''), c.link(v, work));
        const victim = c.victim(v, work);
        const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', c.dir, '--image', 'app:2', '--workdir', join(work, 'clone'), ...(dryRun ? ['--dry-run'] : [])], { env: env() });
        expect(res.code, res.all).toBe(2);
        // a symlinked directory is no tree in git: refused as not an overlay before the checkout is read
        expect(res.stderr).toMatch(c.dir.startsWith('envs/dir') || c.dir.startsWith('envs/up') ? /EKUSTOMIZE_OUTSIDE|EBUMP_OVERLAY_NOT_FOUND/ : /EKUSTOMIZE_OUTSIDE/);
        expect(res.all).not.toContain(MARK);
        expect(readFileSync(victim, 'utf8')).toBe(VICTIM);
        expect(git(srv.repoPath(r.path.slice(srv.root.length + 1)), ['rev-parse', 'main'])).toBe(r.head);
      });
    }
  }

  it('a symlink that stays inside the clone is followed as before', async () => {
    const r = repoWithLink('inside', { path: 'envs/alias/kustomization.yaml', target: 'real.yaml' }, { 'envs/alias/real.yaml': OVERLAY });
    const res = await runCli(['bump', '--repo', r.url, '--branch', 'main', '--dir', 'envs/alias', '--image', 'app:2', '--dry-run'], { env: env() });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain('newTag: "2"');
  });
});

describe('set-image: symlinks out of the work tree', () => {
  function checkout(): { root: string; victim: ReturnType<typeof victims> } {
    const root = tmp('gci-wt-');
    git(root, ['init', '-q', '-b', 'main']);
    writeTree(root, { 'envs/ok/kustomization.yaml': OVERLAY });
    return { root, victim: victims() };
  }
  // a relative link climbs past / (where `..` stays at /) and then names the victim, wherever TMPDIR is
  const cases: Array<{ name: string; make: (root: string, v: ReturnType<typeof victims>) => string }> = [
    { name: 'an absolute symlinked kustomization file', make: (root, v) => (mkdirSync(join(root, 'envs/abs')), symlinkSync(v.file, join(root, 'envs/abs/kustomization.yaml')), 'envs/abs') },
    { name: 'a relative symlinked kustomization file', make: (root, v) => (mkdirSync(join(root, 'envs/rel')), symlinkSync(`${'../'.repeat(40)}${v.file.slice(1)}`, join(root, 'envs/rel/kustomization.yaml')), 'envs/rel') },
    { name: 'a symlinked overlay directory', make: (root, v) => (symlinkSync(v.kdir, join(root, 'envs/dir')), 'envs/dir') },
  ];
  for (const c of cases) {
    for (const dryRun of [true, false]) {
      it(`${c.name}${dryRun ? ' (--dry-run)' : ''}: refused, not printed, not changed`, async () => {
        const { root, victim } = checkout();
        const dir = c.make(root, victim);
        const res = await runCli(['set-image', '--dir', dir, ...(dryRun ? ['--dry-run'] : []), 'app:2'], { cwd: root });
        expect(res.code, res.all).toBe(2);
        expect(res.stderr).toContain('EKUSTOMIZE_OUTSIDE');
        expect(res.all).not.toContain(MARK);
        expect(readFileSync(victim.file, 'utf8')).toBe(VICTIM);
        expect(readFileSync(join(victim.kdir, 'kustomization.yaml'), 'utf8')).toBe(VICTIM);
      });
    }
  }

  it('an overlay outside the work tree given by its own path (no symlink) is still edited', async () => {
    const v = victims();
    const { root } = checkout();
    const res = await runCli(['set-image', '--dir', v.kdir, 'app:2'], { cwd: root });
    expect(res.code, res.all).toBe(0);
    expect(readFileSync(join(v.kdir, 'kustomization.yaml'), 'utf8')).toContain('newTag: "2"');
  });
});
