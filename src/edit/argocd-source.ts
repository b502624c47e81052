/**
 * Argo CD Image Updater's git write-back file, `.argocd-source-<app>.yaml` (or `.argocd-source.yaml`) in the
 * application's source path: Argo CD merges it over the Application's source (`kustomize.images`,
 * `helm.parameters` with forcestring). Pinning there lets a team move from Image Updater without changing what
 * Argo CD reads. https://argo-cd.readthedocs.io/en/stable/user-guide/parameters/#store-overrides-in-git
 *
 * TARGET (pin): `kustomize.images:IMAGE`, `helm.parameters:NAME`, `helm.valuesObject.PATH`.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isMap } from 'yaml';
import { editSources, parseArgoTarget, pickSlot, sourceImages, type Source } from './application.js';
import { EditErrors } from './errors.js';
import { pinWith } from './pin.js';
import type { ScalarSlot } from './scalar.js';
import type { EditOptions, EditResult, EditTarget, ImageRef, Pin, PinRequest } from './target.js';
import { parseYamlFile, refuse, type YamlFile } from './yamlfile.js';

const NAME = /^\.argocd-source(?:-[A-Za-z0-9._-]+)?\.ya?ml$/;

function roots(f: YamlFile): Source[] {
  return f.docs.filter((d) => isMap(d.contents)).map((d) => ({ map: d.contents as never, prefix: [], qualifier: '' }));
}

export function argocdSourceSlot(f: YamlFile, target: string, imageRef: boolean): ScalarSlot {
  const t = parseArgoTarget(target, false);
  const s = roots(f);
  if (!s.length) throw refuse(f, EditErrors.NOT_FOUND, 0, `${f.file} is empty or not a mapping`, 'an .argocd-source file holds kustomize: {images: [...]} or helm: {parameters: [...]}');
  return pickSlot(f, s, t, imageRef, target);
}

export const argocdSource: EditTarget = {
  kind: 'argocd-source',
  summary: "Argo CD parameter overrides (.argocd-source-<app>.yaml, Image Updater's git write-back): kustomize.images, helm.parameters",
  async find(dir: string): Promise<string[]> {
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    return names.filter((n) => NAME.test(n)).map((n) => join(dir, n));
  },
  detect(_text: string, file: string): boolean {
    return NAME.test(basename(file));
  },
  pin(text: string, file: string, req: PinRequest, opts?: EditOptions): EditResult {
    return pinWith((f, target, imageRef) => [argocdSourceSlot(f, target, imageRef)], text, file, req, opts);
  },
  images(text: string, file: string): ImageRef[] {
    const f = parseYamlFile(text, file);
    return sourceImages(f, roots(f)).map((i) => i.ref);
  },
  edit(text: string, pins: Pin[], file: string, opts: EditOptions = {}): EditResult {
    const f = parseYamlFile(text, opts.where ?? file);
    return editSources(f, text, roots(f), pins);
  },
};
