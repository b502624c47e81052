/**
 * Bad input and faults that must map to the right exit code (Medium/Low of issue #10), each against the real
 * thing where there is one: empty tags and digests (bump and set-image), durations out of range, a registry
 * whose name does not resolve (transient, 75), a registry that never answers (bounded by --timeout, exit 4),
 * git remote helpers and option-looking ssh hosts (EGIT_URL, exit 2, before git runs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tmp } from '../helpers/services.js';
import { runAbused } from './abuse.js';

let silent: net.Server;
let silentPort: number;
beforeAll(async () => {
  // accepts connections and never says a word
  silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as AddressInfo).port;
});
afterAll(() => {
  silent?.close();
});

const rows: Array<{ name: string; args: () => string[]; code: number; says: string }> = [
  { name: 'bump: an empty tag (app:, an unset $TAG)', args: () => ['bump', '--repo', '/nonexistent', '--branch', 'main', '--dir', 'envs/prod', '--image', 'registry.example.com/app:'], code: 2, says: "the tag after ':' is empty" },
  { name: 'bump: an empty digest (app@)', args: () => ['bump', '--repo', '/nonexistent', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app=registry.example.com/app@'], code: 2, says: "the digest after '@' is empty" },
  { name: 'set-image: an empty tag', args: () => ['set-image', '--dir', '/nonexistent', 'app:'], code: 2, says: 'EKUSTOMIZE_BAD_IMAGE_EXPR' },
  { name: 'set-image: a tag and an empty digest', args: () => ['set-image', '--dir', '/nonexistent', 'app:1@'], code: 2, says: 'EKUSTOMIZE_BAD_IMAGE_EXPR' },
  ...['0', '0s', '1ms', '597h', '100000h'].map((t) => ({ name: `argocd wait --timeout ${t}: a usage error, not a timeout`, args: () => ['argocd', 'wait', '--app', 'a', '--revision', 'a'.repeat(40), '--server', '127.0.0.1:1', '--plaintext', '--timeout', t], code: 2, says: 'EARGOCD_CONFIG' })),
  { name: 'image resolve --timeout 0', args: () => ['image', 'resolve', 'registry.example.com/app:1', '--timeout', '0'], code: 2, says: 'EREGISTRY_TIMEOUT_FLAG' },
  { name: 'a registry whose name does not resolve: transient (75)', args: () => ['image', 'resolve', 'no-such-registry.invalid/app:1'], code: 75, says: 'EREGISTRY_NETWORK' },
  { name: 'a registry that never answers: bounded by --timeout (exit 4)', args: () => ['image', 'resolve', `127.0.0.1:${silentPort}/app:1`, '--timeout', '2s'], code: 4, says: 'EREGISTRY_TIMEOUT' },
  { name: 'ext:: remote helper URL: EGIT_URL before git runs', args: () => ['bump', '--repo', 'ext::sh -c touch% /tmp/pwned-by-ext', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1'], code: 2, says: 'EGIT_URL' },
  { name: 'fd:: remote helper URL', args: () => ['bump', '--repo', 'fd::3', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1'], code: 2, says: 'EGIT_URL' },
  { name: 'an ssh URL whose host reads as an option', args: () => ['bump', '--repo', 'ssh://-oProxyCommand=touch%20x/repo.git', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1'], code: 2, says: 'EGIT_URL' },
  { name: 'an scp-like URL whose user reads as an option', args: () => ['bump', '--repo=-oProxyCommand@host:repo.git', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1'], code: 2, says: 'EGIT_URL' },
];

describe('bad input and faults: the right exit code', () => {
  for (const r of rows) {
    it(r.name, async () => {
      const res = await runCli(r.args(), { env: {} });
      expect(res.code, res.all).toBe(r.code);
      expect(res.stderr).toContain(r.says);
    });
  }

  it('a !!binary newTag is refused, not rewritten into invalid YAML; the file is left as it was', async () => {
    const dir = tmp('gci-binary-');
    const text = 'images:\n- name: app\n  newTag: !!binary aGVsbG8=\n';
    writeFileSync(join(dir, 'kustomization.yaml'), text);
    for (const dry of [['--dry-run'], []]) {
      const res = await runCli(['set-image', '--dir', dir, ...dry, 'app:2']);
      expect(res.code, res.all).toBe(2);
      expect(res.stderr).toContain('EKUSTOMIZE_BAD_IMAGE_ENTRY');
      expect(res.stdout).toBe('');
    }
    expect(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')).toBe(text);
  });

  it('credentials on the command line: a warning that names the safe way (the value masked)', async () => {
    const res = await runCli(['bump', '--repo', 'https://bot:argv-secret-123456@127.0.0.1:1/x.git', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1', '--timeout', '5']);
    expect(res.stderr).toContain('credentials on the command line are visible');
    expect(res.stderr).toContain('GITOPS_GIT_TOKEN');
    expect(res.all).not.toContain('argv-secret-123456');
  });

  it('ext:: never runs its command, and no git child sees the URL', async () => {
    const res = await runAbused(['bump', '--repo', 'ext::sh -c echo% secret-ext-command', '--branch', 'main', '--dir', 'envs/prod', '--image', 'app:1'], { secret: 'secret-ext-command' });
    expect(res.code).toBe(2);
    expect(res.childArgv).toBe('');
  });
});
