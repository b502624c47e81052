/**
 * App-repo merge requests: what bump (or promote) would change in each given overlay of the config repo. The
 * same sparse clone as bump (overlays and what they reference), the same edit, rendered before and after;
 * nothing is committed or pushed.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { removeTempDir, tempDir } from '../core/cleanup.js';
import { fail, isGitopsError } from '../core/errors.js';
import { resolveInside } from '../core/fsutil.js';
import type { Logger } from '../core/log.js';
import { checkoutReferences, KUSTOMIZATION_FILES } from '../bump/closure.js';
import { envOf } from '../bump/message.js';
import { SparseClone } from '../git/clone.js';
import { GitSession } from '../git/session.js';
import type { Remote } from '../git/url.js';
import { editKustomizationText } from '../kustomize/edit.js';
import type { ImageExpr } from '../kustomize/image-expr.js';
import { renderOverlay } from '../kustomize/overlay.js';
import { diffRendered, redactRenderError, type DiffSection } from '../render/diff.js';
import { KustomizeErrors } from '../kustomize/errors.js';
import { PreviewErrors } from './errors.js';

async function findFile(root: string, overlay: string): Promise<string | undefined> {
  for (const f of KUSTOMIZATION_FILES) {
    const s = await stat(join(root, overlay, f)).catch(() => undefined);
    if (s?.isFile()) return posix.join(overlay, f);
  }
  return undefined;
}

/** the real path of a repo-relative file, refused when it (or a symlink on the way) leads out of the clone */
async function inside(root: string, rel: string, remote: string): Promise<string> {
  const r = await resolveInside(root, join(root, rel));
  if (!r.inside) {
    throw fail.usage(KustomizeErrors.OUTSIDE, `${rel} leads outside the clone of ${remote} (to ${r.real}) through a symlink; it is not read or written`, {
      where: rel,
      hint: 'keep the overlay and its kustomization file inside the config repository',
    });
  }
  return r.real;
}

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
  const session = await GitSession.open(o.remote, { env: o.env, log, sshAcceptNew: o.sshAcceptNew, deadline: o.deadline });
  const parent = tempDir('gitops-ci-preview-');
  try {
    const dir = join(parent, 'config');
    const clone = await log.section(`clone ${o.remote.display} ${o.branch} (shallow, sparse: ${o.overlays.join(' ')})`, async () => {
      const c = await SparseClone.clone(session, { dir, branch: o.branch, paths: o.overlays });
      const missing: string[] = [];
      for (const ov of o.overlays) if ((await c.typeOf(ov)) !== 'tree' || !(await findFile(dir, ov))) missing.push(ov);
      if (missing.length) {
        throw fail.usage(PreviewErrors.OVERLAY_NOT_FOUND, `overlay${missing.length > 1 ? 's' : ''} not found on branch ${o.branch}: ${missing.join(', ')}`, { where: `${o.remote.display} (${o.branch})`, hint: '--dir is relative to the config repo root and must hold a kustomization.yaml' });
      }
      await checkoutReferences(o.overlays, { root: dir, typeOf: (p) => c.typeOf(p), add: (d) => c.addSparse(d) });
      return c;
    });
    const head = await clone.head();
    const sections: DiffSection[] = [];
    let changed = 0;
    for (const ov of o.overlays) {
      const file = (await findFile(dir, ov))!;
      // every read and write through the inside-the-clone check: a symlinked kustomization.yaml pointing out
      // of the clone is refused, never written through (--dry-run included)
      const real = await inside(dir, file, o.remote.display);
      const text = await readFile(real, 'utf8');
      const res = editKustomizationText(text, o.exprs, file);
      const title = `${envOf(ov)} (${ov})`;
      if (res.text === text) {
        sections.push({ title, diffs: [] });
        continue;
      }
      const before = await renderOrError(dir, ov, log, 'before', o.deadline);
      await writeFile(await inside(dir, file, o.remote.display), res.text);
      const after = await renderOrError(dir, ov, log, 'after', o.deadline);
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
    await session.close();
    removeTempDir(parent);
  }
}
