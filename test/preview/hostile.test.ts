/**
 * The preview of a hostile merge request (issue #18, Deliver 4): through the CLI bundle with the real kubectl
 * kustomize and real git, config-repo mode (--dry-run: the note body on stdout).
 * - the MR's .gitattributes cannot make the note differ from the checkout Argo CD deploys (export-subst);
 * - a changed file with a non-ASCII name is matched (`git diff -z`), its overlay previewed;
 * - remote resources are refused before kustomize runs (a local HTTP server sees no request);
 * - a path that leaves the checkout (`../` past the root, an absolute path, a symlink) is refused, nothing of
 *   it reaches the note;
 * - a YAML alias bomb ends with a clear memory-limit error, no Go stack dump; --timeout covers rendering;
 * - SIGTERM during kustomize: exit 143, no kubectl left, no temp dir left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, runCli } from '../helpers/cli.js';
import { git, localCheckout, seedLayout, writeTree, type Tree } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { IMAGE, PROD } from '../promote/fixture.js';

const checkout = (tree: Tree) => localCheckout(tree, 'gci-hostile-');

const preview = (c: { dir: string }, base: string, head: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  runCli(['preview', '--dry-run', '--repo-dir', c.dir, '--base', base, '--head', head, ...extra], { env });

const KUST = seedLayout(IMAGE)[`${PROD}/kustomization.yaml`]!;

/** a ConfigMap whose anchors expand 9^12 times */
function aliasBomb(): string {
  const lines = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: bomb', 'data:', `  a0: &a0 [${Array(9).fill('"lol"').join(',')}]`];
  for (let i = 1; i < 12; i++) lines.push(`  a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(',')}]`);
  return `${lines.join('\n')}\n`;
}
const BOMB_OVERLAY: Tree = {
  [`${PROD}/bomb.yaml`]: aliasBomb(),
  [`${PROD}/kustomization.yaml`]: KUST.replace('resources:\n  - ../../base', 'resources:\n  - ../../base\n  - bomb.yaml'),
};

let http: Server;
let hits = 0;
let port = 0;
beforeAll(async () => {
  http = createServer((_q, r) => {
    hits++;
    r.end('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-the-network\ndata:\n  injected: fetched-by-kustomize\n');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  port = (http.address() as AddressInfo).port;
});
afterAll(() => http?.close());

describe('preview renders what Argo CD checks out', () => {
  it('export-subst in the MR .gitattributes does not change what the note shows (git archive would)', async () => {
    const c = checkout(seedLayout(IMAGE));
    // the checkout holds newTag "6-evil"; `git archive` would expand the placeholder into a digest line, and
    // kustomize would render image@sha256:1111… instead: the note would show what Argo CD does not deploy
    const evil = KUST.replace(/newTag: .*\n/, `newTag: "6-evil"\n    #$Format:%n    digest: sha256:${'1'.repeat(64)}$\n`);
    const head = c.commit({ '.gitattributes': '*.yaml export-subst\n', [`${PROD}/kustomization.yaml`]: evil });
    // the attack is real: the archive of the head differs from its checkout
    const archived = spawn('git', ['archive', head, `${PROD}/kustomization.yaml`], { cwd: c.dir });
    let tar = '';
    archived.stdout.on('data', (d) => (tar += d));
    await new Promise((r) => archived.on('close', r));
    expect(tar).toContain(`digest: sha256:${'1'.repeat(64)}`);

    const res = await preview(c, c.first, head);
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toContain(`+          image: ${IMAGE}:6-evil`);
    expect(res.stdout).not.toContain('1111111111');
  });

  it('a changed file with a non-ASCII name touches its overlay (-z, no C-quoting)', async () => {
    const withPatch = { ...seedLayout(IMAGE), [`${PROD}/kustomization.yaml`]: KUST.replace('  - path: deployment_patch.yaml', '  - path: deployment_patch.yaml\n  - path: größe.yaml'), [`${PROD}/größe.yaml`]: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shovel\nspec:\n  minReadySeconds: 5\n' };
    const c = checkout(withPatch);
    const head = c.commit({ [`${PROD}/größe.yaml`]: 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shovel\nspec:\n  minReadySeconds: 50\n' });
    const res = await preview(c, c.first, head);
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain(`overlays touched: ${PROD}`);
    expect(res.stdout).toContain('+  minReadySeconds: 50');
  });
});

describe('no network and no path outside the repository for MR content', () => {
  for (const [what, ref] of [
    ['an http(s) resource', () => `http://127.0.0.1:${port}/cm.yaml`],
    ['a git base', () => `https://127.0.0.1:${port}/org/repo.git//base?ref=v1`],
    ['a hosted-git shorthand', () => 'github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0'],
  ] as const) {
    it(`${what} is refused before kustomize runs (ERENDER_REMOTE); nothing is fetched`, async () => {
      const c = checkout(seedLayout(IMAGE));
      const before = hits;
      const head = c.commit({ [`${PROD}/kustomization.yaml`]: KUST.replace('resources:\n  - ../../base', `resources:\n  - ../../base\n  - ${ref()}`) });
      const res = await preview(c, c.first, head);
      expect(res.code, res.all).toBe(1);
      expect(res.stderr).toContain('EPREVIEW_RENDER');
      expect(res.stdout).toContain('could not be rendered');
      expect(res.stdout).toMatch(/remote resources, bases and components are not fetched/);
      expect(res.all).not.toContain('fetched-by-kustomize');
      expect(hits).toBe(before);
    });
  }

  it('a remote Helm chart is refused', async () => {
    const c = checkout(seedLayout(IMAGE));
    const head = c.commit({ [`${PROD}/kustomization.yaml`]: `${KUST}helmCharts:\n  - name: x\n    repo: http://127.0.0.1:${port}/charts\n    version: 1.0.0\n` });
    const res = await preview(c, c.first, head);
    expect(res.code, res.all).toBe(1);
    expect(res.stdout).toContain('pulls a Helm chart from');
  });

  it('a `../` base past the repository root, an absolute path and a symlink out of it are refused; nothing of them reaches the note', async () => {
    // another checkout on the same runner
    const other = tmp('gci-other-checkout-');
    writeTree(other, { 'kustomization.yaml': 'resources:\n  - cm.yaml\n', 'cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata:\n  token: other-projects-secret-value\n' });
    const up = '../'.repeat(12) + other.replace(/^\//, '');
    for (const [what, tree, link] of [
      ['dot-dot', { [`${PROD}/kustomization.yaml`]: KUST.replace('resources:\n  - ../../base', `resources:\n  - ../../base\n  - ${up}`) }, undefined],
      ['absolute', { [`${PROD}/kustomization.yaml`]: KUST.replace('resources:\n  - ../../base', `resources:\n  - ../../base\n  - ${other}`) }, undefined],
      ['symlink', { [`${PROD}/kustomization.yaml`]: KUST.replace('resources:\n  - ../../base', 'resources:\n  - ../../base\n  - elsewhere') }, (d: string) => symlinkSync(other, join(d, PROD, 'elsewhere'))],
    ] as const) {
      const c = checkout(seedLayout(IMAGE));
      const head = c.commit(tree as Tree, link);
      const res = await preview(c, c.first, head);
      expect(res.code, `${what}: ${res.all}`).toBe(1);
      expect(res.stdout, what).toContain('outside the checkout');
      expect(res.all, what).not.toContain('other-projects-secret-value');
    }
  });
});

describe('bounded in memory and time; a cancel leaves nothing', () => {
  it('a YAML alias bomb ends with a clear memory-limit error, not an out-of-memory of the runner', async () => {
    const c = checkout(seedLayout(IMAGE));
    const head = c.commit(BOMB_OVERLAY);
    const res = await preview(c, c.first, head, [], { GITOPS_RENDER_MEMORY_MB: '1024' });
    expect(res.code, res.all).toBe(1);
    expect(res.stdout).toContain('went over its memory limit of 1024 MiB');
    expect(res.all).not.toContain('goroutine');
    expect(res.all).not.toContain('runtime.throw');
  });

  it('--timeout covers rendering: exit 4, ERENDER_TIMEOUT', async () => {
    const c = checkout(seedLayout(IMAGE));
    const head = c.commit(BOMB_OVERLAY);
    const res = await preview(c, c.first, head, ['--timeout', '1'], { GITOPS_RENDER_MEMORY_MB: '1024' });
    expect(res.code, res.all).toBe(4);
    expect(res.stderr).toContain('ERENDER_TIMEOUT');
    expect(res.stderr).toMatch(/kubectl kustomize|kustomize build/);
  });

  it('SIGTERM while kustomize runs: exit 143, no kubectl left, no temp dir left', async () => {
    const c = checkout(seedLayout(IMAGE));
    const head = c.commit(BOMB_OVERLAY);
    const tmpdir = tmp('gci-preview-cancel-');
    const p = spawn(process.execPath, [CLI, 'preview', '--dry-run', '--repo-dir', c.dir, '--base', c.first, '--head', head], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmpdir, GITOPS_RENDER_MEMORY_MB: '1024' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
    /** our children (they inherit TMPDIR) running kustomize */
    const renderers = () =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/environ`, 'latin1').includes(`TMPDIR=${tmpdir}`) && /kustomize/.test(readFileSync(`/proc/${d}/cmdline`, 'latin1'));
          } catch {
            return false;
          }
        });
    const ours = () =>
      readdirSync('/proc').filter((d) => {
        try {
          return /^\d+$/.test(d) && readFileSync(`/proc/${d}/environ`, 'latin1').includes(`TMPDIR=${tmpdir}`);
        } catch {
          return false;
        }
      });
    try {
      const t0 = Date.now();
      while (!renderers().length) {
        if (Date.now() - t0 > 60_000) throw new Error(`kustomize never started:\n${stderr}`);
        await sleep(20);
      }
      expect(readdirSync(tmpdir).some((n) => n.startsWith('gitops-ci-preview-'))).toBe(true);
      p.kill('SIGTERM');
      expect(await exited, stderr).toBe(143);
      expect(stderr).toContain('cancelled by SIGTERM');
      expect(readdirSync(tmpdir)).toEqual([]);
      const t1 = Date.now();
      while (ours().length && Date.now() - t1 < 5000) await sleep(50);
      expect(ours()).toEqual([]);
    } finally {
      p.kill('SIGKILL');
    }
  });
});

describe('app mode', () => {
  it('a symlinked kustomization.yaml pointing out of the clone is never written through (--dry-run included)', async () => {
    const outside = join(tmp('gci-outside-'), 'kustomization.yaml');
    const original = KUST;
    writeFileSync(outside, original);
    const work = tmp('gci-app-src-');
    git(work, ['init', '-q', '-b', 'main']);
    writeTree(work, seedLayout(IMAGE));
    const { rmSync } = await import('node:fs');
    rmSync(join(work, PROD, 'kustomization.yaml'));
    symlinkSync(outside, join(work, PROD, 'kustomization.yaml'));
    git(work, ['add', '-A']);
    git(work, ['commit', '-q', '-m', 'symlinked overlay']);
    const bare = join(tmp('gci-app-bare-'), 'config.git');
    mkdirSync(bare);
    git(bare, ['init', '-q', '--bare', '-b', 'main']);
    git(work, ['push', '-q', bare, 'HEAD:refs/heads/main']);
    const res = await runCli(['preview', '--dry-run', '--repo', bare, '--branch', 'main', '--dir', PROD, '--image', `${IMAGE}@sha256:${'9a'.repeat(32)}`]);
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EKUSTOMIZE_OUTSIDE');
    expect(readFileSync(outside, 'utf8')).toBe(original);
  });
});
