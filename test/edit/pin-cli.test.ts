/**
 * `gitops-ci pin` end to end through the built bundle, on real files: a pin writes one value and nothing else,
 * a second run writes nothing, --dry-run and --dotenv, and every refusal exits 2 naming file:line with the file
 * byte-identical (and its mtime unchanged).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const VALUES = `# per environment
image:
  repository: registry.example.com/team/app
  tag: "1.4.2" # set by CI
  digest: ""
shared: &s
  tag: v1
other: *s
worker:
  image:
    repository: registry.example.com/team/worker
    tag: "{{ .Chart.AppVersion }}"
`;
const DEPLOY = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/team/app:1.4.2
      - name: app
        image: registry.example.com/team/other:1
`;

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gci-pin-'));
  roots.push(d);
  writeFileSync(join(d, 'values.yaml'), VALUES);
  writeFileSync(join(d, 'deploy.yaml'), DEPLOY);
  return d;
}

describe('gitops-ci pin', () => {
  it('pins one value, keeps every other byte, and does nothing the second time', async () => {
    const d = dir();
    const env = join(d, 'out.env');
    const r = await runCli(['pin', '--kind', 'helm', '--file', 'values.yaml', '--target', 'image.tag', '--value', '1.4.3', '--dotenv', env], { cwd: d });
    expect(r.code, r.all).toBe(0);
    expect(readFileSync(join(d, 'values.yaml'), 'utf8')).toBe(VALUES.replace('"1.4.2" # set by CI', '"1.4.3" # set by CI'));
    expect(r.stderr).toMatch(/pin: values\.yaml: image\.tag \(line 4\) 1\.4\.2 → 1\.4\.3/);
    expect(readFileSync(env, 'utf8')).toContain('GITOPS_CHANGED=true');
    const t0 = statSync(join(d, 'values.yaml')).mtimeMs;
    await new Promise((res) => setTimeout(res, 20));
    const again = await runCli(['pin', '--kind', 'helm', '--file', 'values.yaml', '--target', 'image.tag', '--value', '1.4.3', '--dotenv', env], { cwd: d });
    expect(again.code, again.all).toBe(0);
    expect(again.stderr).toMatch(/nothing to do: values\.yaml already pins 1\.4\.3 at image\.tag/);
    expect(statSync(join(d, 'values.yaml')).mtimeMs).toBe(t0);
    expect(readFileSync(env, 'utf8')).toContain('GITOPS_CHANGED=false');
  });

  it('pins a digest in a manifest scoped by Kind/name, and --dry-run prints the diff and writes nothing', async () => {
    const d = dir();
    const D = `sha256:${'b'.repeat(64)}`;
    const dry = await runCli(['pin', '--kind', 'manifest', '--file', 'deploy.yaml', '--target', 'Deployment/web:image=registry.example.com/team/app', '--value', D, '--dry-run'], { cwd: d });
    expect(dry.code, dry.all).toBe(0);
    expect(dry.stdout).toContain(`-        image: registry.example.com/team/app:1.4.2\n+        image: registry.example.com/team/app:1.4.2@${D}\n`);
    expect(readFileSync(join(d, 'deploy.yaml'), 'utf8')).toBe(DEPLOY);
    const r = await runCli(['pin', '--kind', 'manifest', '--file', 'deploy.yaml', '--target', 'Deployment/web:image=registry.example.com/team/app', '--value', D], { cwd: d });
    expect(r.code, r.all).toBe(0);
    expect(readFileSync(join(d, 'deploy.yaml'), 'utf8')).toBe(DEPLOY.replace('app:1.4.2', `app:1.4.2@${D}`));
  });

  const refusals: Array<[string, string[], string, RegExp]> = [
    ['an ambiguous container name', ['--kind', 'manifest', '--file', 'deploy.yaml', '--target', 'container=app', '--value', '2'], 'EEDIT_AMBIGUOUS', /deploy\.yaml:12:\d+/],
    ['a key that does not exist (never invented)', ['--kind', 'helm', '--file', 'values.yaml', '--target', 'image.registry', '--value', '2'], 'EEDIT_TARGET_NOT_FOUND', /values\.yaml:3:\d+/],
    ['a value shared through an anchor', ['--kind', 'helm', '--file', 'values.yaml', '--target', 'shared.tag', '--value', 'v2'], 'EEDIT_ANCHOR', /values\.yaml:7:\d+/],
    ['a template expression', ['--kind', 'helm', '--file', 'values.yaml', '--target', 'worker.image.tag', '--value', 'v2'], 'EEDIT_TEMPLATE', /values\.yaml:12:\d+/],
    ['a digest in a tag field', ['--kind', 'helm', '--file', 'values.yaml', '--target', 'image.tag', '--value', `sha256:${'c'.repeat(64)}`], 'EEDIT_DIGEST_PINNED', /values\.yaml:4:\d+/],
    ['a value that is neither tag nor digest', ['--kind', 'helm', '--file', 'values.yaml', '--target', 'image.tag', '--value', 'a b'], 'EEDIT_BAD_VALUE', /command line/],
    ['an unknown kind', ['--kind', 'kustomization', '--file', 'values.yaml', '--target', 'image.tag', '--value', '1'], 'EEDIT_KIND', /command line/],
    ['a bad manifest target', ['--kind', 'manifest', '--file', 'deploy.yaml', '--target', 'app', '--value', '1'], 'EEDIT_BAD_TARGET', /command line/],
    ['a missing flag', ['--kind', 'helm', '--file', 'values.yaml', '--value', '1'], 'EEDIT_FLAGS', /command line/],
    ['a file that does not exist', ['--kind', 'helm', '--file', 'nope.yaml', '--target', 'image.tag', '--value', '1'], 'EEDIT_NO_FILE', /nope\.yaml/],
  ];
  for (const [what, args, code, where] of refusals) {
    it(`refuses ${what}: exit 2, ${code}, where, and the files as they were`, async () => {
      const d = dir();
      const t0 = statSync(join(d, 'values.yaml')).mtimeMs;
      const r = await runCli(['pin', ...args], { cwd: d });
      expect(r.code, r.all).toBe(2);
      expect(r.stderr).toContain(code);
      expect(r.stderr).toMatch(where);
      expect(readFileSync(join(d, 'values.yaml'), 'utf8')).toBe(VALUES);
      expect(readFileSync(join(d, 'deploy.yaml'), 'utf8')).toBe(DEPLOY);
      expect(statSync(join(d, 'values.yaml')).mtimeMs).toBe(t0);
    });
  }

  it('refuses a file that leads outside the work tree through a symlink, and leaves the target alone', async () => {
    const d = dir();
    const outside = mkdtempSync(join(tmpdir(), 'gci-pin-out-'));
    roots.push(outside);
    writeFileSync(join(outside, 'values.yaml'), VALUES);
    mkdirSync(join(d, 'env'));
    symlinkSync(join(outside, 'values.yaml'), join(d, 'env', 'values.yaml'));
    const r = await runCli(['pin', '--kind', 'helm', '--file', 'env/values.yaml', '--target', 'image.tag', '--value', '9'], { cwd: d });
    expect(r.code, r.all).toBe(2);
    expect(r.stderr).toContain('EEDIT_OUTSIDE');
    expect(readFileSync(join(outside, 'values.yaml'), 'utf8')).toBe(VALUES);
  });
});
