/**
 * Children that need no credential of ours (kustomize/kubectl for --render, preview and promote's diff; local
 * git in preview) are started without any: a PATH shim records the environment the real kubectl was given.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderOverlay } from '../../src/kustomize/overlay.js';
import { childEnvWithoutSecrets } from '../../src/core/secrets.js';
import { expectNoLeak } from './abuse.js';

const TOKEN = `glpat-${Math.random().toString(36).slice(2, 12)}`;
const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

describe('child environment', () => {
  it('childEnvWithoutSecrets: secret variables left out, userinfo stripped, scheme-less credentials left out whole', () => {
    const env = childEnvWithoutSecrets({
      PATH: '/usr/bin',
      GITOPS_GITLAB_TOKEN: TOKEN,
      GITOPS_GITLAB_READ_TOKEN: TOKEN,
      CI_JOB_TOKEN: TOKEN,
      DOCKER_AUTH_CONFIG: '{"auths":{}}',
      GITOPS_CONFIG_REPO: `https://oauth2:${TOKEN}@gitlab.example.com/g/config.git`,
      ODD_REPO: `oauth2:${TOKEN}@gitlab.example.com:g/config.git`,
      PLAIN: 'https://gitlab.example.com/g/app',
    });
    expect(env).toEqual({ PATH: '/usr/bin', GITOPS_CONFIG_REPO: 'https://gitlab.example.com/g/config.git', PLAIN: 'https://gitlab.example.com/g/app' });
  });

  it('kubectl kustomize (through renderOverlay) is given no token, in any variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gci-childenv-'));
    const shim = join(dir, 'bin');
    mkdirSync(shim);
    mkdirSync(join(dir, 'overlay'));
    writeFileSync(join(dir, 'overlay', 'kustomization.yaml'), 'resources:\n  - cm.yaml\n');
    writeFileSync(join(dir, 'overlay', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n');
    const envLog = join(dir, 'env.log');
    // renderOverlay takes kustomize when it is on PATH, else kubectl: shim whichever of them is there
    let shimmed = 0;
    for (const name of ['kustomize', 'kubectl']) {
      const real = execFileSync('sh', ['-c', `command -v ${name} || true`]).toString().trim();
      if (!real) continue;
      writeFileSync(join(shim, name), `#!/bin/sh\nenv > '${envLog}'\nexec '${real}' "$@"\n`);
      chmodSync(join(shim, name), 0o755);
      shimmed++;
    }
    expect(shimmed, 'kustomize or kubectl on the machine').toBeGreaterThan(0);
    process.env.PATH = `${shim}:${saved.PATH}`;
    process.env.GITOPS_GITLAB_TOKEN = TOKEN;
    process.env.GITOPS_GITLAB_READ_TOKEN = TOKEN;
    process.env.GITOPS_GIT_TOKEN = TOKEN;
    process.env.GITOPS_CONFIG_REPO = `https://oauth2:${TOKEN}@gitlab.example.com/g/config.git`;
    const out = await renderOverlay(join(dir, 'overlay'));
    expect(out).toContain('kind: ConfigMap');
    const seen = readFileSync(envLog, 'utf8');
    // not even stripped: the renderer gets only PATH, HOME, TMPDIR, locale (src/render/sandbox.ts RENDER_ENV_KEEP)
    expect(seen).not.toContain('GITOPS_CONFIG_REPO=');
    expect(seen).toContain('PATH=');
    expectNoLeak('kubectl environment', seen, TOKEN, ['oauth2']);
  });
});
