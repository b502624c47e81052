/**
 * App-repo merge requests: what bump (or promote) would change in each given overlay of the config repo. The
 * same sparse clone as bump (overlays and what they reference), the same edit, rendered before and after;
 * nothing is committed or pushed.
 */
import { join } from 'node:path';
import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { envOf } from '../bump/message.js';
import type { Remote } from '../git/url.js';
import { pinFromExpr } from '../edit/kustomization.js';
import type { ImageExpr } from '../kustomize/image-expr.js';
import { renderOverlay } from '../kustomize/overlay.js';
import { diffRendered, redactRenderError, type DiffSection } from '../render/diff.js';
import { Checkout, type Located } from '../writeback/checkout.js';
import { PreviewErrors } from './errors.js';

/** renders an overlay; a failure becomes the section's error text (paths relative to the repo) */
export async function renderOrError(root: string, overlay: string, log: Logger, when: string, deadline?: number): Promise<{ yaml?: string; error?: string }> {
  try {
    // the content is the merge request's: checked and sandboxed (src/render/sandbox.ts)
    return { yaml: await log.section(`kustomize build ${overlay} (${when})`, () => renderOverlay(join(root, overlay), { root, deadline }), { collapsed: true }) };
  } catch (e) {
    if (!isGitopsError(e)) throw e;
    // out of time: the whole preview ends (exit 4), it is not one overlay's problem
    if (e.kind === 'timeout') throw e;
    return { error: redactRenderError([e.message, ...(e.details ?? [])].join('\n').split(`${root}/`).join('')) };
  }
}

export async function previewEdits(o: { remote: Remote; branch: string; overlays: string[]; exprs: ImageExpr[]; env: NodeJS.ProcessEnv; log: Logger; deadline: number; sshAcceptNew: boolean }): Promise<{ sections: DiffSection[]; head: string; changed: number }> {
  const { log } = o;
  const pins = o.exprs.map(pinFromExpr);
  // the shared write-back checkout (src/writeback/checkout.ts): the clone in a cleanup temp dir, every read and
  // write through resolveInside (a symlinked kustomization.yaml out of the clone is refused, --dry-run included),
  // the file of each overlay located through the edit layer
  const located = new Map<string, Located>();
  const co = await Checkout.open({ remote: o.remote, branch: o.branch, paths: o.overlays, env: o.env, log, sshAcceptNew: o.sshAcceptNew, deadline: o.deadline, purpose: 'preview' }, async (c) => {
    const missing: string[] = [];
    for (const ov of o.overlays) {
      const l = (await c.typeOf(ov)) === 'tree' ? await c.locate(ov, 'auto') : undefined;
      if (l) located.set(ov, l);
      else missing.push(ov);
    }
    if (missing.length) {
      throw fail.usage(PreviewErrors.OVERLAY_NOT_FOUND, `overlay${missing.length > 1 ? 's' : ''} not found on branch ${o.branch}: ${missing.join(', ')}`, { where: `${o.remote.display} (${o.branch})`, hint: '--dir is relative to the config repo root and must hold a kustomization.yaml' });
    }
    await c.closure(o.overlays);
  });
  try {
    const head = await co.clone.head();
    const sections: DiffSection[] = [];
    let changed = 0;
    for (const ov of o.overlays) {
      const { target, file } = located.get(ov)!;
      const text = await co.read(file);
      const res = target.edit(text, pins, file);
      const title = `${envOf(ov)} (${ov})`;
      if (res.text === text) {
        sections.push({ title, diffs: [] });
        continue;
      }
      const before = await renderOrError(co.dir, ov, log, 'before', o.deadline);
      await co.write(file, res.text);
      const after = await renderOrError(co.dir, ov, log, 'after', o.deadline);
      if (before.error || after.error) {
        sections.push({ title, diffs: [], error: (after.error ?? before.error)! });
        continue;
      }
      const diffs = diffRendered(before.yaml!, after.yaml!, ov);
      changed += diffs.length;
      sections.push({ title, diffs });
    }
    return { sections, head, changed };
  } finally {
    await co.close();
  }
}
