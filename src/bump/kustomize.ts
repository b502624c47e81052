/**
 * What bump uses of the kustomize area (src/kustomize/**, owned by set-image): the diff, and the render check
 * of the overlays it changed. The edit itself is editKustomizationText, called per overlay by bump.ts because
 * the stale guard can drop an image in one overlay and keep it in another. The render runs in the shared
 * write-back checkout (src/writeback/checkout.ts: inside the clone, errors relative to it, literals redacted).
 */
import { fail, isGitopsError } from '../core/errors.js';
import type { ImageEntry } from '../kustomize/edit.js';
import { imagesInYaml, renderedMatches, unifiedDiff } from '../kustomize/overlay.js';
import type { Logger } from '../core/log.js';
import type { EditTarget } from '../edit/target.js';
import type { LocalTree } from '../writeback/tree.js';
import { refOf } from './message.js';

export function diffText(before: string, after: string, path: string): string {
  return unifiedDiff(before, after, path);
}

/** `kustomize build` each changed overlay in the clone and check that the new images are used. */
export async function renderOverlays(co: LocalTree, overlays: Array<{ overlay: string; target: EditTarget; entries: ImageEntry[] }>, log: Logger): Promise<void> {
  for (const { overlay, target, entries } of overlays) {
    let out: string | undefined;
    try {
      out = await co.render(overlay, { target });
    } catch (e) {
      if (isGitopsError(e)) throw fail[e.kind](e.code, e.message, { where: e.where, details: e.details, hint: `${e.hint ?? ''}; nothing was pushed`, cause: e });
      throw e;
    }
    if (out === undefined) {
      log.warn(`--render: ${overlay} is a ${target.kind} target, which has no renderer here; not rendered`);
      continue;
    }
    const refs = imagesInYaml(out);
    const unused = entries.filter((en) => !refs.some((r) => renderedMatches(r, en)));
    if (unused.length) {
      throw fail.usage('EKUSTOMIZE_IMAGE_UNUSED', `no resource rendered from ${overlay} uses ${unused.map(refOf).join(', ')}`, {
        where: overlay,
        details: refs.length ? ['images in the rendered output:', ...[...new Set(refs)].map((x) => `  ${x}`)] : ['the rendered output has no image fields'],
        hint: 'images[].name must equal the repository in the resources (without tag); check the name, or drop --render; nothing was pushed',
      });
    }
  }
}
