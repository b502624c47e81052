/**
 * Rendering content that a merge request controls. kustomize reads what a kustomization names (resources,
 * bases, components, patches, generator files, charts) and fetches remote ones itself (http(s), git); it
 * parses YAML (an alias bomb), and it runs as long and as big as its input makes it. Fences, each one enough
 * on its own for what it covers:
 *
 * 1. checkTree(root, dir): before kustomize runs, every kustomization reachable from `dir` is read (through
 *    resolveInside, as kustomize reads it: merge keys applied, field names matched ignoring case; one it cannot
 *    read so is refused, ERENDER_UNCHECKED) and every path it names is judged: a remote one (scheme://, git@host:, github.com/…,
 *    ?ref=, a chart repo) is refused (ERENDER_REMOTE); a local one that leaves the checkout (`../` out of it,
 *    an absolute path, a symlink pointing out) is refused (ERENDER_OUTSIDE). Nothing is fetched or read.
 * 2. runSandboxed(): kustomize runs with `--load-restrictor LoadRestrictionsRootOnly`, with proxies pointing at
 *    a closed port and git allowed no protocol (a fetch that slips through fails), with none of the job's variables in its
 *    environment, in its own process group (tracked by src/core/cleanup.ts: a cancel stops it), under an
 *    address-space limit set by a constant `sh` wrapper (`ulimit -v`; the user's values are argv, never
 *    script), until the deadline (then stopped: ERENDER_TIMEOUT, exit 4), and with its output capped.
 *    An out-of-memory end is reported as ERENDER_MEMORY, not as a Go stack dump.
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { trackChild, killGroup } from '../core/cleanup.js';
import { fail } from '../core/errors.js';
import { tuning } from '../core/flags.js';
import { resolveInside } from '../core/fsutil.js';
import { KustomizeErrors } from '../kustomize/errors.js';
import { RenderErrors } from './errors.js';

/** kustomize's recognised names, in its order */
const KFILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
/** a closed port on loopback: a proxied request fails at once */
const NOWHERE = 'http://127.0.0.1:9';
export const DEFAULT_MEMORY_MB = 2048;
export const DEFAULT_MAX_OUTPUT_MB = 64;
/** kustomizations visited at most per render (a tree of bases and components) */
const MAX_KUSTOMIZATIONS = 1000;

/** kustomize's remote forms: a URL, scp-like git, a hosted git path, a go-getter ref */
export function isRemoteRef(ref: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) || /^[\w.-]+@[\w.-]+:/.test(ref) || /^(github|gitlab|bitbucket)\.(com|org)\//i.test(ref) || /[?&](ref|version|submodules|timeout)=/.test(ref) || /^git::/i.test(ref) || /^[\w-]+(\.[\w-]+)+(:\d+)?\/.+\.git(\/|$|\?)/.test(ref);
}

function strings(x: unknown): string[] {
  if (typeof x === 'string') return [x];
  if (Array.isArray(x)) return x.filter((s): s is string => typeof s === 'string');
  return [];
}

/** every path (as written) a kustomization names, remote ones included; `dirs` are those that may be kustomizations */
export function namedPaths(doc: unknown): { paths: string[]; dirs: string[]; charts: string[] } {
  const paths: string[] = [];
  const dirs: string[] = [];
  const charts: string[] = [];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return { paths, dirs, charts };
  const k = doc as Record<string, unknown>;
  for (const key of ['resources', 'components', 'bases', 'generators', 'transformers', 'validators']) dirs.push(...strings(k[key]));
  for (const key of ['crds', 'configurations']) paths.push(...strings(k[key]));
  paths.push(...strings(k.patchesStrategicMerge).filter((s) => !s.includes('\n')));
  for (const key of ['patches', 'patchesJson6902', 'replacements']) {
    if (Array.isArray(k[key])) for (const p of k[key] as unknown[]) if (p && typeof p === 'object' && typeof (p as { path?: unknown }).path === 'string') paths.push((p as { path: string }).path);
  }
  for (const key of ['configMapGenerator', 'secretGenerator']) {
    if (!Array.isArray(k[key])) continue;
    for (const g of k[key] as unknown[]) {
      if (!g || typeof g !== 'object') continue;
      const r = g as Record<string, unknown>;
      for (const f of strings(r.files)) paths.push(f.includes('=') ? f.slice(f.indexOf('=') + 1) : f);
      paths.push(...strings(r.envs), ...strings(r.env));
    }
  }
  const openapi = k.openapi as { path?: unknown } | undefined;
  if (openapi && typeof openapi === 'object' && typeof openapi.path === 'string') paths.push(openapi.path);
  const hg = k.helmGlobals as Record<string, unknown> | undefined;
  if (hg && typeof hg === 'object') paths.push(...strings(hg.chartHome), ...strings(hg.configHome));
  for (const key of ['helmCharts', 'helmChartInflationGenerator']) {
    if (!Array.isArray(k[key])) continue;
    for (const c of k[key] as unknown[]) {
      if (!c || typeof c !== 'object') continue;
      const r = c as Record<string, unknown>;
      for (const f of ['repo', 'chartRepoUrl']) if (typeof r[f] === 'string' && r[f]) charts.push(r[f] as string);
      paths.push(...strings(r.valuesFile), ...strings(r.additionalValuesFiles), ...strings(r.chartHome));
    }
  }
  return { paths: paths.filter(Boolean), dirs: dirs.filter(Boolean), charts };
}

/** the fields namedPaths reads (kustomize's JSON names), top-level and nested */
const FIELDS = ['resources', 'components', 'bases', 'generators', 'transformers', 'validators', 'crds', 'configurations', 'patchesStrategicMerge', 'patches', 'patchesJson6902', 'replacements', 'path', 'configMapGenerator', 'secretGenerator', 'files', 'envs', 'env', 'openapi', 'helmGlobals', 'chartHome', 'configHome', 'helmCharts', 'helmChartInflationGenerator', 'repo', 'chartRepoUrl', 'valuesFile', 'additionalValuesFiles'];
/** Go's encoding/json matches a key to a field as bytes.EqualFold does: ASCII case, and ſ (U+017F) is s, K (U+212A) is k */
const fold = (k: string) => k.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').toLowerCase();
const CANONICAL = new Map(FIELDS.map((f) => [fold(f), f]));

/** fields whose value is a list of structs, or a struct, whose own keys are fields too (the rest is data: labels, patches' text) */
const STRUCT_LISTS = ['patches', 'patchesJson6902', 'replacements', 'configMapGenerator', 'secretGenerator', 'helmCharts', 'helmChartInflationGenerator'];
const STRUCTS = ['openapi', 'helmGlobals'];
const isMap = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);

/** a struct's keys under their field names; two keys naming one field are refused (Go would keep the last) */
function fieldKeys(x: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) {
    const c = CANONICAL.get(fold(k)) ?? k;
    if (Object.prototype.hasOwnProperty.call(out, c)) throw new Error(`two keys name the field ${c} (kustomize matches field names ignoring case)`);
    out[c] = v;
  }
  return out;
}

/**
 * A kustomization's text as kustomize reads it (YAML to JSON, then Go's encoding/json): YAML merge keys (`<<`)
 * applied, field names matched ignoring case (`RESOURCES:` is `resources:`). Throws on what kustomize would read
 * otherwise than this parser: several documents (kustomize takes the first), a key given twice (it takes the last).
 */
export function readKustomizationText(text: string): unknown {
  const doc = parse(text, { maxAliasCount: 100, merge: true }) as unknown;
  if (!isMap(doc)) return doc;
  const top = fieldKeys(doc);
  for (const k of STRUCT_LISTS) if (Array.isArray(top[k])) top[k] = (top[k] as unknown[]).map((i) => (isMap(i) ? fieldKeys(i) : i));
  for (const k of STRUCTS) if (isMap(top[k])) top[k] = fieldKeys(top[k] as Record<string, unknown>);
  return top;
}

function shown(root: string, p: string): string {
  const r = relative(root, p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

/**
 * Fence 1: refuse a remote reference or a path out of `root` anywhere in the kustomization tree of `dir`,
 * before kustomize runs. Reads only through resolveInside.
 */
export async function checkTree(root: string, dir: string): Promise<void> {
  const seen = new Set<string>();
  const queue: string[] = [resolve(dir)];
  while (queue.length) {
    const d = queue.shift()!;
    const inside = await resolveInside(root, d);
    if (!inside.inside) {
      throw fail.failed(RenderErrors.OUTSIDE, `${shown(root, d)} lies outside the checkout (it leads to ${inside.real}); it is not rendered`, {
        where: shown(root, d),
        hint: 'a kustomization of the change may only name files and directories inside the repository (no `../` out of it, no absolute path, no symlink out of it)',
      });
    }
    if (seen.has(inside.real)) continue;
    seen.add(inside.real);
    if (seen.size > MAX_KUSTOMIZATIONS) {
      throw fail.failed(RenderErrors.TOO_LARGE, `more than ${MAX_KUSTOMIZATIONS} kustomizations reachable from ${shown(root, dir)}`, { where: shown(root, dir), hint: 'split the overlay' });
    }
    let file: string | undefined;
    for (const n of KFILES) {
      const f = join(d, n);
      const s = await stat(f).catch(() => undefined);
      if (!s?.isFile()) continue;
      const fi = await resolveInside(root, f);
      if (!fi.inside) throw fail.failed(RenderErrors.OUTSIDE, `${shown(root, f)} is a symlink to ${fi.real}, outside the checkout; it is not rendered`, { where: shown(root, f), hint: 'keep the kustomization file inside the repository' });
      file = fi.real;
      break;
    }
    if (!file) continue; // a plain directory of resources (kustomize reports what it lacks)
    const where = shown(root, file);
    let doc: unknown;
    try {
      doc = readKustomizationText(await readFile(file, 'utf8'));
    } catch (e) {
      // what this parser cannot read as kustomize does is not checked, so it is not rendered either
      throw fail.failed(RenderErrors.UNCHECKED, `${where} cannot be checked before kustomize runs: ${(e as Error).message.split('\n')[0]}`, {
        where,
        hint: 'write each kustomization as one YAML document, every key once and spelt as kustomize documents it',
      });
    }
    const { paths, dirs, charts } = namedPaths(doc);
    for (const c of charts) {
      throw fail.failed(RenderErrors.REMOTE, `${where} pulls a Helm chart from ${c}: remote content is not fetched for a preview`, { where, hint: 'vendor the chart into the repository (helmGlobals.chartHome) or render it outside the merge request' });
    }
    for (const ref of [...dirs, ...paths]) {
      if (isRemoteRef(ref)) {
        throw fail.failed(RenderErrors.REMOTE, `${where} names the remote ${ref}: remote resources, bases and components are not fetched for a preview (no network for merge-request content)`, {
          where,
          hint: 'vendor the remote base into the repository, or pin it outside the merge request; the preview renders only what the repository holds',
        });
      }
    }
    for (const ref of [...dirs, ...paths]) {
      const p = resolve(d, ref);
      const r = await resolveInside(root, p);
      if (!r.inside) {
        throw fail.failed(RenderErrors.OUTSIDE, `${where} names ${ref}, which leads outside the checkout (to ${r.real}); it is not read`, {
          where,
          hint: 'a kustomization may only name files and directories inside the repository (no `../` out of it, no absolute path, no symlink out of it)',
        });
      }
    }
    for (const ref of dirs) {
      const p = resolve(d, ref);
      if ((await stat(p).catch(() => undefined))?.isDirectory()) queue.push(p);
    }
  }
}

export interface SandboxOptions {
  /** what the message calls the run, e.g. "kubectl kustomize .kubernetes/overlays/production" */
  what: string;
  where?: string;
  /** epoch ms: the child is stopped then */
  deadline?: number;
  /** address-space limit in MiB (GITOPS_RENDER_MEMORY_MB, default 2048) */
  memoryMb?: number;
  /** stdout cap in MiB (GITOPS_RENDER_MAX_MB, default 64) */
  maxOutputMb?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * What a renderer may see of the job's environment: where things are and how text reads, nothing else. A list of
 * what to keep, not of what to drop: the job holds variables of any name (CI_JOB_JWT_V2, DEPLOY_API_KEY, the
 * project's own), and kustomize before v5 puts the value of a variable named in a generator's env file without
 * `=` into the render (https://github.com/kubernetes-sigs/kustomize/pull/4957), which a merge request controls.
 */
const RENDER_ENV_KEEP = /^(PATH|HOME|USER|LOGNAME|TMPDIR|TMP|TEMP|TZ|LANG|LANGUAGE|LC_[A-Z_]+)$/;

/** the environment of a renderer: no variable of the job's but RENDER_ENV_KEEP, no proxy that works, no git protocol, Go told its limits */
export function sandboxEnv(env: NodeJS.ProcessEnv, memoryMb: number): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && RENDER_ENV_KEEP.test(k)) out[k] = v;
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) out[k] = NOWHERE;
  out.NO_PROXY = '';
  out.no_proxy = '';
  out.GIT_ALLOW_PROTOCOL = 'none';
  out.GIT_TERMINAL_PROMPT = '0';
  out.GIT_CONFIG_NOSYSTEM = '1';
  out.GIT_CONFIG_GLOBAL = '/dev/null';
  // Go collects harder as it nears this, before the hard limit below ends it
  out.GOMEMLIMIT = `${Math.floor(memoryMb * 0.6)}MiB`;
  out.GOMAXPROCS = '2';
  return out;
}

/** memory and output limits: options, else GITOPS_RENDER_MEMORY_MB / GITOPS_RENDER_MAX_MB, else the defaults */
export function limits(env: NodeJS.ProcessEnv, o: { memoryMb?: number; maxOutputMb?: number } = {}): { memoryMb: number; maxOutputMb: number } {
  return {
    memoryMb: o.memoryMb ?? tuning(env, 'GITOPS_RENDER_MEMORY_MB') ?? DEFAULT_MEMORY_MB,
    maxOutputMb: o.maxOutputMb ?? tuning(env, 'GITOPS_RENDER_MAX_MB') ?? DEFAULT_MAX_OUTPUT_MB,
  };
}

/**
 * Fence 2: run `cmd args` under the limits; its stdout. The sh script is a constant: `$1` is the limit, the
 * rest is exec'd as argv.
 */
export function runSandboxed(cmd: string, args: string[], o: SandboxOptions): Promise<string> {
  const env = o.env ?? process.env;
  const { memoryMb, maxOutputMb } = limits(env, o);
  const maxBytes = maxOutputMb * 1024 * 1024;
  return new Promise((res, rej) => {
    const p = spawn('sh', ['-c', 'ulimit -v "$1" && shift && exec "$@"', 'sh', String(memoryMb * 1024), cmd, ...args], {
      cwd: o.cwd,
      env: sandboxEnv(env, memoryMb),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    trackChild(p);
    const out: Buffer[] = [];
    let size = 0;
    let errTail = '';
    let stop: 'timeout' | 'output' | undefined;
    let timer: NodeJS.Timeout | undefined;
    let hard: NodeJS.Timeout | undefined;
    const end = (why: 'timeout' | 'output') => {
      if (stop) return;
      stop = why;
      killGroup(p, 'SIGTERM');
      hard = setTimeout(() => killGroup(p, 'SIGKILL'), 1000);
      hard.unref();
    };
    if (o.deadline !== undefined) {
      const ms = Math.max(0, o.deadline - Date.now());
      timer = setTimeout(() => end('timeout'), ms);
    }
    p.stdout.on('data', (d: Buffer) => {
      if (stop) return;
      size += d.length;
      if (size > maxBytes) return end('output');
      out.push(d);
    });
    p.stderr.on('data', (d: Buffer) => {
      errTail = (errTail + d.toString('utf8')).slice(-64 * 1024);
    });
    p.on('error', (e) => {
      if (timer) clearTimeout(timer);
      rej(fail.failed(KustomizeErrors.NO_RENDERER, `cannot run ${o.what}: ${e.message}`, { where: o.where }));
    });
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (hard) clearTimeout(hard);
      if (stop === 'timeout') {
        return rej(fail.timeout(RenderErrors.TIMEOUT, `${o.what} did not finish before the time limit; it was stopped`, { where: o.where, hint: 'raise --timeout, or make the overlay smaller; a merge request cannot make the preview run longer than --timeout' }));
      }
      if (stop === 'output') {
        return rej(fail.failed(RenderErrors.TOO_LARGE, `${o.what} printed more than ${maxOutputMb} MiB; it was stopped`, { where: o.where, hint: 'the rendered manifests are too large to preview (GITOPS_RENDER_MAX_MB raises the limit)' }));
      }
      if (code === 0) return res(Buffer.concat(out).toString('utf8'));
      if (/fatal error: (runtime: )?out of memory|runtime: out of memory|cannot allocate memory|fatal error: runtime: cannot allocate/i.test(errTail)) {
        return rej(
          fail.failed(RenderErrors.MEMORY, `${o.what} went over its memory limit of ${memoryMb} MiB and was stopped (a YAML alias bomb, or manifests too large)`, {
            where: o.where,
            hint: 'check the YAML for anchors and aliases that expand without end; GITOPS_RENDER_MEMORY_MB raises the limit for honest large overlays',
          }),
        );
      }
      const lines = errTail.trim().split('\n').filter((l) => !/^\s*(goroutine |runtime\.|\S+\.go:\d+|\t)/.test(l));
      rej(
        fail.failed(KustomizeErrors.RENDER, `${o.what} failed${signal ? ` (${signal})` : ''}`, {
          where: o.where,
          details: lines.slice(-15),
          hint: 'fix the overlay so that it builds (the output above says why)',
        }),
      );
    });
  });
}
