/**
 * The shipped CLI is two files of one build (scripts/build.mjs): dist/gitops-ci.cjs (argv, help, src/core) and
 * dist/gitops-ci.chunks (every command's code), read from beside the bundle's real path when a command loads
 * (scripts/chunk-runtime.cjs). These tests run copies of the pair laid out as the runner image and npm lay them
 * out (a link in a bin directory), without the chunks, with another build's chunks, and while a build rewrites
 * the pair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/cli.js';
import { commands } from '../../src/commands/index.js';
import { tmp as mkTmp } from '../helpers/services.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const DIST = join(root, 'dist');
const CHUNKS = join(DIST, 'gitops-ci.chunks');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

const made: string[] = [];
/** a temp dir, removed after the file */
function tmp(prefix: string): string {
  const d = mkTmp(prefix);
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd = root, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [file, ...args], { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** a copy of the pair (or of the bundle alone) in lib/, and bin/gitops-ci linking to it, as the runner image has it */
function install(opts: { chunks?: boolean } = {}): { lib: string; bin: string } {
  const dir = tmp('gci-bundle-');
  const lib = join(dir, 'lib');
  mkdirSync(lib);
  mkdirSync(join(dir, 'bin'));
  copyFileSync(CLI, join(lib, 'gitops-ci.cjs'));
  if (opts.chunks !== false) copyFileSync(CHUNKS, join(lib, 'gitops-ci.chunks'));
  symlinkSync(join(lib, 'gitops-ci.cjs'), join(dir, 'bin/gitops-ci'));
  return { lib, bin: join(dir, 'bin/gitops-ci') };
}

describe('the two files of the bundle', () => {
  it('the build writes the bundle and its chunks side by side, and nothing else; the bundle carries no command code', () => {
    expect(readdirSync(DIST).sort()).toEqual(['gitops-ci.chunks', 'gitops-ci.cjs']);
    // the chunks' first line is the build's id, which the bundle holds too
    const header = readFileSync(CHUNKS, 'latin1').split('\n', 1)[0]!;
    expect(header).toMatch(new RegExp(`^gitops-ci-chunks ${version.replace(/\./g, '\\.')} [0-9a-f]{24}$`));
    const bundle = readFileSync(CLI, 'utf8');
    expect(bundle).toContain(JSON.stringify(`${header}\n`));
    // the commands' code (dockerode, yaml, gitbeaker) is in the chunks, not in what --version reads
    expect(statSync(CLI).size).toBeLessThan(200_000);
    expect(statSync(CHUNKS).size).toBeGreaterThan(1_000_000);
    expect(bundle).not.toContain('docker-modem');
    expect(readFileSync(CHUNKS, 'latin1')).toContain('docker-modem');
  });

  it('runs a command through a link in another directory: the chunks are read beside the real bundle', async () => {
    const { bin } = install();
    const r = await run(bin, ['set-image', '--help'], tmp('gci-cwd-'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: gitops-ci set-image');
  });

  it('loads every command with no node_modules anywhere above it, as in the runner image', async () => {
    const { bin } = install();
    expect(existsSync(join(bin, '../../node_modules'))).toBe(false);
    for (const c of commands.filter((e) => !e.unavailable)) {
      const r = await run(bin, [...c.name.split(' '), '--help']);
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`Usage: gitops-ci ${c.name}`);
    }
    // dockerode is loaded (and with it docker-modem's `require('ssh2')`, which is not bundled: scripts/build.mjs)
    const ctx = tmp('gci-ctx-');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\n');
    const r = await run(bin, ['image', 'build', '--context', ctx, '--file', join(ctx, 'Dockerfile'), '--tag', 'gci-test/none:1'], ctx, { DOCKER_HOST: `unix://${join(ctx, 'no-engine.sock')}` });
    expect(r.stderr).not.toMatch(/Cannot find module|internal error/);
    expect(r.stderr).toContain('EIMAGE_ENGINE');
  });

  it('without its chunks file: --version and --help still work; a command exits 1 with what is missing, where, and what to do', async () => {
    const { lib, bin } = install({ chunks: false });
    // a chunks file beside the link is not the one: the bundle looks beside its real path
    copyFileSync(CHUNKS, join(bin, '../gitops-ci.chunks'));
    expect((await run(bin, ['--version'])).stdout.trim()).toBe(version);
    expect((await run(bin, ['--help'])).code).toBe(0);
    for (const args of [['set-image', '--help'], ['bump', '--dir', 'x', '--image', 'a=b:1']]) {
      const r = await run(bin, args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('EBUNDLE_CHUNKS_MISSING');
      expect(r.stderr).toContain('the file is missing');
      expect(r.stderr).toContain(`where: ${join(lib, 'gitops-ci.chunks')} (beside ${join(lib, 'gitops-ci.cjs')})`);
      expect(r.stderr).toMatch(/what to do: gitops-ci\.cjs and gitops-ci\.chunks are one build: copy or install both, side by side/);
      expect(r.stderr).not.toMatch(/fatal|internal error|\n\s+at /);
    }
  });

  it("refuses another build's chunks, or a file cut short, before running any of it (exit 1)", async () => {
    const { lib, bin } = install();
    const text = readFileSync(join(lib, 'gitops-ci.chunks'), 'latin1');
    const header = text.split('\n', 1)[0]!;
    const other = header.replace(/[0-9a-f]{24}$/, '0'.repeat(24));
    // the same code under another build's header: the id decides, not the content
    writeFileSync(join(lib, 'gitops-ci.chunks'), other + text.slice(header.length), 'latin1');
    const dir = tmp('gci-overlay-');
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources: []\n');
    let r = await run(bin, ['set-image', '--dir', dir, 'app=registry.example.com/app:2']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('EBUNDLE_CHUNKS_MISMATCH');
    expect(r.stderr).toContain(`it starts "${other}", the bundle wants "${header}"`);
    expect(r.stderr).toContain(`where: ${join(lib, 'gitops-ci.chunks')}`);
    expect(r.stderr).toContain('If a build was writing them just then, run the command again');
    expect(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')).toBe('resources: []\n');

    // cut short: refused as the command starts, before any of its code runs (a command loads the code it imports
    // as it first uses it, so the whole file is checked up front)
    writeFileSync(join(lib, 'gitops-ci.chunks'), text.slice(0, text.length - 10), 'latin1');
    r = await run(bin, ['set-image', '--dir', dir, 'app=registry.example.com/app:2']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('EBUNDLE_CHUNKS_MISMATCH');
    expect(r.stderr).toContain(`it holds ${text.length - 10} bytes, the build wrote ${text.length} (cut short or changed since)`);
    expect(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')).toBe('resources: []\n');

    writeFileSync(join(lib, 'gitops-ci.chunks'), 'not a chunks file\n');
    r = await run(bin, ['set-image', '--help']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('it does not start with "gitops-ci-chunks "');
  });

  describe('while a build rewrites the pair', () => {
    // two source trees that differ in their version, built in turn into one directory
    let work: string;
    beforeAll(() => {
      work = tmp('gci-rebuild-');
      for (const v of ['a', 'b']) {
        const r = join(work, v);
        mkdirSync(r);
        cpSync(join(root, 'scripts'), join(r, 'scripts'), { recursive: true });
        cpSync(join(root, 'src'), join(r, 'src'), { recursive: true });
        symlinkSync(join(root, 'node_modules'), join(r, 'node_modules'));
        const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
        writeFileSync(join(r, 'package.json'), JSON.stringify({ ...pkg, version: `9.9.9-${v}` }));
      }
    });

    it('a CLI started meanwhile runs one build, or says the pair is mid-replace; never a half-written file', async () => {
      const out = join(work, 'out');
      mkdirSync(out);
      const build = (v: string) => run(join(work, v, 'scripts/build.mjs'), [join(out, 'gitops-ci.cjs')]);
      expect((await build('a')).code).toBe(0);
      const runs: Run[] = [];
      let building = true;
      const starter = (async () => {
        while (building) runs.push(await run(join(out, 'gitops-ci.cjs'), ['set-image', '--help']), await run(join(out, 'gitops-ci.cjs'), ['--version']));
      })();
      for (const v of ['b', 'a', 'b']) {
        const b = await build(v);
        expect(b.code, b.stderr).toBe(0);
      }
      building = false;
      await starter;
      expect(runs.length).toBeGreaterThan(4);
      for (const r of runs) {
        if (r.code === 0) expect(r.stdout).toMatch(/^9\.9\.9-[ab]\n$|^Usage: gitops-ci set-image /);
        else expect({ code: r.code, mismatch: /EBUNDLE_CHUNKS_MISMATCH/.test(r.stderr) }, r.stderr).toEqual({ code: 1, mismatch: true });
      }
      expect(readdirSync(out).sort()).toEqual(['gitops-ci.chunks', 'gitops-ci.cjs']);
      const last = await run(join(out, 'gitops-ci.cjs'), ['set-image', '--help']);
      expect(last.code, last.stderr).toBe(0);
      expect((await run(join(out, 'gitops-ci.cjs'), ['--version'])).stdout).toBe('9.9.9-b\n');
      expect(existsSync(join(out, 'gitops-ci.chunks'))).toBe(true);
    }, 180_000);
  });
});
