/**
 * Pins as objects on their whole way, from where they are read (the source overlay, Argo CD's deployed
 * revision) to where they are written (src/edit/: text in, text out). These are the few conversions the
 * write-back needs at its edges, none of them through an image expression string:
 * - the reference string a commit trailer and the stale guard record (`repo[:tag][@digest]`, refOf of
 *   src/bump/message.ts), from an edit-layer ImageRef;
 * - kustomize's images[] entry shape, for the render check (src/kustomize/overlay.ts renderedMatches).
 */
import type { ImageEntry } from '../kustomize/edit.js';
import { refOf } from '../bump/message.js';
import type { ImageRef, Pin } from '../edit/target.js';

/** an edit-layer reference as kustomize's images[] entry (newTag is kustomize's name for the tag) */
export function entryOf(r: Pick<ImageRef, 'name' | 'newName' | 'tag' | 'digest'>): ImageEntry {
  const e: ImageEntry = { name: r.name };
  if (r.newName) e.newName = r.newName;
  if (r.tag) e.newTag = r.tag;
  if (r.digest) e.digest = r.digest;
  return e;
}

/** the full reference a pinned image resolves to: newName (or name), :tag, @digest */
export function refString(r: Pick<ImageRef, 'name' | 'newName' | 'tag' | 'digest'>): string {
  return refOf(entryOf(r));
}

/** how a pin reads in logs and messages: NAME[=NEWNAME][:TAG][@DIGEST] */
export function pinText(p: Pin): string {
  return `${p.name}${p.newName !== undefined ? `=${p.newName}` : ''}${p.tag !== undefined ? `:${p.tag}` : ''}${p.digest !== undefined ? `@${p.digest}` : ''}`;
}
