/**
 * Ancestry questions asked of a local repository (the source repo a pipeline runs in): no network, no
 * credentials. A commit missing from the clone (CI clones are shallow: GIT_DEPTH) is an answer too:
 * "unknown", so that the caller falls back to another order.
 */
import { spawn } from 'node:child_process';

let baseEnv: NodeJS.ProcessEnv = {};
/** the environment git runs with here (PATH, HOME from the command's ctx.env) */
export function setAncestryEnv(env: NodeJS.ProcessEnv): void {
  baseEnv = { PATH: env.PATH, HOME: env.HOME };
}

function gitCode(cwd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...baseEnv, LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' };
    const p = spawn('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('error', () => resolve({ code: 127, stdout: '' }));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

/** true when `dir` is inside a git work tree */
export async function isGitRepo(dir: string): Promise<boolean> {
  const r = await gitCode(dir, ['rev-parse', '--is-inside-work-tree']);
  return r.code === 0 && r.stdout.trim() === 'true';
}

export type Order = 'same' | 'older' | 'newer' | 'diverged' | 'unknown';

/**
 * How commit `a` relates to commit `b` in `dir`: older = a is an ancestor of b. Two git processes (were five
 * to seven): `rev-parse` resolves both to commits and says whether the clone is shallow, then one `merge-base`
 * decides. When a is an ancestor of b, a is their one best common ancestor (every other common ancestor is an
 * ancestor of a), so `merge-base a b` printing a is `merge-base --is-ancestor a b`, and printing b the reverse.
 */
export async function compareCommits(dir: string, a: string, b: string): Promise<Order> {
  if (!/^[0-9a-f]{7,64}$/i.test(a) || !/^[0-9a-f]{7,64}$/i.test(b)) return 'unknown';
  // a commit missing from the clone (or an ambiguous prefix): exit 128
  const r = await gitCode(dir, ['rev-parse', '--is-shallow-repository', `${a}^{commit}`, `${b}^{commit}`]);
  const [shallow, ra, rb] = r.stdout.trim().split('\n');
  if (r.code !== 0 || !ra || !rb) return 'unknown';
  if (ra === rb) return 'same';
  const mb = await gitCode(dir, ['merge-base', ra, rb]);
  if (mb.code === 0 && mb.stdout.trim() === ra) return 'older';
  if (mb.code === 0 && mb.stdout.trim() === rb) return 'newer';
  // in a shallow clone, "not an ancestor" may only mean "the link is beyond the boundary"
  if (shallow !== 'false') return 'unknown';
  // another common ancestor, or none (exit 1): neither descends from the other
  return mb.code === 0 || mb.code === 1 ? 'diverged' : 'unknown';
}
