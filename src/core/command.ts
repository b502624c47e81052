/**
 * The shape of a command. Each command lives in src/commands/<name>.ts and exports `spec` and `run`;
 * src/commands/index.ts lists them (name, summary, lazy loader) so that `--help` and `--version`
 * load nothing heavy.
 */
import type { Logger } from './log.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** placeholder shown in help, e.g. DIR */
  value?: string;
  description: string;
  /** shown in help as the default; the command applies it */
  default?: string;
  /** environment variables the command falls back to, shown in help */
  env?: string[];
}

export interface CommandSpec {
  name: string;
  usage: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** how positionals are described in help, e.g. [['EXPR...', 'image expressions']] */
  positionals?: Array<[string, string]>;
  /** extra help text (examples) */
  examples?: string[];
}

export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface ParsedArgs {
  values: Values;
  positionals: string[];
}

export interface CommandContext {
  log: Logger;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CommandResult {
  /** one-line summary printed last */
  summary: string;
  /** default 0 */
  exitCode?: number;
  /** written to --dotenv FILE when the command has that option and it is given */
  outputs?: Record<string, string | undefined>;
}

export interface CommandModule {
  spec: CommandSpec;
  run(ctx: CommandContext, args: ParsedArgs): Promise<CommandResult>;
}

export interface CommandEntry {
  name: string;
  summary: string;
  /** set while the command is planned but not built; the value names the issue */
  unavailable?: string;
  load?: () => Promise<CommandModule>;
}

/** helpers for reading parsed values with the right type */
export function str(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}
export function strs(v: Values, k: string): string[] {
  const x = v[k];
  if (Array.isArray(x)) return x.map(String);
  return typeof x === 'string' ? [x] : [];
}
export function bool(v: Values, k: string): boolean {
  return v[k] === true;
}

/**
 * Empty means unset: a GitLab input or variable left empty (`config-branch: ""`, `GITOPS_CONFIG_BRANCH=`) must
 * fall through to the next default, as an absent one does. The CLI applies these two once, to the environment
 * commands see (ctx.env) and to the parsed flag values, so that no command has to remember it.
 */
export function withoutEmptyVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}
export function withoutEmptyValues(values: Values): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === '') continue;
    if (Array.isArray(v)) {
      const kept = (v as Array<string | boolean>).filter((x) => x !== '');
      if (kept.length) out[k] = kept as string[] | boolean[];
      continue;
    }
    out[k] = v;
  }
  return out;
}
