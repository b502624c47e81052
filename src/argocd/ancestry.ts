/**
 * "Is revision R a descendant of commit C?", answered by git, for `argocd wait --allow-descendant`.
 *
 * Argo CD's API has no ancestry (revision metadata lists author, date, message, tags: no parents), so
 * gitops-ci asks git: `git merge-base --is-ancestor C R` in a local clone (--repo DIR), or in a temporary
 * bare repo fetched from the app's repoURL (or --repo URL). HTTP credentials come from GITOPS_GIT_USER /
 * GITOPS_GIT_TOKEN through a credential helper that reads the environment: never on the command line.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../core/errors.js';
import { redactUrl } from '../core/mask.js';
import { ArgoErrors } from './errors.js';

function git(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out: out.trim(), err: err.trim() }));
  });
}

const HELPER = '!f() { test "$1" = get || exit 0; echo "username=${GITOPS_GIT_USER:-oauth2}"; echo "password=${GITOPS_GIT_TOKEN}"; }; f';

export class Ancestry {
  private dir?: string;
  private temp = false;
  private fetched?: Promise<void>;
  private readonly cache = new Map<string, Promise<boolean>>();
  private readonly env: NodeJS.ProcessEnv;

  /** repo: a local git directory, or a URL / bare path to fetch from */
  constructor(
    private readonly repo: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.env = { PATH: env.PATH, HOME: env.HOME, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GITOPS_GIT_USER: env.GITOPS_GIT_USER, GITOPS_GIT_TOKEN: env.GITOPS_GIT_TOKEN };
  }

  private async prepare(refetch: boolean): Promise<void> {
    const local = existsSync(this.repo) && (existsSync(join(this.repo, '.git')) || existsSync(join(this.repo, 'HEAD'))) && !this.repo.endsWith('.git');
    if (local && !this.temp) {
      this.dir = this.repo;
      if (refetch) await git(['fetch', '-q', '--no-tags', 'origin'], this.env, this.dir); // best effort
      return;
    }
    if (!this.dir) {
      this.dir = mkdtempSync(join(tmpdir(), 'gci-ancestry-'));
      this.temp = true;
      await git(['init', '-q', '--bare', this.dir], this.env);
    }
    const r = await git(['-c', `credential.helper=${HELPER}`, 'fetch', '-q', '--no-tags', this.repo, '+refs/heads/*:refs/remotes/origin/*'], this.env, this.dir);
    if (r.code !== 0) {
      throw fail.failed(ArgoErrors.ANCESTRY, `cannot fetch ${redactUrl(this.repo)} to check ancestry: ${r.err.split('\n').pop()}`, {
        where: redactUrl(this.repo),
        hint: 'give a local clone with --repo DIR, or set GITOPS_GIT_TOKEN (and GITOPS_GIT_USER) for an HTTP repo',
      });
    }
  }

  private async check(ancestor: string, rev: string): Promise<boolean> {
    this.fetched ??= this.prepare(false);
    await this.fetched;
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await git(['merge-base', '--is-ancestor', ancestor, rev], this.env, this.dir);
      if (r.code === 0) return true;
      if (r.code === 1) return false;
      // a commit is missing locally: fetch once more (the branch moved after the first fetch)
      if (attempt === 0) {
        this.fetched = this.prepare(true);
        await this.fetched;
      } else {
        throw fail.failed(ArgoErrors.ANCESTRY, `git cannot compare ${ancestor.slice(0, 8)} and ${rev.slice(0, 8)}: ${r.err.split('\n').pop()}`, { where: redactUrl(this.repo) });
      }
    }
    return false;
  }

  /** true when `rev` is `ancestor` or descends from it */
  isAncestor(ancestor: string, rev: string): Promise<boolean> {
    const k = `${ancestor}..${rev}`;
    let p = this.cache.get(k);
    if (!p) {
      p = this.check(ancestor, rev);
      this.cache.set(k, p);
      p.catch(() => this.cache.delete(k));
    }
    return p;
  }

  cleanup(): void {
    if (this.temp && this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
