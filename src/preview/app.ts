/**
 * App-repo merge requests: what bump (or promote) would change in each given overlay of the config repo. The
 * same sparse clone as bump (overlays and what they reference), the same edit, rendered before and after;
 * nothing is committed or pushed.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fail, isGitopsError } from '../core/errors.js';
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
import { PreviewErrors } from './errors.js';

async function findFile(root: string, overlay: string): Promise<string | undefined> {
  for (const f of KUSTOMIZATION_FILES) {
    const s = await stat(join(root, overlay, f)).catch(() => undefined);
    if (s?.isFile()) return posix.join(overlay, f);
  }
  return undefined;
}

/** renders an overlay; a failure becomes the section's error text (paths relative to the repo) */
export async function renderOrError(root: string, overlay: string, log: Logger, when: string): Promise<{ yaml?: string; error?: string }> {
  try {
    return { yaml: await log.section(`kustomize build ${overlay} (${when})`, () => renderOverlay(join(root, overlay)), { collapsed: true }) };
  } catch (e) {
    if (!isGitopsError(e)) throw e;
    return { error: redactRenderError([e.message, ...(e.details ?? [])].join('\n').split(`${root}/`).join('')) };
  }
}

export async function previewEdits(o: { remote: Remote; branch: string; overlays: string[]; exprs: ImageExpr[]; env: NodeJS.ProcessEnv; log: Logger; deadline: number; sshAcceptNew: boolean }): Promise<{ sections: DiffSection[]; head: string; changed: number }> {
  const { log } = o;
  const session = await GitSession.open(o.remote, { env: o.env, log, sshAcceptNew: o.sshAcceptNew, deadline: o.deadline });
  const parent = await mkdtemp(join(tmpdir(), 'gitops-ci-preview-'));
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
      const text = await readFile(join(dir, file), 'utf8');
      const res = editKustomizationText(text, o.exprs, file);
      const title = `${envOf(ov)} (${ov})`;
      if (res.text === text) {
        sections.push({ title, diffs: [] });
        continue;
      }
      const before = await renderOrError(dir, ov, log, 'before');
      await writeFile(join(dir, file), res.text);
      const after = await renderOrError(dir, ov, log, 'after');
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
    await rm(parent, { recursive: true, force: true });
  }
}
