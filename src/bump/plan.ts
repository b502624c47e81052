/**
 * A bump's plan: read, guard and edit every overlay in a local tree of the config repo (src/writeback/tree.ts),
 * the same for the git checkout and the API write-back (src/writeback/api.ts). Pure with respect to the remote:
 * it writes only the local tree; the caller commits and pushes (git) or creates the commit (API).
 */
import { fail, isGitopsError } from '../core/errors.js';
import type { ImageEntry } from '../kustomize/edit.js';
import type { Pin } from '../edit/target.js';
import type { Guard } from './guard.js';
import { rerunMayRollBack, rerunOverRollback } from './rollback.js';
import { envOf, type Change } from './message.js';
import { diffText } from './kustomize.js';
import { BumpErrors } from './errors.js';
import type { KindChoice, LocalTree, Located } from '../writeback/tree.js';
import { entryOf, refString } from '../writeback/pins.js';
import type { BumpConfig, Skip } from './bump.js';

export interface Plan {
  changes: Change[];
  skipped: Skip[];
  files: string[];
  diff: string;
  /** per changed overlay, the entries as written (for the render check) */
  written: Array<{ overlay: string; target: Located['target']; entries: ImageEntry[] }>;
}

/** the file in the overlay that pins images (inside the clone; one kind, one file), or undefined */
export function findFile(co: LocalTree, overlay: string, kind: KindChoice): Promise<Located | undefined> {
  return co.locate(overlay, kind, (found) => fail.usage(BumpErrors.OVERLAY, `${overlay} holds more than one kustomization file (${found.join(', ')})`, { where: overlay, hint: 'keep one of them' }));
}

/** Read, guard and edit every overlay in the clone's work tree. Pure with respect to the remote. */
export async function plan(co: LocalTree, cfg: BumpConfig, attempt: number, guard: Guard): Promise<Plan> {
  const { log } = cfg;
  const out: Plan = { changes: [], skipped: [], files: [], diff: '', written: [] };
  const guardOn = !cfg.allowDowngrade && !!(cfg.origin.commit || cfg.origin.pipelineId);
  for (const overlay of cfg.overlays) {
    const located = await findFile(co, overlay, cfg.targetKind);
    if (!located) {
      throw fail.failed(BumpErrors.CONFLICT, `${overlay} no longer holds a kustomization (or another file that pins images) at the branch's new tip`, {
        where: `${overlay} on ${cfg.branch}`,
        hint: 'another change removed or moved the overlay while this bump ran; check the branch and re-run with the right --dir',
      });
    }
    const { target, file } = located;
    const text = await co.read(file);
    let current;
    try {
      current = target.images(text, file);
    } catch (e) {
      if (attempt > 1 && isGitopsError(e)) {
        throw fail.failed(BumpErrors.CONFLICT, `${file} cannot be read any more at the branch's new tip: ${e.message}`, { where: e.where ?? file, details: e.details, hint: 'another change broke the overlay while this bump ran; fix it on the branch, then re-run', cause: e });
      }
      throw e;
    }
    const apply: Pin[] = [];
    for (const pin of cfg.pins) {
      const preview = target.edit(text, [pin], file).changes.find((c) => c.pin.name === pin.name);
      if (!preview || !preview.changed) continue;
      const cur = current.find((c) => c.name === pin.name);
      const wanted = refString(preview.after);
      if (cur && guardOn && refString(cur) !== wanted) {
        // provenance only from write-back commits, checked against the GitLab API where a token allows (guard.ts)
        const v = await guard.check(file, pin.name, refString(cur));
        if (v) {
          log.debug(`stale guard ${overlay} ${pin.name}: ${v.by}: ${v.why} (trusted: ${v.how})`);
          // a re-run of an old deploy job (GitLab's Rollback button) is refused or rolls back, never a silent skip (src/bump/rollback.ts)
          if (v.stale && !(await rerunMayRollBack(guard.history, { file, overlay, image: pin.name, wanted, current: refString(cur), origin: cfg.origin, env: cfg.env, log }))) {
            out.skipped.push({ overlay, image: pin.name, current: refString(cur), wanted, why: `${v.why}; trusted: ${v.how}` });
            continue;
          }
          // the current value was set by a rollback: a re-run of the deploy job it rolled back from does not undo it silently
          if (!v.stale && v.trusted && v.rollbackTo) await rerunOverRollback(guard.history, { file, overlay, image: pin.name, wanted, current: refString(cur), origin: cfg.origin, env: cfg.env, log, rollback: v.commit, rollbackTo: v.rollbackTo });
        } else if (guard.history.limited) {
          // the history goes on beyond what was read: an older pipeline may be replacing a newer image here
          log.warn(`stale guard ${overlay} ${pin.name}: the history goes back further than --history-depth ${cfg.historyDepth}, and no bump commit records ${refString(cur)} within ${cfg.historyDepth} commits; not guarded (raise --history-depth to guard it)`);
        } else {
          log.debug(`stale guard ${overlay} ${pin.name}: no bump commit records ${refString(cur)} (commits by the write-back identity only) within ${cfg.historyDepth} commits; not guarded`);
        }
      }
      apply.push(pin);
    }
    if (!apply.length) continue;
    const res = target.edit(text, apply, file);
    for (const w of res.warnings) log.warn(`${file}: ${w}`);
    if (res.text === text) continue;
    await co.write(file, res.text);
    out.files.push(file);
    out.diff += diffText(text, res.text, file);
    out.written.push({ overlay, target, entries: res.changes.filter((c) => c.changed).map((c) => entryOf(c.after)) });
    for (const c of res.changes) {
      if (!c.changed) continue;
      out.changes.push({ overlay, env: envOf(overlay), image: c.pin.name, before: c.before ? refString(c.before) : undefined, after: refString(c.after) });
    }
  }
  return out;
}

