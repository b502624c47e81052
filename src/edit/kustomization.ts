/**
 * The kustomization target: the `images:` list of a kustomization file, with the semantics of
 * `kustomize edit set image` (src/kustomize/edit.ts does the splicing; this file adapts it to EditTarget).
 * Rendered by `kustomize build` / `kubectl kustomize`.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { editKustomizationText, readImagesWithLines, type ImageChange, type ImageEntry } from '../kustomize/edit.js';
import { KEEP, type ImageExpr } from '../kustomize/image-expr.js';
import type { EditOptions, EditResult, EditTarget, ImageRef, Pin, PinChange } from './target.js';

/** kustomize's recognised names, in its order (konfig.RecognizedKustomizationFileNames) */
export const KUSTOMIZATION_FILE_NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/** A pin as kustomize's image expression (no text on the way: the fields are carried over). */
export function exprFromPin(p: Pin): ImageExpr {
  const raw = `${p.name}${p.newName !== undefined ? `=${p.newName}` : ''}${p.tag !== undefined ? `:${p.tag}` : ''}${p.digest !== undefined ? `@${p.digest}` : ''}`;
  const e: ImageExpr = { raw, name: p.name, keepNewName: p.newName === KEEP, keepNewTag: p.tag === KEEP, keepDigest: p.digest === KEEP };
  if (p.newName !== undefined) e.newName = p.newName;
  if (p.tag !== undefined) e.newTag = p.tag;
  if (p.digest !== undefined) e.digest = p.digest;
  return e;
}

/** An image expression as a pin. */
export function pinFromExpr(e: ImageExpr): Pin {
  const p: Pin = { name: e.name };
  if (e.newName !== undefined) p.newName = e.newName;
  if (e.newTag !== undefined) p.tag = e.newTag;
  if (e.digest !== undefined) p.digest = e.digest;
  return p;
}

function refOf(e: ImageEntry, line: number): ImageRef {
  const r: ImageRef = { name: e.name, line };
  if (e.newName !== undefined) r.newName = e.newName;
  if (e.newTag !== undefined) r.tag = e.newTag;
  if (e.digest !== undefined) r.digest = e.digest;
  return r;
}

function pinChange(pin: Pin, c: ImageChange, lines: Map<string, number>): PinChange {
  const line = lines.get(c.name) ?? 0;
  return { pin, ...(c.before ? { before: refOf(c.before, line) } : {}), after: refOf(c.after, line), changed: c.changed };
}

export const kustomization: EditTarget = {
  kind: 'kustomization',
  summary: 'the images: list of a kustomization (kustomize edit set image semantics)',
  async find(dir: string): Promise<string[]> {
    const names = await readdir(dir).catch(() => [] as string[]);
    return KUSTOMIZATION_FILE_NAMES.filter((n) => names.includes(n)).map((n) => join(dir, n));
  },
  detect(_text: string, file: string): boolean {
    return KUSTOMIZATION_FILE_NAMES.includes(basename(file));
  },
  images(text: string, file: string): ImageRef[] {
    return readImagesWithLines(text, file).map(({ entry, line }) => refOf(entry, line));
  },
  edit(text: string, pins: Pin[], file: string, opts: EditOptions = {}): EditResult {
    const where = opts.where ?? file;
    const r = editKustomizationText(text, pins.map(exprFromPin), where);
    const lines = new Map<string, number>();
    if (r.text !== text || r.changes.length) {
      for (const { entry, line } of readImagesWithLines(r.text, where)) if (!lines.has(entry.name)) lines.set(entry.name, line);
    }
    const byName = new Map(pins.map((p) => [p.name, p] as const));
    return { text: r.text, changes: r.changes.map((c) => pinChange(byName.get(c.name) ?? { name: c.name }, c, lines)), warnings: r.warnings ?? [] };
  },
  async render(dir: string): Promise<string> {
    const { renderOverlay } = await import('../kustomize/overlay.js');
    return renderOverlay(dir);
  },
};
