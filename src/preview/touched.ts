/**
 * Config-repo merge requests: which overlays the MR's changes touch, and their renders at base and head.
 *
 * A tree (base or head) is exported from local git into a temp dir (`git archive`). Its kustomizations are
 * found; the roots are the ones no other kustomization references (the overlays Argo CD points at). The
 * closure of a root is every directory and file it reads, transitively (resources, components, patches,
 * generator files: referencedPaths of src/bump/closure.ts). A root is touched when a changed file lies in
 * its closure, at base or at head.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { childEnvWithoutSecrets } from '../core/secrets.js';
import { parse } from 'yaml';
import { fail } from '../core/errors.js';
import { KUSTOMIZATION_FILES, referencedPaths } from '../bump/closure.js';
import { PreviewErrors } from './errors.js';

export function gitOut(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile('git', args, { cwd, maxBuffer: 256 * 1024 * 1024, env: { ...childEnvWithoutSecrets(process.env), GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** make sure `sha` is in the local repo (a shallow CI clone may lack the MR's base): fetch it once */
export async function ensureCommit(repo: string, sha: string, what: string): Promise<void> {
  if ((await gitOut(repo, ['cat-file', '-e', `${sha}^{commit}`])).code === 0) return;
  const f = await gitOut(repo, ['fetch', '--quiet', '--depth=1', '--no-tags', 'origin', sha]);
  if (f.code !== 0 || (await gitOut(repo, ['cat-file', '-e', `${sha}^{commit}`])).code !== 0) {
    throw fail.failed(PreviewErrors.COMMIT, `the ${what} commit ${sha} is not in ${repo} and cannot be fetched`, {
      where: repo,
      details: f.stderr.trim().split('\n').slice(-3),
      hint: 'run preview in the config repo checkout of an MR pipeline (CI_MERGE_REQUEST_DIFF_BASE_SHA, CI_COMMIT_SHA), or pass --base/--head',
    });
  }
}

/** export the tree of `sha` into `dir` */
export async function exportTree(repo: string, sha: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await new Promise<void>((res, rej) => {
    const archive = spawn('git', ['archive', '--format=tar', sha], { cwd: repo, env: childEnvWithoutSecrets(process.env), stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-C', dir], { env: childEnvWithoutSecrets(process.env), stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    archive.stderr.on('data', (d) => (err += d));
    tar.stderr.on('data', (d) => (err += d));
    archive.stdout.pipe(tar.stdin);
    let left = 2;
    const done = (code: number | null) => {
      if (code !== 0) return rej(fail.failed(PreviewErrors.COMMIT, `cannot export commit ${sha} of ${repo}`, { details: err.trim().split('\n').slice(-3) }));
      if (--left === 0) res();
    };
    archive.on('close', done);
    tar.on('close', done);
  });
}

/** repo-relative directories holding a kustomization file */
export async function kustomizationDirs(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    if (depth > 12) return;
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.isFile() && KUSTOMIZATION_FILES.includes(e.name))) out.push(rel);
    for (const e of entries) if (e.isDirectory() && e.name !== '.git' && e.name !== 'node_modules') await walk(rel ? `${rel}/${e.name}` : e.name, depth + 1);
  };
  await walk('', 0);
  return out.filter((d) => d !== '').sort();
}

async function readKustomization(root: string, dir: string): Promise<unknown> {
  for (const f of KUSTOMIZATION_FILES) {
    const t = await readFile(join(root, dir, f), 'utf8').catch(() => undefined);
    if (t !== undefined) {
      try {
        return parse(t);
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
    const s = await stat(join(root, p)).catch(() => undefined);
    if (s?.isDirectory()) for (const x of await closureOf(root, p, cache)) out.add(x);
    else out.add(p);
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
