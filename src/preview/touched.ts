/**
 * Config-repo merge requests: which overlays the MR's changes touch, and their renders at base and head.
 *
 * A tree (base or head) is checked out from local git into a temp dir (checkoutTree; never `git archive`). Its kustomizations are
 * found; the roots are the ones no other kustomization references (the overlays Argo CD points at). The
 * closure of a root is every directory and file it reads, transitively (resources, components, patches,
 * generator files: referencedPaths of src/bump/closure.ts). A root is touched when a changed file lies in
 * its closure, at base or at head.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { resolveInside } from '../core/fsutil.js';
import { join, posix, relative, sep } from 'node:path';
import { childEnvWithoutSecrets } from '../core/secrets.js';
import { fail } from '../core/errors.js';
import { KUSTOMIZATION_FILES, referencedPaths } from '../bump/closure.js';
import { readKustomizationText } from '../render/sandbox.js';
import { PreviewErrors } from './errors.js';

export function gitOut(cwd: string, args: string[], env: NodeJS.ProcessEnv = localGitEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile('git', args, { cwd, maxBuffer: 256 * 1024 * 1024, env }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** make sure `sha` is in the local repo (a shallow CI clone may lack the MR's base): fetch it once */
export async function ensureCommit(repo: string, sha: string, what: string): Promise<void> {
  if ((await gitOut(repo, ['cat-file', '-e', `${sha}^{commit}`])).code === 0) return;
  // the runner's own git config may hold how to reach origin: this one call reads it
  const f = await gitOut(repo, ['fetch', '--quiet', '--depth=1', '--no-tags', 'origin', sha], { ...childEnvWithoutSecrets(process.env), GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' });
  if (f.code !== 0 || (await gitOut(repo, ['cat-file', '-e', `${sha}^{commit}`])).code !== 0) {
    throw fail.failed(PreviewErrors.COMMIT, `the ${what} commit ${sha} is not in ${repo} and cannot be fetched`, {
      where: repo,
      details: f.stderr.trim().split('\n').slice(-3),
      hint: 'run preview in the config repo checkout of an MR pipeline (CI_MERGE_REQUEST_DIFF_BASE_SHA, CI_COMMIT_SHA), or pass --base/--head',
    });
  }
}

/** git for local, read-only work: no system or global config (no filter drivers such as LFS that a
 * `.gitattributes` of the MR could name), no hooks, no prompt, no secret in the environment */
function localGitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base = childEnvWithoutSecrets(process.env);
  for (const k of Object.keys(base)) if (/TOKEN|PASSWORD|PASSWD|SECRET|PRIVATE_KEY|CREDENTIAL|AUTH/i.test(k)) delete base[k];
  return { ...base, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_ATTR_NOSYSTEM: '1', LC_ALL: 'C', ...extra };
}

/**
 * A real checkout of commit `sha` into `dir` (not `git archive`, which applies the MR's own `export-subst` and
 * `export-ignore` attributes: the archive can show one image while the checkout Argo CD deploys holds
 * another). The commit's tree is read into a throw-away index (GIT_INDEX_FILE in the temp dir) and checked out
 * with checkout-index, as `git checkout` does (symlinks stay symlinks, eol conversion as Argo CD's checkout does
 * it); the repository's own index, HEAD and work tree are not touched. No global or system git config is read,
 * so no filter driver can run on the content.
 */
export async function checkoutTree(repo: string, sha: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const gd = await gitOut(repo, ['rev-parse', '--absolute-git-dir']);
  if (gd.code !== 0) throw fail.failed(PreviewErrors.COMMIT, `${repo} is not a git repository`, { where: repo, details: gd.stderr.trim().split('\n').slice(-3) });
  const gitDir = gd.stdout.trim();
  const index = join(dir, '..', `.index-${sha.slice(0, 12)}`);
  const env = localGitEnv({ GIT_INDEX_FILE: index });
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((res) => {
      execFile('git', ['-c', 'core.hooksPath=/dev/null', '-c', 'core.symlinks=true', `--git-dir=${gitDir}`, `--work-tree=${dir}`, ...args], { cwd: dir, env, maxBuffer: 16 * 1024 * 1024 }, (err, _o, stderr) => res({ code: err ? 1 : 0, stderr: String(stderr) }));
    });
  for (const args of [['read-tree', sha], ['checkout-index', '--all', '--force']]) {
    const r = await run(args);
    if (r.code !== 0) throw fail.failed(PreviewErrors.COMMIT, `cannot check out commit ${sha} of ${repo}`, { where: repo, details: r.stderr.trim().split('\n').slice(-3) });
  }
  await rm(index, { force: true });
}

/** the files changed between two commits, exactly as named (`-z`: no C-quoting of non-ASCII, tab or newline) */
export async function changedPaths(repo: string, base: string, head: string): Promise<string[]> {
  const d = await gitOut(repo, ['diff', '-z', '--name-only', '--no-renames', '--no-ext-diff', '--no-textconv', base, head, '--']);
  if (d.code !== 0) throw fail.failed(PreviewErrors.COMMIT, `git diff ${base.slice(0, 12)} ${head.slice(0, 12)} failed`, { where: repo, details: d.stderr.trim().split('\n').slice(-3) });
  return d.stdout.split('\0').filter(Boolean);
}

/** repo-relative directories holding a kustomization file */
export async function kustomizationDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    if (depth > 12) return;
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => (e.isFile() || e.isSymbolicLink()) && KUSTOMIZATION_FILES.includes(e.name))) out.push(rel);
    for (const e of entries) if (e.isDirectory() && e.name !== '.git' && e.name !== 'node_modules') await walk(rel ? `${rel}/${e.name}` : e.name, depth + 1);
  };
  await walk('', 0);
  return out.filter((d) => d !== '').sort();
}

async function readKustomization(root: string, dir: string): Promise<unknown> {
  for (const f of KUSTOMIZATION_FILES) {
    // a symlink out of the checkout is not read (its render is refused with ERENDER_OUTSIDE)
    const r = await resolveInside(root, join(root, dir, f));
    if (!r.inside) return undefined;
    const t = await readFile(r.real, 'utf8').catch(() => undefined);
    if (t !== undefined) {
      try {
        // as kustomize reads it (merge keys, field names ignoring case): a base named `RESOURCES:` is in the closure
        return readKustomizationText(t);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** every repo-relative path (directories and files) a kustomization dir reads, itself included */
export async function closureOf(root: string, dir: string, cache = new Map<string, Set<string>>()): Promise<Set<string>> {
  const known = cache.get(dir);
  if (known) return known;
  const out = new Set<string>([dir]);
  cache.set(dir, out);
  const doc = await readKustomization(root, dir);
  for (const ref of referencedPaths(doc)) {
    if (/:\/\//.test(ref) || ref.startsWith('git@')) continue;
    const p = posix.normalize(posix.join(dir, ref));
    if (p.startsWith('..')) continue;
    const r = await resolveInside(root, join(root, p));
    // through a symlink that stays inside the repository, kustomize reads the files at the link's target, and a
    // change names them by that path: the closure holds both (the link itself is a file a change can touch)
    const q = r.inside ? relative(await realpath(root).catch(() => root), r.real).split(sep).join('/') || p : p;
    if (q !== p) out.add(p);
    const s = r.inside ? await stat(r.real).catch(() => undefined) : undefined;
    if (s?.isDirectory()) for (const x of await closureOf(root, q, cache)) out.add(x);
    else out.add(q);
  }
  return out;
}

/** the root kustomizations (referenced by no other) and their closures */
export async function roots(root: string): Promise<Map<string, Set<string>>> {
  const dirs = await kustomizationDirs(root);
  const cache = new Map<string, Set<string>>();
  const closures = new Map<string, Set<string>>();
  for (const d of dirs) closures.set(d, await closureOf(root, d, cache));
  const referenced = new Set<string>();
  for (const [d, c] of closures) for (const x of c) if (x !== d && closures.has(x)) referenced.add(x);
  return new Map([...closures].filter(([d]) => !referenced.has(d)));
}

/** does a changed file lie in a closure (a directory in it, or a file of it)? */
export function touches(closure: Set<string>, file: string): boolean {
  for (const p of closure) if (file === p || file.startsWith(`${p}/`)) return true;
  return false;
}
