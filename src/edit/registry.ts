/**
 * The edit targets, one line each. Adding a kind of file is one file in src/edit/ and one line here.
 * Order matters for detection only: the first target whose `find` returns files for a directory wins
 * (`detectTargets` reports every kind found, so a caller can refuse an ambiguous directory).
 */
import { application } from './application.js';
import { argocdSource } from './argocd-source.js';
import { helm } from './helm.js';
import { kustomization } from './kustomization.js';
import { manifest } from './manifest.js';
import type { EditTarget, TargetKind } from './target.js';

export const targets: readonly EditTarget[] = [
  kustomization,
  argocdSource,
  application,
  helm,
  manifest,
];

export const TARGET_KINDS: readonly TargetKind[] = targets.map((t) => t.kind);

/** The target of a kind, or undefined for a kind no target has. */
export function targetOf(kind: string): EditTarget | undefined {
  return targets.find((t) => t.kind === kind);
}

/** Every target that finds files in `dir`, with the files it found, in registry order. */
export async function detectTargets(dir: string): Promise<Array<{ target: EditTarget; files: string[] }>> {
  const found = await Promise.all(targets.map(async (target) => ({ target, files: await target.find(dir) })));
  return found.filter((f) => f.files.length > 0);
}

/** The target of a single file, by its name and text (first match in registry order). */
export function targetOfFile(text: string, file: string): EditTarget | undefined {
  return targets.find((t) => t.detect(text, file));
}
