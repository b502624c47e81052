import { describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';
import { commands } from '../../src/commands/index.js';
import { main } from '../../src/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('gitops-ci CLI', () => {
  it('prints its version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('--help lists every command, and marks the ones not built yet', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of commands) {
      expect(r.stdout).toContain(c.name);
      if (c.unavailable) expect(r.stdout).toContain(`not yet available: ${c.unavailable}`);
    }
    expect(r.stdout).toMatch(/Exit codes: 0 done/);
  });

  it('no arguments prints help and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('Usage: gitops-ci <command>');
  });

  it.each(commands.filter((c) => !c.unavailable).map((c) => c.name))('`%s --help` describes the command and its flags', async (name) => {
    const r = await runCli([...name.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: gitops-ci ${name}`);
    expect(r.stdout).toContain('Flags:');
    expect(r.stdout).toMatch(/--help/);
  });

  it('an unknown command is a usage error (exit 2)', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it('a group without its subcommand names the subcommands', async () => {
    const r = await runCli(['image']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/image: a subcommand is needed; one of: build, resolve, index, copy/);
  });

  it('an unknown flag is a usage error (exit 2) that points at --help', async () => {
    const r = await runCli(['set-image', '--no-such-flag', 'a=b:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--no-such-flag'");
    expect(r.stderr).toContain('gitops-ci set-image --help');
  });

  it('a planned command exits 2 with a clear message', async () => {
    const entry = { name: 'planned-thing', summary: 'test entry', unavailable: 'issue #99' };
    commands.push(entry);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const code = await main(['planned-thing', '--x'], {});
      expect(code).toBe(2);
      const text = err.mock.calls.map((c) => String(c[0])).join('');
      expect(text).toContain('`gitops-ci planned-thing` is not yet available');
      expect(text).toContain('issue #99');
      expect(await main(['planned-thing', '--help'], {})).toBe(0);
      expect(out.mock.calls.map((c) => String(c[0])).join('')).toContain('Not yet available (issue #99)');
    } finally {
      err.mockRestore();
      out.mockRestore();
      commands.splice(commands.indexOf(entry), 1);
    }
  });
});

describe('library debug output', () => {
  it('drops DEBUG, whose output would bypass masking, and says so', async () => {
    const r = await runCli(['--version'], { env: { DEBUG: 'modem,*' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('DEBUG is set and ignored');
  });
});
