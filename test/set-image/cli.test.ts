/**
 * `gitops-ci set-image` end to end, through the built bundle (dist/gitops-ci.cjs), on real files: several
 * overlays, no-op runs, --dry-run, --render with kubectl kustomize, --dotenv, and bad input, which must exit
 * non-zero with the file named and leave every file byte-identical.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeUnwritable } from '../helpers/unwritable.js';
import { runCli } from '../helpers/cli.js';
import { deploymentYaml } from '../helpers/config-repo.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const DEPLOYMENT = deploymentYaml('registry.example.com/team/app:0.0.1');

const STAGING = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base   # shared base

images:
# the application
- name: registry.example.com/team/app
  newTag: "1.0"   # bumped by CI
`;

const PROD = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: registry.example.com/team/app
    newTag: "1.1"
`;

const DEV = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base
`;

/** a config repo: .kubernetes/{base, overlays/{staging,prod,dev}} */
function repo(): { root: string; dir: (o: string) => string; file: (o: string) => string; snapshot: () => Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), 'gci-setimage-'));
  roots.push(root);
  const k = join(root, '.kubernetes');
  mkdirSync(join(k, 'base'), { recursive: true });
  writeFileSync(join(k, 'base', 'kustomization.yaml'), 'resources:\n- deployment.yaml\n');
  writeFileSync(join(k, 'base', 'deployment.yaml'), DEPLOYMENT);
  for (const [o, text] of [['staging', STAGING], ['prod', PROD], ['dev', DEV]] as const) {
    mkdirSync(join(k, 'overlays', o), { recursive: true });
    writeFileSync(join(k, 'overlays', o, 'kustomization.yaml'), text);
  }
  const dir = (o: string) => `.kubernetes/overlays/${o}`;
  const file = (o: string) => join(root, dir(o), 'kustomization.yaml');
  const snapshot = () => Object.fromEntries(['staging', 'prod', 'dev'].map((o) => [o, readFileSync(file(o), 'utf8')]));
  return { root, dir, file, snapshot };
}

function mtimes(files: string[]): number[] {
  return files.map((f) => statSync(f).mtimeMs);
}

describe('gitops-ci set-image', () => {
  let r: ReturnType<typeof repo>;
  beforeEach(() => {
    r = repo();
  });

  it('edits several overlays in one call, says what changed, keeps the file mode, and writes dotenv', async () => {
    chmodSync(r.file('staging'), 0o640);
    const env = join(r.root, 'out.env');
    const res = await runCli(['set-image', '--dir', r.dir('staging'), '--dir', r.dir('prod'), '--dir', r.dir('dev'), '--dotenv', env, 'registry.example.com/team/app:1.1'], { cwd: r.root });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('.kubernetes/overlays/staging: registry.example.com/team/app 1.0 → 1.1');
    expect(res.stderr).toContain('.kubernetes/overlays/dev: registry.example.com/team/app (not set) → 1.1');
    expect(res.stderr).toMatch(/\.kubernetes\/overlays\/prod: unchanged/);
    expect(res.stderr).toMatch(/set-image: 2 overlays changed, 1 unchanged/);
    expect(res.stdout).toBe('');
    expect(res.stderr).not.toContain('warning');
    expect(readFileSync(r.file('staging'), 'utf8')).toBe(STAGING.replace('newTag: "1.0"   # bumped by CI', 'newTag: "1.1"   # bumped by CI'));
    expect(readFileSync(r.file('dev'), 'utf8')).toBe(`${DEV}images:\n- name: registry.example.com/team/app\n  newTag: "1.1"\n`);
    expect(readFileSync(r.file('prod'), 'utf8')).toBe(PROD);
    expect(statSync(r.file('staging')).mode & 0o777).toBe(0o640);
    expect(readFileSync(env, 'utf8')).toContain('GITOPS_CHANGED=true\n');
    expect(readFileSync(env, 'utf8')).toContain('GITOPS_CHANGED_OVERLAYS=.kubernetes/overlays/staging .kubernetes/overlays/dev');
  });

  it('writes nothing when the image is already set: mtime unchanged, exit 0, and says so', async () => {
    const before = r.snapshot();
    const files = ['staging', 'prod'].map(r.file);
    const t0 = mtimes(files);
    await new Promise((res) => setTimeout(res, 20));
    const env = join(r.root, 'out.env');
    const res = await runCli(['set-image', '--dir', r.dir('prod'), '--dotenv', env, 'registry.example.com/team/app:1.1'], { cwd: r.root });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/prod: unchanged \(registry\.example\.com\/team\/app 1\.1 already set\)/);
    expect(res.stderr).toMatch(/nothing to do: 1 overlay already set/);
    expect(mtimes(files)).toEqual(t0);
    expect(r.snapshot()).toEqual(before);
    expect(readFileSync(env, 'utf8')).toContain('GITOPS_CHANGED=false\n');
  });

  it('--dry-run prints a unified diff on stdout and writes nothing', async () => {
    const before = r.snapshot();
    const res = await runCli(['set-image', '--dry-run', '--dir', r.dir('staging'), 'registry.example.com/team/app=registry.example.com/team/app2:2.0'], { cwd: r.root });
    expect(res.code, res.all).toBe(0);
    expect(res.stdout).toBe(
      [
        '--- a/.kubernetes/overlays/staging/kustomization.yaml',
        '+++ b/.kubernetes/overlays/staging/kustomization.yaml',
        '@@ -6,4 +6,5 @@',
        ' images:',
        ' # the application',
        ' - name: registry.example.com/team/app',
        '-  newTag: "1.0"   # bumped by CI',
        '+  newTag: "2.0"   # bumped by CI',
        '+  newName: registry.example.com/team/app2',
        '',
      ].join('\n'),
    );
    expect(res.stderr).toMatch(/dry run: 1 overlay would change, 0 unchanged; nothing written/);
    expect(r.snapshot()).toEqual(before);
  });

  it('defaults --dir to the current directory', async () => {
    const res = await runCli(['set-image', 'registry.example.com/team/app:9'], { cwd: join(r.root, r.dir('prod')) });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toContain('.: registry.example.com/team/app 1.1 → 9');
    expect(readFileSync(r.file('prod'), 'utf8')).toContain('    newTag: "9"\n');
  });

  it('warns without --render when no file of the overlay uses the image', async () => {
    const res = await runCli(['set-image', '--dir', r.dir('staging'), 'other/image:1'], { cwd: r.root });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/warning: \.kubernetes\/overlays\/staging: no resource of the overlay \(its files and local bases\) uses other\/image/);
    // the image the base uses: no warning
    const ok = await runCli(['set-image', '--dir', r.dir('staging'), 'registry.example.com/team/app:3'], { cwd: r.root });
    expect(ok.code, ok.all).toBe(0);
    expect(ok.stderr).not.toContain('warning');
  });

  it('--render builds the overlay and checks the new image is used', async () => {
    const res = await runCli(['set-image', '--render', '--dir', r.dir('staging'), '--dir', r.dir('dev'), 'registry.example.com/team/app:1.2@sha256:' + 'a'.repeat(64)], { cwd: r.root });
    expect(res.code, res.all).toBe(0);
    expect(res.stderr).toMatch(/2 overlays changed, 0 unchanged, rendered and checked/);
    const out = execFileSync('kubectl', ['kustomize', join(r.root, r.dir('dev'))], { encoding: 'utf8' });
    expect(out).toContain(`image: registry.example.com/team/app:1.2@sha256:${'a'.repeat(64)}`);
  });

  it('--render restores every file when no rendered resource uses the image', async () => {
    const before = r.snapshot();
    const res = await runCli(['set-image', '--render', '--dir', r.dir('staging'), '--dir', r.dir('dev'), 'registry.example.com/team/ap:1.2'], { cwd: r.root });
    expect(res.code, res.all).toBe(2);
    expect(res.stderr).toContain('EKUSTOMIZE_IMAGE_UNUSED');
    expect(res.stderr).toContain('images in the rendered output:');
    expect(res.stderr).toContain('registry.example.com/team/app:1.0');
    expect(r.snapshot()).toEqual(before);
  });

  it('--render restores every file when kustomize cannot build the overlay', async () => {
    rmSync(join(r.root, '.kubernetes/base/deployment.yaml'));
    const before = r.snapshot();
    const res = await runCli(['set-image', '--render', '--dir', r.dir('staging'), '--dir', r.dir('prod'), 'registry.example.com/team/app:1.2'], { cwd: r.root });
    expect(res.code, res.all).toBe(1);
    expect(res.stderr).toContain('EKUSTOMIZE_RENDER');
    expect(res.stderr).toMatch(/deployment\.yaml/);
    expect(r.snapshot()).toEqual(before);
  });

  it('writes through a symlinked kustomization file and keeps the link', async () => {
    const shared = join(r.root, 'common.yaml');
    writeFileSync(shared, PROD);
    rmSync(r.file('dev'));
    symlinkSync('../../../common.yaml', r.file('dev'));
    const res = await runCli(['set-image', '--dir', r.dir('dev'), 'registry.example.com/team/app:5'], { cwd: r.root });
    expect(res.code, res.all).toBe(0);
    expect(lstatSync(r.file('dev')).isSymbolicLink()).toBe(true);
    expect(readFileSync(shared, 'utf8')).toBe(PROD.replace('"1.1"', '"5"'));
  });

  it('refuses --render with --dry-run', async () => {
    const res = await runCli(['set-image', '--render', '--dry-run', 'a:1'], { cwd: r.root });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('EKUSTOMIZE_FLAGS');
  });

  it('prints help', async () => {
    const res = await runCli(['set-image', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('Usage: gitops-ci set-image [--dir DIR]...');
  });
});

describe('gitops-ci set-image: bad input leaves every file as it was', () => {
  let r: ReturnType<typeof repo>;
  beforeEach(() => {
    r = repo();
  });

  async function expectFailure(args: string[], code: number, errCode: string, pattern?: RegExp) {
    const before = r.snapshot();
    const res = await runCli(['set-image', ...args], { cwd: r.root });
    expect(res.code, res.all).toBe(code);
    expect(res.stderr).toContain(`code: ${errCode} (exit ${code})`);
    if (pattern) expect(res.stderr).toMatch(pattern);
    expect(r.snapshot()).toEqual(before);
    return res;
  }

  it('a missing directory', async () => {
    await expectFailure(['--dir', r.dir('staging'), '--dir', '.kubernetes/overlays/nope', 'app:1'], 2, 'EKUSTOMIZE_NOT_FOUND', /overlay directory \.kubernetes\/overlays\/nope does not exist/);
  });

  it('every problem at once, in --dir order', async () => {
    writeFileSync(r.file('dev'), 'images: {}\n');
    const res = await expectFailure(['--dir', 'nope1', '--dir', r.dir('staging'), '--dir', r.dir('dev'), '--dir', 'nope2', 'app:1'], 2, 'EKUSTOMIZE_NOT_FOUND', /overlay directory nope1 does not exist \(and 2 more problems; nothing was written\)/);
    expect(res.stderr).toMatch(/other problems:\n.*kustomization\.yaml:1:9: `images` in .* is not a list \[EKUSTOMIZE_IMAGES_NOT_LIST\]\n.*nope2: overlay directory nope2 does not exist/);
  });

  it('a directory without a kustomization file', async () => {
    await expectFailure(['--dir', r.dir('staging'), '--dir', '.kubernetes', 'app:1'], 2, 'EKUSTOMIZE_NOT_FOUND', /no kustomization file in \.kubernetes/);
  });

  it('two kustomization files in one directory', async () => {
    writeFileSync(join(r.root, r.dir('dev'), 'kustomization.yml'), DEV);
    await expectFailure(['--dir', r.dir('dev'), 'app:1'], 2, 'EKUSTOMIZE_MULTIPLE_FILES', /kustomization\.yaml, kustomization\.yml/);
  });

  it('malformed YAML, with line and column', async () => {
    writeFileSync(r.file('dev'), 'resources:\n- ../../base\nimages:\n  - name: app\n   newTag: [1\n');
    const res = await expectFailure(['--dir', r.dir('staging'), '--dir', r.dir('dev'), 'app:1'], 2, 'EKUSTOMIZE_YAML');
    expect(res.stderr).toMatch(/where: \.kubernetes\/overlays\/dev\/kustomization\.yaml:\d+:\d+/);
    expect(res.stderr).toMatch(/invalid YAML in \.kubernetes\/overlays\/dev\/kustomization\.yaml/);
  });

  it('images that is not a list', async () => {
    writeFileSync(r.file('dev'), 'resources:\n- ../../base\nimages:\n  name: app\n  newTag: v1\n');
    await expectFailure(['--dir', r.dir('staging'), '--dir', r.dir('dev'), 'app:1'], 2, 'EKUSTOMIZE_IMAGES_NOT_LIST', /where: \.kubernetes\/overlays\/dev\/kustomization\.yaml:4:3/);
  });

  it('an images entry that is not a mapping', async () => {
    writeFileSync(r.file('dev'), 'images:\n- app:1\n');
    await expectFailure(['--dir', r.dir('dev'), 'app:1'], 2, 'EKUSTOMIZE_BAD_IMAGE_ENTRY', /kustomization\.yaml:2:3/);
  });

  it('an invalid image expression', async () => {
    const res = await expectFailure(['--dir', r.dir('staging'), 'registry.example.com/team/app:1.2', 'bad'], 2, 'EKUSTOMIZE_BAD_IMAGE_EXPR', /invalid image expression "bad"/);
    expect(res.stderr).toContain('<image>=<newimage>:<newtag>@<digest>');
  });

  it('no image expression', async () => {
    await expectFailure(['--dir', r.dir('staging')], 2, 'EKUSTOMIZE_NO_IMAGE', /no image specified/);
  });

  it('an unknown flag', async () => {
    const res = await runCli(['set-image', '--nope', 'a:1'], { cwd: r.root });
    expect(res.code).toBe(2);
  });

  it('a file that cannot be written: exit 1, and no file is replaced', async (ctx) => {
    // prod is read-only (test/helpers/unwritable.ts: a read-only bind mount as root): its temp file cannot be
    // created, so no rename starts (every temp file is written before the first rename: src/core/fsutil.ts
    // writeFilesAtomic)
    const prodDir = join(r.root, r.dir('prod'));
    const undo = makeUnwritable(prodDir);
    if (!undo) return ctx.skip('root without the right to mount: no directory here that root cannot write to');
    try {
      const before = r.snapshot();
      // one worker, so that the writes happen in --dir order and staging/dev are written before prod fails
      const res = await runCli(['set-image', '--dir', r.dir('staging'), '--dir', r.dir('dev'), '--dir', r.dir('prod'), 'registry.example.com/team/app:7.0'], {
        cwd: r.root,
        env: { GITOPS_SETIMAGE_CONCURRENCY: '1' },
      });
      expect(res.code, res.all).toBe(1);
      expect(res.stderr).toContain('code: EKUSTOMIZE_WRITE (exit 1)');
      expect(res.stderr).toMatch(/cannot write \.kubernetes\/overlays\/prod\/kustomization\.yaml/);
      expect(res.stderr).toMatch(/no file was replaced; all files are as before/);
      expect(r.snapshot()).toEqual(before);
      expect(readdirSync(join(r.root, r.dir('staging')))).toEqual(['kustomization.yaml']);
    } finally {
      undo();
    }
  });

  const canChattr = (() => {
    if (process.getuid?.() !== 0) return false;
    const d = mkdtempSync(join(tmpdir(), 'gci-chattr-probe-'));
    try {
      writeFileSync(join(d, 'f'), 'x');
      execFileSync('chattr', ['+i', join(d, 'f')], { stdio: 'ignore' });
      execFileSync('chattr', ['-i', join(d, 'f')], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  })();

  it.skipIf(!canChattr)('a file that cannot be replaced: exit 1, the overlays already replaced are restored, no temp file left', async () => {
    // prod's kustomization is immutable: its temp file is written, the rename over it fails (EPERM) while staging
    // and dev are renamed; they get their old bytes back
    const before = r.snapshot();
    execFileSync('chattr', ['+i', r.file('prod')]);
    try {
      const res = await runCli(['set-image', '--dir', r.dir('staging'), '--dir', r.dir('dev'), '--dir', r.dir('prod'), 'registry.example.com/team/app:7.0'], { cwd: r.root });
      expect(res.code, res.all).toBe(1);
      expect(res.stderr).toContain('code: EKUSTOMIZE_WRITE (exit 1)');
      expect(res.stderr).toMatch(/cannot write \.kubernetes\/overlays\/prod\/kustomization\.yaml/);
      expect(res.stderr).toMatch(/2 file\(s\) already written were restored; all files are as before/);
      expect(r.snapshot()).toEqual(before);
      for (const o of ['staging', 'dev', 'prod']) expect(readdirSync(join(r.root, r.dir(o))), o).toEqual(['kustomization.yaml']);
    } finally {
      execFileSync('chattr', ['-i', r.file('prod')]);
    }
  });
});
