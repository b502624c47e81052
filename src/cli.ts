/**
 * gitops-ci entry point: parses argv, dispatches to a command, maps errors to exit codes, prints the
 * summary line and writes the dotenv outputs. The only place that calls process.exit.
 */
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { commands } from './commands/index.js';
import { withoutEmptyValues, withoutEmptyVars, type CommandEntry, type CommandSpec, type OptionSpec } from './core/command.js';
import { ExitCode, fail, GitopsError, isGitopsError } from './core/errors.js';
import { Logger } from './core/log.js';
import { registerEnvSecrets, registerUrlSecrets, secretProblems } from './core/secrets.js';
import { mask } from './core/mask.js';
import { installSignalHandlers } from './core/cleanup.js';

declare const __VERSION__: string;
const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : 'dev';

const GLOBAL_HELP = `gitops-ci ${VERSION}: GitOps delivery for GitLab CI

Usage: gitops-ci <command> [flags]
       gitops-ci <command> --help

Commands:
${commands
  .map((c) => `  ${c.name.padEnd(16)}${c.summary}${c.unavailable ? ` (not yet available: ${c.unavailable})` : ''}`)
  .join('\n')}

Global flags:
  -h, --help       show help (for a command: gitops-ci <command> --help)
  --version        print the version
  -v, --verbose    print debug output

Exit codes: 0 done (also a no-op or a skip), 1 operation failed, 2 usage or configuration error,
3 authentication or permission, 4 timeout, 75 transient (network, 5xx): safe to retry.
`;

function optionHelp(name: string, o: OptionSpec): string {
  const flag = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}${o.multiple ? '...' : ''}`;
  const short = o.short ? `-${o.short}, ` : '    ';
  const extra = [o.default !== undefined ? `default: ${o.default}` : '', o.env?.length ? `env: ${o.env.join(', ')}` : ''].filter(Boolean).join('; ');
  return `  ${short}${flag.padEnd(30)} ${o.description}${extra ? ` (${extra})` : ''}`;
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, '', spec.description.trim(), ''];
  if (spec.positionals?.length) {
    lines.push('Arguments:');
    for (const [n, d] of spec.positionals) lines.push(`  ${n.padEnd(34)} ${d}`);
    lines.push('');
  }
  lines.push('Flags:');
  for (const [n, o] of Object.entries(spec.options)) lines.push(optionHelp(n, o));
  lines.push(optionHelp('help', { type: 'boolean', short: 'h', description: 'show this help' }));
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

function findCommand(argv: string[]): { entry?: CommandEntry; rest: string[] } {
  const two = argv.slice(0, 2).join(' ');
  const e2 = commands.find((c) => c.name === two);
  if (e2) return { entry: e2, rest: argv.slice(2) };
  const e1 = commands.find((c) => c.name === argv[0]);
  if (e1) return { entry: e1, rest: argv.slice(1) };
  return { rest: argv };
}

function printError(log: Logger, e: GitopsError): void {
  log.error(e.message);
  if (e.where) log.info(`  where: ${e.where}`);
  for (const d of e.details ?? []) log.info(`  | ${d}`);
  if (e.hint) log.info(`  what to do: ${e.hint}`);
  log.info(`  code: ${e.code} (exit ${e.exitCode})`);
}

/**
 * The flags of `rest` that stand as flags (not as the value of the string option before them, not after
 * `--`): `--dir --help` is a --dir named "--help", not a request for help.
 */
export function standaloneFlags(rest: string[], options: Record<string, OptionSpec> = {}): Set<number> {
  const takesValue = new Set<string>();
  for (const [n, o] of Object.entries(options)) if (o.type === 'string') takesValue.add(`--${n}`), o.short && takesValue.add(`-${o.short}`);
  const out = new Set<number>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') break;
    if (takesValue.has(a)) i++;
    else if (a.startsWith('-')) out.add(i);
  }
  return out;
}

/**
 * --version and help texts: written straight to fd 1. process.stdout would load Node's stream modules, about
 * a quarter of what `--version` costs over `node -e 0`; a few KB fit any pipe. Falls back to process.stdout
 * when the write cannot be made at once (a non-blocking stdout that is full: EAGAIN).
 */
function printHelp(text: string): void {
  const buf = Buffer.from(text);
  let at = 0;
  try {
    while (at < buf.length) at += writeSync(1, buf, at);
  } catch {
    process.stdout.write(buf.subarray(at));
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  registerEnvSecrets(env);
  // credentials in any URL-ish argument are masked before anything can print them, parsed or not
  const argvCreds = argv.filter((a) => registerUrlSecrets(a).some((u) => u.password) || /^--auth-token(=|$)/.test(a)).length > 0;
  // -v/--verbose before the command; after it, only where it stands as a flag (see below)
  let verbose = false;
  while (argv[0] === '-v' || argv[0] === '--verbose') (verbose = true), (argv = argv.slice(1));
  const log = new Logger({ verbose, gitlab: env.GITLAB_CI === 'true' });
  // libraries print their `debug` output straight to stderr, past the masker: docker-modem's includes request
  // headers such as X-Registry-Auth. So DEBUG is dropped before any library loads.
  if (env.DEBUG) {
    log.warn('DEBUG is set and ignored: library debug output would bypass secret masking; use --verbose instead');
    delete env.DEBUG;
  }

  if (argv[0] === '--version' || argv[0] === 'version') {
    printHelp(`${VERSION}\n`);
    return ExitCode.ok;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    if (argv[0] === 'help' && argv[1]) return main([...argv.slice(1), '--help'], env);
    printHelp(GLOBAL_HELP);
    return argv.length === 0 ? ExitCode.usage : ExitCode.ok;
  }

  // secrets that cannot be sent as they are: refused before any command runs (help and --version need none)
  const bad = secretProblems(env, argv);
  if (bad.length) {
    printError(log, fail.usage('ESECRET_INVALID', bad.length === 1 ? `${bad[0]}; it cannot be used (its value is not shown)` : `${bad.length} secrets cannot be used (their values are not shown)`, {
      details: bad.length > 1 ? bad : undefined,
      hint: 'set the secret again without line breaks, control characters or non-Latin-1 characters (a stray newline or a copy-paste artefact is the usual cause)',
    }));
    log.summary(false, 'secret rejected');
    return ExitCode.usage;
  }
  if (argvCreds) {
    log.warn('credentials on the command line are visible to every process on the machine (ps, /proc): put the URL without them in GITOPS_CONFIG_REPO (or --repo) and the token in GITOPS_GIT_TOKEN, ARGOCD_AUTH_TOKEN or DOCKER_AUTH_CONFIG (see docs/security.md)');
  }
  const found = findCommand(argv);
  const entry = found.entry;
  let rest = found.rest;
  if (!entry) {
    const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length) {
      log.error(`${argv[0]}: ${argv[1] ? `unknown subcommand ${JSON.stringify(argv[1])}` : 'a subcommand is needed'}; one of: ${group.map((c) => c.name.split(' ')[1]).join(', ')}`);
    } else {
      log.error(`unknown command ${JSON.stringify(argv[0])}; run \`gitops-ci --help\` for the list`);
    }
    return ExitCode.usage;
  }
  if (entry.unavailable || !entry.load) {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`gitops-ci ${entry.name}: ${entry.summary}\n\nNot yet available (${entry.unavailable}).\n`);
      return ExitCode.ok;
    }
    log.error(`\`gitops-ci ${entry.name}\` is not yet available in gitops-ci ${VERSION} (planned in ${entry.unavailable})`);
    log.summary(false, `${entry.name}: not available`);
    return ExitCode.usage;
  }

  let mod;
  try {
    mod = await entry.load();
  } catch (e) {
    // the bundle's command code missing or of another build (src/core/bundle.ts)
    if (!isGitopsError(e)) throw e;
    printError(log, e);
    log.summary(false, `${entry.name} failed: ${e.message.split('\n')[0]}`);
    return e.exitCode;
  }
  const flags = standaloneFlags(rest, mod.spec.options);
  if ([...flags].some((i) => rest[i] === '--help' || rest[i] === '-h')) {
    printHelp(commandHelp(mod.spec));
    return ExitCode.ok;
  }
  if ([...flags].some((i) => rest[i] === '--verbose' || rest[i] === '-v')) log.verbose = true;
  rest = rest.filter((a, i) => !(flags.has(i) && (a === '--verbose' || a === '-v')));
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: Object.fromEntries(Object.entries(mod.spec.options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    log.error(`${entry.name}: ${(e as Error).message.replace(/^TypeError \[\w+\]: /, '')}`);
    log.info(`  run \`gitops-ci ${entry.name} --help\` for usage`);
    log.summary(false, `${entry.name}: usage error`);
    return ExitCode.usage;
  }

  const started = Date.now();
  installSignalHandlers((sig, code, what) => {
    log.error(`${entry.name}: cancelled by ${sig}; ${what}`);
    log.summary(false, `${entry.name} cancelled (${sig})`);
    process.exit(code);
  });
  try {
    // empty means unset, for variables and flags alike (src/core/command.ts)
    const values = withoutEmptyValues(parsed.values as never);
    const cmdEnv = withoutEmptyVars(env);
    // a numeric tuning variable out of range (GITOPS_RETRY_ATTEMPTS…): refused before the command acts, whether
    // or not it gets to where the value is used
    const { checkTuning } = await import('./core/flags.js');
    checkTuning(cmdEnv);
    if (typeof values.dotenv === 'string' && mod.spec.options.dotenv) {
      // before the command acts: a bad path found only at the end failed the job after it had pushed or edited
      const { checkDotenvTarget } = await import('./core/dotenv.js');
      checkDotenvTarget(values.dotenv);
    }
    const res = await mod.run({ log, env: cmdEnv, cwd: process.cwd() }, { values, positionals: parsed.positionals });
    const dotenvFile = typeof values.dotenv === 'string' ? values.dotenv : undefined;
    if (dotenvFile && res.outputs) {
      const { writeDotenv } = await import('./core/dotenv.js');
      await writeDotenv(dotenvFile, res.outputs);
    }
    const code = res.exitCode ?? ExitCode.ok;
    log.summary(code === 0, `${entry.name}: ${res.summary} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
    return code;
  } catch (e) {
    if (isGitopsError(e)) {
      printError(log, e);
      log.summary(false, `${entry.name} failed: ${e.message.split('\n')[0]}`);
      return e.exitCode;
    }
    log.error(`internal error in ${entry.name}: ${(e as Error)?.message ?? String(e)}`);
    if (log.verbose && (e as Error)?.stack) log.info(mask((e as Error).stack!));
    log.info('  this is a bug in gitops-ci; please report it with the output above (rerun with --verbose for a stack trace)');
    log.summary(false, `${entry.name} failed: internal error`);
    return ExitCode.failed;
  }
}

const isEntry = process.argv[1] && /gitops-ci(\.[cm]?js|\.ts)?$|cli\.([cm]?js|ts)$/.test(process.argv[1]);
/**
 * NODE_DEBUG makes node itself print what it does (http: request headers such as Authorization;
 * child_process: the spawn environment, with git's password) straight to stderr, past the masker. Node reads
 * it once at start-up, so removing it later changes nothing: run ourselves again without it.
 */
function rerunWithoutNodeDebug(): boolean {
  if (!process.env.NODE_DEBUG && !process.env.NODE_DEBUG_NATIVE) return false;
  process.stderr.write('warning: NODE_DEBUG is set and ignored: node debug output would bypass secret masking; use --verbose instead\n');
  const env = { ...process.env };
  delete env.NODE_DEBUG;
  delete env.NODE_DEBUG_NATIVE;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  // node's own child_process debug line (the spawn options, environment included) is written while spawn
  // runs: hold stderr back for that call
  const write = process.stderr.write;
  process.stderr.write = (() => true) as typeof write;
  let child;
  try {
    child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env, stdio: 'inherit' });
  } finally {
    process.stderr.write = write;
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, sig) => {
    process.exitCode = code ?? (sig === 'SIGINT' ? 130 : sig === 'SIGTERM' ? 143 : 1);
  });
  child.on('error', () => (process.exitCode = ExitCode.failed));
  return true;
}

if (isEntry && !rerunWithoutNodeDebug()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Once nothing is left to run (the event loop empty: every write flushed, every child and timer done;
      // 'exit' handlers still run), end without tearing down the heap: after set-image on 1,000 overlays the
      // teardown of a natural exit took 14-45 ms, median 25, against 9-19, median 11 (bench/set-image.ts).
      process.once('beforeExit', () => process.exit());
    },
    (e) => {
      process.stderr.write(mask(`fatal: ${(e as Error)?.stack ?? String(e)}\n`));
      process.exitCode = ExitCode.failed;
    },
  );
}
