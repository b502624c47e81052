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

async function hasCommit(dir: string, sha: string): Promise<boolean> {
  return (await gitCode(dir, ['cat-file', '-e', `${sha}^{commit}`])).code === 0;
}

export type Order = 'same' | 'older' | 'newer' | 'diverged' | 'unknown';

/** How commit `a` relates to commit `b` in `dir`: older = a is an ancestor of b. */
export async function compareCommits(dir: string, a: string, b: string): Promise<Order> {
  if (!/^[0-9a-f]{7,64}$/i.test(a) || !/^[0-9a-f]{7,64}$/i.test(b)) return 'unknown';
  if (!(await hasCommit(dir, a)) || !(await hasCommit(dir, b))) return 'unknown';
  const ra = await gitCode(dir, ['rev-parse', `${a}^{commit}`]);
  const rb = await gitCode(dir, ['rev-parse', `${b}^{commit}`]);
  if (ra.stdout.trim() && ra.stdout.trim() === rb.stdout.trim()) return 'same';
  const older = await gitCode(dir, ['merge-base', '--is-ancestor', a, b]);
  if (older.code === 0) return 'older';
  const newer = await gitCode(dir, ['merge-base', '--is-ancestor', b, a]);
  if (newer.code === 0) return 'newer';
  // in a shallow clone, "not an ancestor" may only mean "the link is beyond the boundary"
  const shallow = await gitCode(dir, ['rev-parse', '--is-shallow-repository']);
  if (shallow.stdout.trim() === 'true') return 'unknown';
  return older.code === 1 && newer.code === 1 ? 'diverged' : 'unknown';
}
