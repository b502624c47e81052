/** Runs the built CLI bundle (dist/gitops-ci.cjs) as a child process, as users run it. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/gitops-ci.cjs', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for secrecy assertions */
  all: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env };
    const p = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr, all: stdout + stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

export interface RunningCli {
  /** resolves when stderr has matched `re` (rejects when the CLI ends first) */
  waitForStderr(re: RegExp): Promise<void>;
  /** signal the CLI process (SIGTERM: what GitLab sends a job it cancels) */
  kill(signal: NodeJS.Signals): void;
  done: Promise<CliResult>;
}

/** runCli, but returns at once: for tests that act on the world while the command runs (kill its engine) */
export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): RunningCli {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env };
  const p = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ re: RegExp; res: () => void; rej: (e: Error) => void }> = [];
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => {
    stderr += d;
    for (const w of [...waiters]) if (w.re.test(stderr)) waiters.splice(waiters.indexOf(w), 1) && w.res();
  });
  const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      for (const w of waiters.splice(0)) w.rej(new Error(`the CLI ended (${code}) before stderr matched ${w.re}:\n${stderr}`));
      resolve({ code: code ?? -1, stdout, stderr, all: stdout + stderr });
    });
  });
  return {
    done,
    kill: (signal) => void p.kill(signal),
    waitForStderr: (re) =>
      re.test(stderr)
        ? Promise.resolve()
        : new Promise<void>((res, rej) => {
            if (p.exitCode !== null) return rej(new Error(`the CLI already ended before stderr matched ${re}`));
            waiters.push({ re, res, rej });
          }),
  };
}
