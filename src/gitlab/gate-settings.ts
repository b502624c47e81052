/**
 * The gate's settings from places a merge request cannot change, merged with the flags; the stricter wins.
 *
 *  1. CI/CD variables (set them in Settings → CI/CD → Variables, protected): GITOPS_GATE_APPROVALS (N),
 *     GITOPS_GATE_APPROVERS (comma-separated users and @groups), GITOPS_GATE_ALLOW_AUTHOR (true|false),
 *     GITOPS_GATE_COMMITTER_CHECK (strict|gitlab|off). Project variables take precedence over variables of
 *     .gitlab-ci.yml, so an MR's CI file cannot override them
 *     (https://docs.gitlab.com/ci/variables/#cicd-variable-precedence).
 *  2. The `gate:` section of a settings file (default `.gitops-ci.yml`) as it is on the MR's TARGET branch, read
 *     through the API (never from the MR's checkout): an MR can change the file only by merging.
 *
 * "Stricter wins": approvals = the largest; approvers = every list given is a constraint (an approver must be in
 * each); the author counts only if no source forbids it; the committer check is the strictest named
 * (strict > gitlab > off).
 */
import { parse } from 'yaml';
import { fail } from '../core/errors.js';
import { COMMITTER_CHECKS, type CommitterCheck } from './approvals.js';
import { GitlabErrors } from './errors.js';

export interface GateSettings {
  approvals?: number;
  approvers?: string[];
  allowAuthor?: boolean;
  committerCheck?: CommitterCheck;
}

export interface SourcedSettings extends GateSettings {
  /** e.g. `CI/CD variables`, `.gitops-ci.yml on main` */
  source: string;
}

export interface EffectiveSettings {
  required: number;
  /** each list is one constraint */
  approverSets: string[][];
  allowAuthor: boolean;
  committerCheck: CommitterCheck;
  /** one line per source that set something, for the log */
  sources: string[];
}

const nz = (v: string | undefined) => (v != null && v.trim() !== '' ? v.trim() : undefined);

function bad(source: string, what: string): never {
  throw fail.usage(GitlabErrors.SETTINGS, `the gate's settings in ${source} are malformed: ${what}`, {
    where: source,
    hint: 'fix them there (docs/commands/gate.md, settings the MR cannot change); the gate does not run on settings it cannot read',
  });
}

function approvalsValue(v: unknown, source: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) bad(source, `approvals ${JSON.stringify(v)} is not a whole number of 1 or more`);
  return n;
}
function boolValue(v: unknown, source: string, key: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return /^true$/i.test(v.trim());
  return bad(source, `${key} ${JSON.stringify(v)} is not true or false`);
}
function checkValue(v: unknown, source: string): CommitterCheck {
  if (typeof v === 'string' && (COMMITTER_CHECKS as string[]).includes(v.trim())) return v.trim() as CommitterCheck;
  return bad(source, `committer-check ${JSON.stringify(v)} is not one of ${COMMITTER_CHECKS.join(', ')}`);
}
function approversValue(v: unknown, source: string): string[] {
  const list = typeof v === 'string' ? v.split(',') : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : bad(source, 'approvers is not a list of names');
  const out = list.map((x) => x.trim()).filter(Boolean);
  for (const a of out) if (!/^@?[A-Za-z0-9_.][A-Za-z0-9_.\-/]*$/.test(a)) bad(source, `approver ${JSON.stringify(a)} is not a username or @group path`);
  return out;
}

/** GITOPS_GATE_* variables; undefined when none is set */
export function settingsFromEnv(env: NodeJS.ProcessEnv): SourcedSettings | undefined {
  const source = 'the CI/CD variables GITOPS_GATE_*';
  const s: SourcedSettings = { source };
  if (nz(env.GITOPS_GATE_APPROVALS)) s.approvals = approvalsValue(nz(env.GITOPS_GATE_APPROVALS), source);
  if (nz(env.GITOPS_GATE_APPROVERS)) s.approvers = approversValue(nz(env.GITOPS_GATE_APPROVERS), source);
  if (nz(env.GITOPS_GATE_ALLOW_AUTHOR)) s.allowAuthor = boolValue(nz(env.GITOPS_GATE_ALLOW_AUTHOR), source, 'GITOPS_GATE_ALLOW_AUTHOR');
  if (nz(env.GITOPS_GATE_COMMITTER_CHECK)) s.committerCheck = checkValue(nz(env.GITOPS_GATE_COMMITTER_CHECK), source);
  return Object.keys(s).length > 1 ? s : undefined;
}

/** the `gate:` section of the settings file's text; undefined when the file has none */
export function settingsFromFile(text: string, source: string): SourcedSettings | undefined {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 10 });
  } catch (e) {
    return bad(source, `not YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return undefined;
  if (typeof doc !== 'object' || Array.isArray(doc)) bad(source, 'the file is not a mapping');
  const g = (doc as Record<string, unknown>).gate;
  if (g === undefined || g === null) return undefined;
  if (typeof g !== 'object' || Array.isArray(g)) bad(source, '`gate:` is not a mapping');
  const s: SourcedSettings = { source };
  for (const [k, v] of Object.entries(g as Record<string, unknown>)) {
    if (k === 'approvals') s.approvals = approvalsValue(v, source);
    else if (k === 'approvers') s.approvers = approversValue(v, source);
    else if (k === 'allow-author') s.allowAuthor = boolValue(v, source, k);
    else if (k === 'committer-check') s.committerCheck = checkValue(v, source);
    else bad(source, `unknown key gate.${k} (approvals, approvers, allow-author, committer-check)`);
  }
  return s;
}

const rank: Record<CommitterCheck, number> = { off: 0, gitlab: 1, strict: 2 };

/** flags + protected sources → what the gate applies; the stricter value of each setting wins */
export function mergeSettings(flags: GateSettings, protectedSources: SourcedSettings[]): EffectiveSettings | { missing: true } {
  const all: Array<GateSettings & { source?: string }> = [flags, ...protectedSources];
  const counts = all.map((s) => s.approvals).filter((n): n is number => n !== undefined);
  if (!counts.length) return { missing: true };
  const approverSets = all.map((s) => s.approvers ?? []).filter((l) => l.length);
  // the author counts only when asked for and no source forbids it
  const allowAuthor = all.some((s) => s.allowAuthor === true) && !all.some((s) => s.allowAuthor === false);
  const checks = all.map((s) => s.committerCheck).filter((c): c is CommitterCheck => !!c);
  // default gitlab: the write-back identity's email belongs to no user, and under strict it would block every MR
  // that carries a write-back commit (docs/commands/gate.md, committers)
  const committerCheck = checks.length ? checks.reduce((a, b) => (rank[b] > rank[a] ? b : a)) : 'gitlab';
  const sources = protectedSources.map((s) => {
    const parts: string[] = [];
    if (s.approvals !== undefined) parts.push(`approvals ${s.approvals}`);
    if (s.approvers) parts.push(`approvers ${s.approvers.join(',')}`);
    if (s.allowAuthor !== undefined) parts.push(`allow-author ${s.allowAuthor}`);
    if (s.committerCheck) parts.push(`committer-check ${s.committerCheck}`);
    return `${s.source}: ${parts.join(', ')}`;
  });
  return { required: Math.max(...counts), approverSets, allowAuthor, committerCheck, sources };
}
