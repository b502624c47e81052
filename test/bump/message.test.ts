/** The bump commit message: subject, change list, trailers (read back by git and by the stale guard), templates. */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { git } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { buildMessage, envOf, parseTrailers, provenanceFor, shortRefOf, validateTemplate, type Change } from '../../src/bump/message.js';
import { parseRemote } from '../../src/git/url.js';
import { classifyGitFailure, isPushRace } from '../../src/git/errors.js';

const IMG = 'registry.example.com/shovel/app';
const changes: Change[] = [
  { overlay: '.kubernetes/overlays/staging', env: 'staging', image: IMG, before: `${IMG}:1.0`, after: `${IMG}:1.1` },
  { overlay: '.kubernetes/overlays/production', env: 'production', image: IMG, before: `${IMG}:1.0`, after: `${IMG}:1.1` },
];
const origin = { project: 'shovel/app', commit: 'c0ffee'.padEnd(40, '0'), pipelineId: '77', pipelineUrl: 'https://gl/p/77', jobUrl: 'https://gl/j/9' };

describe('commit message', () => {
  it('derives the environment from the overlay dir', () => {
    expect(envOf('.kubernetes/overlays/production')).toBe('production');
    expect(envOf('envs/eu/staging/')).toBe('staging');
  });

  it('names all environments, lists changes, and ends with trailers git can read', () => {
    const msg = buildMessage({ changes, origin, skipCi: 'message' });
    expect(msg.split('\n')[0]).toBe('[skip ci] bump app to 1.1 in staging, production');
    expect(msg).toContain(`staging (.kubernetes/overlays/staging):\n- ${IMG}: 1.0 → 1.1`);
    // a new repository (newName) is shown whole
    expect(buildMessage({ changes: [{ ...changes[0]!, after: 'mirror.example.com/app:1.1' }], origin, skipCi: 'none' })).toContain(`- ${IMG}: 1.0 → mirror.example.com/app:1.1`);
    const dir = tmp();
    git(dir, ['init', '-q']);
    git(dir, ['commit', '-q', '--allow-empty', '--cleanup=verbatim', '-m', msg]);
    const out = execFileSync('git', ['-C', dir, 'log', '-1', '--format=%(trailers:only,unfold)']).toString();
    const t = parseTrailers(out);
    expect(t.get('gitops-image')).toEqual([`${IMG}=${IMG}:1.1`]);
    expect(t.get('gitops-overlay')).toHaveLength(2);
    expect(provenanceFor(t, IMG, `${IMG}:1.1`)).toEqual({ project: 'shovel/app', sourceCommit: origin.commit, pipelineId: '77', pipelineUrl: 'https://gl/p/77' });
    expect(provenanceFor(t, IMG, `${IMG}:1.0`)).toBeUndefined();
  });

  it('templates: placeholders, no double [skip ci], unknown placeholders refused', () => {
    expect(buildMessage({ changes, origin, skipCi: 'message', template: 'deploy {images} to {envs} ({pipeline_url})' }).split('\n')[0]).toBe('[skip ci] deploy app:1.1 to staging, production (https://gl/p/77)');
    expect(buildMessage({ changes, origin, skipCi: 'message', template: '[ci skip] {image}' }).split('\n')[0]).toBe('[ci skip] app');
    expect(buildMessage({ changes, origin, skipCi: 'none', template: '{image}' }).split('\n')[0]).toBe('app');
    expect(() => validateTemplate('{nope} {envs}')).toThrow(/unknown placeholder in --message: \{nope\}/);
  });

  it('short refs: tag, else the digest', () => {
    expect(shortRefOf('registry:5000/a/b:1.2')).toBe('1.2');
    expect(shortRefOf(`registry:5000/a/b@sha256:${'ab'.repeat(32)}`)).toBe('sha256:abababababab');
    expect(shortRefOf(`a/b:1.2@sha256:${'ab'.repeat(32)}`)).toBe('1.2');
  });
});

describe('remote URLs and git failures', () => {
  it('takes credentials out of an https URL', () => {
    const r = parseRemote('https://oauth2:s3cr3t-t0ken@gitlab.example.com/g/config.git', '/');
    expect(r).toMatchObject({ kind: 'http', url: 'https://gitlab.example.com/g/config.git', user: 'oauth2', password: 's3cr3t-t0ken' });
    expect(parseRemote('git@gitlab.example.com:g/config.git', '/')).toMatchObject({ kind: 'ssh', host: 'gitlab.example.com' });
    expect(parseRemote('./config.git', '/work')).toMatchObject({ kind: 'local', url: 'file:///work/config.git' });
  });

  it('recognises every push-race wording, GitLab\'s included', () => {
    for (const m of ['! [rejected]        main -> main (fetch first)', '! [rejected] main -> main (non-fast-forward)', "remote: error: cannot lock ref 'refs/heads/main': is at 1 but expected 2", '! [remote rejected] main -> main (failed to update ref)', '! [remote rejected] main -> main (incorrect old value provided)']) {
      expect(isPushRace(m), m).toBe(true);
    }
    expect(isPushRace('! [remote rejected] main -> main (pre-receive hook declined)')).toBe(false);
  });

  it('maps GitLab refusals to exit codes', () => {
    const c = (stderr: string, op: 'push' | 'clone' = 'push') => classifyGitFailure({ op, stderr, where: 'https://gl/x.git', branch: 'main' });
    expect(c('remote: You are not allowed to push code to this project.\nfatal: unable to access \'https://gl/x.git/\': The requested URL returned error: 403').exitCode).toBe(3);
    expect(c('remote: GitLab: You are not allowed to push code to protected branches on this project.\n ! [remote rejected] main -> main (pre-receive hook declined)').exitCode).toBe(1);
    expect(c("fatal: unable to access 'https://gl/x.git/': The requested URL returned error: 502", 'clone').exitCode).toBe(75);
    expect(c('fatal: Remote branch nope not found in upstream origin', 'clone').exitCode).toBe(2);
  });
});
