/** A project directory that gitlab-ci-local accepts: a git repo with a commit and an `origin` whose HEAD is known. */
import { copyFileSync, cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { git, writeTree, type Tree } from './config-repo.js';
import { tmp } from './services.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const GITLAB_CI_LOCAL = join(ROOT, 'node_modules/.bin/gitlab-ci-local');

/**
 * `tree` holds the project's text files (its .gitlab-ci.yml among them), `copy` maps project paths to files to copy
 * in (binaries); templates/ is copied in as well.
 */
export function gitlabCiLocalProject(tree: Tree, opts: { projectPath?: string; copy?: Record<string, string> } = {}): string {
  const dir = tmp('gci-glc-');
  cpSync(join(ROOT, 'templates'), join(dir, 'templates'), { recursive: true });
  writeTree(dir, tree);
  for (const [to, from] of Object.entries(opts.copy ?? {})) copyFileSync(from, join(dir, to));
  writeFileSync(join(dir, '.gitignore'), '.gitlab-ci-local/\n.bin/\n');
  git(dir, ['init', '-q', '-b', 'main']);
  git(dir, ['add', '-A']);
  git(dir, ['commit', '-q', '-m', 'project']);
  // gitlab-ci-local derives CI_PROJECT_PATH from origin, and warns without a known default branch
  git(dir, ['remote', 'add', 'origin', `http://127.0.0.1:9/${opts.projectPath ?? 'group/app'}.git`]);
  git(dir, ['update-ref', 'refs/remotes/origin/main', 'HEAD']);
  git(dir, ['remote', 'set-head', 'origin', 'main']);
  return dir;
}
