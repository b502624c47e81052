/**
 * The states an environment was in, newest first, and which of them Argo CD deployed: what `rollback` may
 * return to. A state is the images[] references of the overlay's kustomization after a commit that touched
 * it; it is *verified* when every app of the environment has it in its deploy history (status.history:
 * successful syncs), at that commit or at a later one with the same file (Argo CD may have jumped straight
 * to a later commit that did not change the overlay).
 */
import { fail } from '../core/errors.js';
import type { SparseClone } from '../git/clone.js';
import type { EditTarget } from '../edit/target.js';
import { refString } from '../writeback/pins.js';
import type { AppState } from '../status/state.js';
import { RollbackErrors } from '../rollback/errors.js';

export interface EnvVersion {
  /** the config commit that made this state */
  commit: string;
  /** images[].name → reference */
  refs: Record<string, string>;
  /** the file's blob id at that commit */
  blob: string;
  verified: boolean;
  /** when Argo CD deployed it (the oldest matching history entry of the first app) */
  deployedAt?: string;
}

const key = (refs: Record<string, string>) => JSON.stringify(Object.entries(refs).sort());

/** commits that touched `file`, newest first, deepening a shallow clone up to `depth` commits */
export async function versions(clone: SparseClone, target: EditTarget, file: string, depth: number, names: string[]): Promise<{ current: EnvVersion; earlier: EnvVersion[] }> {
  if (await clone.isShallow()) await clone.deepen(depth);
  const log = (await clone.local(['log', `-n${depth}`, '--format=%H', 'HEAD', '--', file])).split('\n').filter(Boolean);
  const at = async (c: string): Promise<EnvVersion | undefined> => {
    let text: string;
    let blob: string;
    try {
      blob = (await clone.local(['rev-parse', `${c}:${file}`])).trim();
      text = await clone.local(['show', `${c}:${file}`]);
    } catch {
      return undefined; // the file did not exist (or was renamed) there
    }
    let entries;
    try {
      entries = target.images(text, `${file} at ${c.slice(0, 12)}`);
    } catch {
      return undefined;
    }
    const refs: Record<string, string> = {};
    for (const e of entries) if (!names.length || names.includes(e.name)) refs[e.name] = refString(e);
    return { commit: c, refs, blob, verified: false };
  };
  const head = (await clone.head()).trim();
  const current = await at(head);
  if (!current) throw fail.usage(RollbackErrors.NO_TARGET, `${file} cannot be read at the branch tip`, { where: file });
  const earlier: EnvVersion[] = [];
  const seen = new Set([key(current.refs)]);
  for (const c of log) {
    const v = await at(c);
    if (!v || !Object.keys(v.refs).length) continue;
    // the newest commit of each distinct state; the current state is not a rollback target
    if (seen.has(key(v.refs))) continue;
    seen.add(key(v.refs));
    earlier.push(v);
  }
  return { current, earlier };
}

/**
 * marks the versions Argo CD deployed: every app has, in its history, a revision at which the overlay pins the
 * same references (the version's own commit, or any commit with the same images: a commit that changed only
 * other images of the file, or nothing Argo CD renders, leaves no history entry of its own)
 */
export async function verify(clone: SparseClone, target: EditTarget, file: string, vs: EnvVersion[], apps: AppState[], names: string[] = []): Promise<void> {
  const keyAt = new Map<string, string | undefined>();
  const refsKey = async (rev: string) => {
    if (!keyAt.has(rev)) keyAt.set(rev, await refsAt(clone, target, file, rev, names).then((r) => (r ? key(r) : undefined), () => undefined));
    return keyAt.get(rev);
  };
  for (const v of vs) {
    let all = apps.length > 0;
    let when: string | undefined;
    for (const a of apps) {
      let hit: { revision: string; deployedAt?: string } | undefined;
      for (const h of [...a.history].reverse()) {
        if (h.revision === v.commit || (h.revision && (await refsKey(h.revision)) === key(v.refs))) {
          hit = h;
          break;
        }
      }
      if (!hit) all = false;
      else when ??= hit.deployedAt;
    }
    v.verified = all;
    v.deployedAt = when;
  }
}

/** the overlay's references (images[].name → ref, only `names` when given) at `rev`; undefined when unreadable */
export async function refsAt(clone: SparseClone, target: EditTarget, file: string, rev: string, names: string[]): Promise<Record<string, string> | undefined> {
  let text: string;
  try {
    text = await clone.local(['show', `${rev}:${file}`]);
  } catch {
    return undefined;
  }
  try {
    const refs: Record<string, string> = {};
    for (const e of target.images(text, `${file} at ${rev.slice(0, 12)}`)) if (!names.length || names.includes(e.name)) refs[e.name] = refString(e);
    return refs;
  } catch {
    return undefined;
  }
}

export function describe(v: EnvVersion): string {
  return `${v.commit.slice(0, 12)}: ${Object.entries(v.refs).map(([n, r]) => `${n.slice(n.lastIndexOf('/') + 1)}=${r.startsWith(`${n}:`) || r.startsWith(`${n}@`) ? r.slice(n.length + 1) : r}`).join(', ')}${v.verified ? ` (deployed by Argo CD${v.deployedAt ? ` ${v.deployedAt}` : ''})` : ' (not in Argo CD\'s history)'}`;
}

/**
 * `--to`: STEPS (1 = the verified state before the current one), a config commit (7+ hex), or a digest
 * (sha256:…, the newest earlier state that pins it).
 */
export function pick(to: string, earlier: EnvVersion[]): EnvVersion {
  const t = to.trim().toLowerCase();
  const list = () => ['earlier states of the environment, newest first:', ...earlier.slice(0, 10).map((v) => `  ${describe(v)}`)];
  if (/^\d{1,3}$/.test(t)) {
    const n = Number(t);
    const verified = earlier.filter((v) => v.verified);
    if (n < 1 || n > verified.length) {
      throw fail.failed(RollbackErrors.NO_TARGET, `there ${verified.length === 1 ? 'is' : 'are'} ${verified.length} earlier state${verified.length === 1 ? '' : 's'} Argo CD deployed; --to ${n} goes further back`, { details: list(), hint: 'name a config commit or a digest from the list with --to, or raise --history-depth' });
    }
    return verified[n - 1]!;
  }
  if (/^sha256:[0-9a-f]{12,64}$/.test(t)) {
    const v = earlier.find((x) => Object.values(x.refs).some((r) => r.includes(`@${t}`)));
    if (!v) throw fail.failed(RollbackErrors.NO_TARGET, `no earlier state of the environment pins ${t}`, { details: list(), hint: 'pick a digest from the list, or raise --history-depth' });
    return v;
  }
  if (/^[0-9a-f]{7,64}$/.test(t)) {
    const v = earlier.find((x) => x.commit.startsWith(t));
    if (!v) throw fail.failed(RollbackErrors.NO_TARGET, `config commit ${t} is not an earlier state of the environment (a commit that changed its overlay)`, { details: list(), hint: 'pick a commit from the list, or raise --history-depth' });
    return v;
  }
  throw fail.usage(RollbackErrors.CONFIG, `--to ${JSON.stringify(to)} is neither a number of steps, a config commit nor a digest (sha256:…)`, { hint: 'e.g. --to 1, --to 4f1c0c0f, --to sha256:3f2a…' });
}
