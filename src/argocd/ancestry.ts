/**
 * "Is revision R a descendant of commit C?", answered by git, for `argocd wait --allow-descendant`.
 *
 * Argo CD's API has no ancestry (revision metadata lists author, date, message, tags: no parents), so
 * gitops-ci asks git, through the project's git layer (src/git: credentials never on a command line, in
 * output or on disk; https tokens from GITOPS_GIT_TOKEN/GITOPS_GIT_USER or CI_JOB_TOKEN, ssh deploy keys
 * from SSH_PRIVATE_KEY):
 *   - `--repo DIR`, a local clone: asked as is (nothing is fetched into it); when it cannot tell (a shallow
 *     CI clone, a commit it lacks), the app's repoURL is asked instead;
 *   - otherwise the branches of the repo URL (the app's repoURL, or `--repo URL`) are fetched into a
 *     temporary bare repo, once more if a commit is missing (the branch moved after the first fetch).
 */
import { fail } from '../core/errors.js';
import { removeTempDir, tempDir } from '../core/cleanup.js';
import type { Logger } from '../core/log.js';
import { compareCommits, isGitRepo, setAncestryEnv } from '../git/ancestry.js';
import { isGitopsError } from '../core/errors.js';
import { GitSession, isConfigRepoHost } from '../git/session.js';
import { compareRepos, parseRemote, repoLocation } from '../git/url.js';
import { redactUrl } from '../core/mask.js';
import type { Application } from './types.js';
import { ArgoErrors } from './errors.js';

export class Ancestry {
  private dir?: string;
  private fetches = 0;
  private fetching?: Promise<void>;
  private readonly cache = new Map<string, Promise<boolean>>();

  /**
   * @param repo a local clone, or a URL / path to fetch from
   * @param fallback the URL to fetch from when the local clone cannot tell (the app's repoURL)
   */
  constructor(
    private readonly repo: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly opts: { cwd: string; log?: Logger; fallback?: string; deadline?: number; repoFromServer?: boolean },
  ) {
    setAncestryEnv(env);
  }

  /** `fromServer`: the URL is an Argo CD app's repoURL, not the pipeline's: our git token only for the config repo's host */
  private async fetch(url: string, fromServer: boolean): Promise<void> {
    const remote = parseRemote(url, this.opts.cwd);
    const session = await GitSession.open(remote, { env: this.env, log: this.opts.log, deadline: this.opts.deadline, fromServer });
    const withheld = fromServer && remote.kind === 'http' && !remote.password && !isConfigRepoHost(remote, this.env) && !!(this.env.GITOPS_GIT_TOKEN || this.env.CI_JOB_TOKEN);
    try {
      if (!this.dir) {
        this.dir = tempDir('gitops-ci-ancestry-'); // removed on SIGTERM/SIGINT too (core/cleanup)
        await session.must('local', ['init', '-q', '--bare', this.dir]);
      }
      await session.must('fetch', ['fetch', '-q', '--no-tags', '--force', session.remote.url, '+refs/heads/*:refs/remotes/origin/*'], { cwd: this.dir });
      this.fetches++;
    } catch (e) {
      if (withheld && isGitopsError(e) && e.code === 'EGIT_AUTH') {
        throw fail.auth('EGIT_AUTH', `the Argo CD app's repo ${remote.display} asked for credentials; ${remote.host} is not the config repo's host, so GITOPS_GIT_TOKEN and CI_JOB_TOKEN were not sent there`, {
          where: remote.display,
          details: e.details,
          hint: `if the app deploys from the config repo on ${remote.host}, set GITOPS_CONFIG_REPO to its URL, or pass it (or a local clone) as --repo`,
          cause: e,
        });
      }
      throw e;
    } finally {
      await session.close();
    }
  }

  private async viaFetch(url: string, c: string, r: string, fromServer: boolean): Promise<boolean> {
    // one fetch for this question beyond what was fetched before: during a long wait the branch moves on
    // (other pipelines' write-backs), so a revision Argo CD reports later may be newer than every earlier
    // fetch; a commit still unknown after a fetch made for it is not on any branch
    const before = this.fetches;
    for (;;) {
      if (this.fetches === 0 || this.fetching) {
        this.fetching ??= this.fetch(url, fromServer).finally(() => (this.fetching = undefined));
        await this.fetching;
      }
      const order = await compareCommits(this.dir!, c, r);
      if (order === 'same' || order === 'older') return true;
      if (order === 'newer' || order === 'diverged') return false;
      if (this.fetches > before && this.fetches >= 2) {
        throw fail.failed(ArgoErrors.ANCESTRY, `git cannot relate ${c.slice(0, 8)} and ${r.slice(0, 8)}: a commit is not on any branch of the repo`, {
          where: parseRemote(url, this.opts.cwd).display,
          hint: 'check that --revision is a commit of the branch the app tracks',
        });
      }
      this.fetching ??= this.fetch(url, fromServer).finally(() => (this.fetching = undefined));
      await this.fetching;
    }
  }

  private async check(c: string, r: string): Promise<boolean> {
    if (await isGitRepo(this.repo)) {
      const order = await compareCommits(this.repo, c, r);
      if (order === 'same' || order === 'older') return true;
      if (order === 'newer' || order === 'diverged') return false;
      if (!this.opts.fallback) {
        throw fail.failed(ArgoErrors.ANCESTRY, `the clone in ${this.repo} cannot tell whether ${r.slice(0, 8)} descends from ${c.slice(0, 8)} (shallow, or a commit is missing)`, {
          where: this.repo,
          hint: 'deepen the clone (GIT_DEPTH: 0) or give the repo URL with --repo',
        });
      }
      return this.viaFetch(this.opts.fallback, c, r, true);
    }
    return this.viaFetch(this.repo, c, r, !!this.opts.repoFromServer);
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

  async cleanup(): Promise<void> {
    await this.fetching?.catch(() => undefined);
    removeTempDir(this.dir);
  }
}

/**
 * The `isDescendant` answer of `argocd wait` / `argocd sync --wait`: one Ancestry per repo (its fetch is
 * reused), the repo being `--repo` when given, else the app's source; log a line per answer.
 */
export function descendantChecker(o: { env: NodeJS.ProcessEnv; cwd: string; log: Logger; repo?: string; deadline?: number }) {
  const byRepo = new Map<string, Ancestry>();
  return {
    isDescendant: async (ancestor: string, rev: string, app: Application | undefined, repoURL: string | undefined): Promise<boolean> => {
      // a multi-source app lists chart and value repos beside the config repo (status.sync.revisions: one per
      // source, in order). A revision of a source that is another repo cannot descend from a config commit: it is
      // not asked (asking would fetch that repo, maybe from another host, and git could not relate the two anyway)
      if ((app?.spec?.sources?.length ?? 0) > 1 && repoURL) {
        const config = [o.repo, o.env.GITOPS_CONFIG_REPO, o.env.CI_REPOSITORY_URL].find((v) => v && repoLocation(v, o.cwd)?.host);
        if (config && compareRepos(repoURL, config, o.cwd) === 'different') {
          o.log.info(`${rev.slice(0, 8)} is the revision of another source of the app (${redactUrl(repoURL)}), not of the config repo`);
          return false;
        }
      }
      const repo = o.repo ?? repoURL;
      if (!repo) return false;
      let a = byRepo.get(repo);
      if (!a) byRepo.set(repo, (a = new Ancestry(repo, o.env, { cwd: o.cwd, log: o.log, fallback: repoURL, deadline: o.deadline, repoFromServer: !o.repo })));
      const yes = await a.isAncestor(ancestor, rev);
      o.log.info(`${rev.slice(0, 8)} ${yes ? 'descends from' : 'does not descend from'} ${ancestor.slice(0, 8)} (git)`);
      return yes;
    },
    cleanup: () => Promise.all([...byRepo.values()].map((a) => a.cleanup())),
  };
}
