/** Shared set-up for the bump tests: a config repo on the smart-HTTP server, and helpers to read it back. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git, seedBare, seedLayout, type Tree } from '../helpers/config-repo.js';
import { tmp, type GitServer } from '../helpers/services.js';

export const IMAGE = 'registry.example.com/shovel/shovel-gitops';
export const PROD = '.kubernetes/overlays/production';
export const STAGING = '.kubernetes/overlays/staging';

let seq = 0;

/**
 * a fresh repo on `srv` holding the seed layout (+ extra files); GitLab-like server settings. The first commit is
 * written into the server's repo directly (seedBare), not pushed: the server has seen no request for it.
 */
export function configRepo(srv: GitServer, extra: Tree = {}): { name: string; url: string; authUrl: string; path: string; head: string } {
  const name = `group/config-${process.pid}-${++seq}.git`;
  const url = srv.createRepo(name);
  const path = srv.repoPath(name);
  const head = seedBare(path, { ...seedLayout(IMAGE), ...extra });
  return { name, url, authUrl: srv.authUrl(name), path, head };
}

/** a file of the branch tip of a bare repo */
export function show(bare: string, path: string, ref = 'main'): string {
  return execFileSync('git', ['-C', bare, 'show', `${ref}:${path}`]).toString();
}

export function headOf(bare: string, ref = 'main'): string {
  return execFileSync('git', ['-C', bare, 'rev-parse', ref]).toString().trim();
}

export function logOf(bare: string, range: string, format = '%H'): string[] {
  return execFileSync('git', ['-C', bare, 'log', `--format=${format}%x1e`, range])
    .toString()
    .split('\x1e')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** environment of a GitLab job for runCli, with a token for the server */
export function jobEnv(srv: GitServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { GITOPS_GIT_USER: srv.user, GITOPS_GIT_TOKEN: srv.password, ...extra };
}

/** every form in which a secret could leak */
export function leakForms(secret: string, users: string[]): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), ...users.map((u) => Buffer.from(`${u}:${secret}`).toString('base64'))];
}

/** install a hook script (sh) into a bare repo */
export function installHook(bare: string, name: string, script: string): void {
  const f = join(bare, 'hooks', name);
  writeFileSync(f, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
}

/** a linear source repo with `n` commits; returns the repo path and the commit SHAs, oldest first */
export function sourceRepo(n: number): { dir: string; commits: string[] } {
  const dir = tmp('gci-src-');
  git(dir, ['init', '-q', '-b', 'main']);
  const commits: string[] = [];
  for (let i = 1; i <= n; i++) {
    git(dir, ['commit', '-q', '--allow-empty', '-m', `change ${i}`]);
    commits.push(git(dir, ['rev-parse', 'HEAD']));
  }
  return { dir, commits };
}

export function readJsonLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
