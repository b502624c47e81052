/** Small helpers shared by the benches: timing, medians and a plain table. */
import { cpus, loadavg, totalmem } from 'node:os';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../dist/gitops-ci.cjs', import.meta.url));

export function timeIt(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} exited with ${r.status}`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function ms(x: number): string {
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`;
}

export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r, j) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ') + (j === 0 ? `\n${w.map((n) => '-'.repeat(n)).join('  ')}` : '')).join('\n');
}

/** print the report and keep it in bench/results/<name>.txt (the README quotes these files) */
export function report(name: string, text: string): void {
  console.log(text);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${name}.txt`, text + '\n');
}

export function machine(): string {
  return `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${new Date().toISOString().slice(0, 10)}, load ${loadavg()[0]!.toFixed(2)}`;
}

/**
 * How much two things at once cost on this machine against one alone, side by side, interleaved, median of `rounds`:
 * the same fixed work once alone and twice at the same time. 1.0: two at once take as long as one (two
 * cores' worth); 2.0: twice as long (one core's worth). Two workloads: hashing in one Node process
 * (CPU-bound), and starting 100 git processes one after another (what a bump mostly does: about 35 git
 * processes of its own and as many on the server).
 */
export async function parallelCapacity(rounds = 5): Promise<{ hashing: number; spawning: number }> {
  const hashing = ['-e', "const c=require('crypto');let h=Buffer.alloc(32);for(let i=0;i<400000;i++)h=c.createHash('sha256').update(h).digest()"];
  const spawning = ['-e', "const {spawnSync}=require('child_process');for(let i=0;i<100;i++)spawnSync('git',['--version'])"];
  const once = (args: string[]) =>
    new Promise<number>((resolve) => {
      const t = process.hrtime.bigint();
      spawn(process.execPath, args, { stdio: 'ignore' }).on('close', () => resolve(Number(process.hrtime.bigint() - t) / 1e6));
    });
  const ratio = async (args: string[]) => {
    const one: number[] = [];
    const two: number[] = [];
    for (let r = 0; r < rounds; r++) {
      one.push(await once(args));
      const t = process.hrtime.bigint();
      await Promise.all([once(args), once(args)]);
      two.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return median(two) / median(one);
  };
  return { hashing: await ratio(hashing), spawning: await ratio(spawning) };
}

/**
 * A TCP proxy to 127.0.0.1:`target` that holds every chunk `oneWayMs` in each direction (order kept): a
 * network round trip of 2 × oneWayMs between the jobs and the server, as between GitLab runners and GitLab,
 * where this machine has no netem. Returns its port and a stop function.
 */
export async function startDelayProxy(target: number, oneWayMs: number): Promise<{ port: number; stop: () => Promise<void> }> {
  const { createServer, connect } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const delayed = (from: import('node:net').Socket, to: import('node:net').Socket) => {
    let last = 0;
    from.on('data', (chunk) => {
      const at = Math.max(Date.now() + oneWayMs, last);
      last = at;
      setTimeout(() => to.destroyed || to.write(chunk), at - Date.now());
    });
    from.on('end', () => setTimeout(() => to.destroyed || to.end(), Math.max(0, last - Date.now()) + 1));
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    delayed(client, upstream);
    delayed(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    stop: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/**
 * CPU time (user + sys, ms) of this process's children that have ended and been waited for (Linux:
 * /proc/self/stat cutime + cstime, in clock ticks of 10 ms); 0 elsewhere. The difference around a spawnSync is
 * that child's CPU time.
 */
export function childCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state is field 3, cutime 16, cstime 17 (proc(5))
    return ((Number(f[16 - 3]) + Number(f[17 - 3])) * 1000) / 100;
  } catch {
    return 0;
  }
}
