/**
 * A config repo's files in a local directory, whoever put them there: the git checkout (src/writeback/checkout.ts,
 * a sparse clone) or the API write-back (src/writeback/api.ts, files read through GitLab's repository API). What
 * bump and promote plan, guard and edit goes through this, so the guarantees hold for both paths at once:
 * every path through resolveInside() first (a symlink out of the tree is refused, EKUSTOMIZE_OUTSIDE), atomic
 * writes, the file that pins images found through the edit layer (src/edit/registry.ts), and the render.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { fail, GitopsError, isGitopsError } from '../core/errors.js';
import { writeFileAtomic, resolveInside, utf8Text } from '../core/fsutil.js';
import type { Logger } from '../core/log.js';
import { KustomizeErrors } from '../kustomize/errors.js';
import { redactRenderError } from '../render/diff.js';
import { detectTargets, TARGET_KINDS, targetOf } from '../edit/registry.js';
import type { EditTarget, TargetKind } from '../edit/target.js';
import { EditErrors } from '../edit/errors.js';
import { WritebackErrors } from './errors.js';

/** what --target-kind takes: a kind of the edit layer, or auto (detected from the files found) */
export type KindChoice = 'auto' | TargetKind;

/** the values --target-kind accepts, for help texts and checks */
export const KIND_CHOICES: readonly string[] = ['auto', ...TARGET_KINDS];

/** checks a --target-kind value; pushes a problem and returns undefined when it is not one */
export function kindFlag(v: string | undefined, problems: string[]): KindChoice {
  const k = (v ?? 'auto').trim();
  if (KIND_CHOICES.includes(k)) return k as KindChoice;
  problems.push(`--target-kind ${JSON.stringify(k)} is not a target kind: pass one of ${KIND_CHOICES.join(', ')}`);
  return 'auto';
}

/**
 * `--target-kind auto`: which of the kinds found in a directory a command edits.
 * - A kustomization owns its directory: the manifests, Helm values and Applications beside it are its
 *   resources, patches and generator inputs, and its images: list is what overrides their images when it is
 *   built, so it is the kustomization that is edited (today's behaviour for every overlay with patches).
 * - An Image Updater file (.argocd-source-<app>.yaml) beside a kustomization or a Helm values file is a real
 *   ambiguity: Argo CD applies its overrides on top of them (https://argo-cd.readthedocs.io/en/stable/user-guide/parameters/#store-overrides-in-git),
 *   so either could be what the team means; refused, naming both files and the --target-kind to pass.
 * - Otherwise one kind is taken, and several kinds are refused the same way.
 */
export function autoKind(dir: string, found: Array<{ target: EditTarget; files: string[] }>): Array<{ target: EditTarget; files: string[] }> {
  const kinds = new Set(found.map((f) => f.target.kind));
  let keep = found;
  if (kinds.has('kustomization') && !kinds.has('argocd-source')) keep = found.filter((f) => f.target.kind === 'kustomization');
  if (keep.length > 1) {
    const first = keep[0]!.files[0]!;
    throw fail.usage(WritebackErrors.TARGET_AMBIGUOUS, `${dir} holds files of ${keep.length} kinds that pin images: ${keep.map((f) => `${f.target.kind} (${f.files.map((x) => posix.basename(x)).join(', ')})`).join(', ')}`, {
      where: `${posix.join(dir, posix.basename(first))}:1`,
      details: keep.map((f) => `--target-kind ${f.target.kind}: ${f.files.map((x) => posix.join(dir, posix.basename(x))).join(', ')}`),
      hint: `pass --target-kind ${keep.map((f) => f.target.kind).join(' or --target-kind ')} (input target-kind) to say which one is edited`,
    });
  }
  return keep;
}

/** the file that pins images in a directory, and the edit target that reads and writes it */
export interface Located {
  target: EditTarget;
  /** repo-relative */
  file: string;
}

/** the error for a path that leads out of the clone */
export function outsideError(rel: string, where: string): GitopsError {
  return fail.usage(KustomizeErrors.OUTSIDE, `${rel} leads outside the config repo clone through a symlink; it is not read or written`, {
    where,
    hint: 'the config repo must keep its overlays and the files they pin images in inside the repo (no symlinks out of it)',
  });
}

/** the files of the config repo in a local directory (a clone's work tree, or files read through the API) */
export abstract class LocalTree {
  protected readonly log: Logger;

  protected constructor(log: Logger) {
    this.log = log;
  }

  /** the root directory (the config repo's root) */
  abstract get dir(): string;

  /** the absolute path of a repo-relative path, after resolveInside says it stays in the clone; else EKUSTOMIZE_OUTSIDE */
  async inside(rel: string, where = rel): Promise<string> {
    const r = await resolveInside(this.dir, rel);
    if (!r.inside) throw outsideError(rel, where);
    return join(this.dir, rel);
  }

  async read(rel: string): Promise<string> {
    return utf8Text(await readFile(await this.inside(rel)), rel, EditErrors.YAML);
  }

  /** write a repo-relative file (atomically: a failed write leaves the file as it was) */
  async write(rel: string, text: string): Promise<void> {
    await writeFileAtomic(await this.inside(rel), text);
  }

  /** is `rel` a regular file in the work tree (checked inside the clone first) */
  async isFile(rel: string): Promise<boolean> {
    const abs = await this.inside(rel);
    return !!(await stat(abs).catch(() => undefined))?.isFile();
  }

  /**
   * The file in `dir` (repo-relative) that pins images, and its edit target: of the kind asked for, or, with
   * `auto`, detected from the files found there (src/edit/registry.ts; the rule is autoKind's). undefined when
   * there is none. The directory, and every entry of it, is checked inside the clone before any target looks at
   * a file: a symlink out of the repo anywhere in it is refused, as Argo CD refuses such a repo
   * (CheckOutOfBoundsSymlinks, https://pkg.go.dev/github.com/argoproj/argo-cd/v2/util/app/path, since v2.5), so
   * detection never reads outside the clone. Several files of the kind are refused with the files and what to
   * pass instead; `several` makes that error when the caller has its own code for it.
   */
  async locate(dir: string, kind: KindChoice, several?: (files: string[]) => GitopsError): Promise<Located | undefined> {
    const abs = await this.inside(dir);
    for (const name of await readdir(abs).catch(() => [] as string[])) await this.inside(posix.join(dir, name), dir);
    const rel = (f: string) => posix.join(dir, posix.basename(f));
    let found: Array<{ target: EditTarget; files: string[] }>;
    if (kind === 'auto') found = autoKind(dir, await detectTargets(abs));
    else {
      const t = targetOf(kind);
      if (!t) throw fail.usage(EditErrors.KIND, `--target-kind ${kind}: the edit layer has no such target`, { where: 'command line', hint: `pass one of ${KIND_CHOICES.join(', ')}` });
      found = [{ target: t, files: await t.find(abs) }].filter((f) => f.files.length);
    }
    if (!found.length) return undefined;
    const { target, files } = found[0]!;
    if (files.length > 1) {
      const names = files.map((f) => posix.basename(f));
      throw several?.(names) ?? fail.usage(WritebackErrors.TARGET_AMBIGUOUS, `${dir} holds more than one ${target.kind} file (${names.join(', ')})`, {
        where: `${rel(files[0]!)}:1`,
        details: files.map((f) => `  ${rel(f)}`),
        hint: `keep one ${target.kind} file in ${dir}, or pin the one you mean with \`gitops-ci pin --kind ${target.kind} --file FILE …\``,
      });
    }
    return { target, file: rel(files[0]!) };
  }

  /**
   * Render a directory as Argo CD would, with its target's renderer (`kustomize build` for a kustomization),
   * after resolveInside; errors name paths relative to the clone, and generator literals (Secret values) quoted
   * by kustomize are redacted. undefined when the target has no renderer.
   */
  async render(dir: string, o: { when?: string; target?: EditTarget } = {}): Promise<string | undefined> {
    const target = o.target ?? targetOf('kustomization')!;
    if (!target.render) return undefined;
    const abs = await this.inside(dir);
    try {
      return await this.log.section(`${target.kind === 'kustomization' ? `kustomize build ${dir}` : `render ${dir} (${target.kind})`}${o.when ? ` (${o.when})` : ''}`, () => target.render!(abs), { collapsed: true });
    } catch (e) {
      if (!isGitopsError(e)) throw e;
      const rel = (s: string) => redactRenderError(s.split(`${this.dir}/`).join(''));
      throw new GitopsError({ kind: e.kind, code: e.code, message: rel(e.message), where: dir, hint: e.hint, cause: e, details: e.details?.map(rel) });
    }
  }
}
