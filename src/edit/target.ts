/**
 * The edit layer's one interface. Every kind of file that pins an image (a kustomization, a Helm values file,
 * plain manifests, an Argo CD Application, Image Updater's `.argocd-source-<app>.yaml`) is one EditTarget in one
 * file under src/edit/, registered by one line in src/edit/registry.ts.
 *
 * A target works on text: `edit` takes the file's text and returns the new text, every byte it does not have
 * to change identical (comments, blank lines, key order, quoting, flow style, CRLF), through the shared splicer
 * (src/edit/splice.ts). Reading, writing, resolveInside, commits and renders of a whole checkout are the
 * caller's (src/writeback/, set-image, pin); a target never touches the disk except in `find` and `render`.
 *
 * Pins travel as objects from where they are read to where they are written: nothing is formatted into an
 * image expression and parsed again on the way.
 */

/** The kinds of file the edit layer knows; each is one target (src/edit/registry.ts). */
export type TargetKind = 'kustomization' | 'helm' | 'manifest' | 'application' | 'argocd-source';

/**
 * One image to pin. `name` is the image as the file names it (kustomize's images[].name; the repository of an
 * image reference elsewhere). For a kustomization, a field given as '*' keeps the value in the file (kustomize's
 * `set image` semantics); an absent field is unset there (kustomize replaces the entry wholesale). Elsewhere an
 * absent field is left as it is.
 */
export interface Pin {
  name: string;
  newName?: string;
  tag?: string;
  digest?: string;
}

/** An image reference a file holds, as far as the target can tell without rendering. */
export interface ImageRef {
  /** the image as the file names it (kustomization: images[].name; elsewhere the repository) */
  name: string;
  /** kustomization: newName */
  newName?: string;
  tag?: string;
  digest?: string;
  /** 1-based line of the field that holds the image (or its first field) */
  line: number;
  /** where in the file, in the target's TARGET grammar (a dotted path, `container=NAME`, …), when it has one */
  locator?: string;
}

/** What happened to one pin in one file. */
export interface PinChange {
  pin: Pin;
  /** the reference before (undefined: the file did not hold it and the target added it, kustomization only) */
  before?: ImageRef;
  after: ImageRef;
  changed: boolean;
}

/** `gitops-ci pin`'s request: TARGET in the target's grammar, a tag or digest, and whether the scalar is a reference */
export interface PinRequest {
  target: string;
  /** a tag or a digest (algorithm:hex) */
  value: string;
  /** treat the scalar as `repo[:tag][@digest]` and change only its tag or digest */
  imageRef?: boolean;
}

export interface EditOptions {
  /** how messages name the file (default: the `file` argument) */
  where?: string;
}

export interface EditResult {
  /** the new text; === the input when nothing changed */
  text: string;
  changes: PinChange[];
  /** things the user should know that did not stop the edit (a Flux marker dropped, a value quoted on purpose) */
  warnings: string[];
}

export interface EditTarget {
  readonly kind: TargetKind;
  /** one line for help and docs */
  readonly summary: string;
  /**
   * The files of this kind directly in `dir` (absolute paths, sorted), found by name and, where the name does not
   * say, by a cheap look at the text. `[]` when there are none. Never follows a symlink out of `dir` unchecked:
   * the caller runs resolveInside on what it reads.
   */
  find(dir: string): Promise<string[]>;
  /** whether this text (of a file named `file`) is of this kind; used when a file is given without a kind */
  detect(text: string, file: string): boolean;
  /** the image references the file holds, with line numbers. Throws usage errors for a file it cannot read as its kind. */
  images(text: string, file: string): ImageRef[];
  /**
   * Pins images: text in, text out, every untouched byte identical. Throws a usage error (exit 2, file:line, why,
   * what to pass instead) for an ambiguous or unknown image, or a field it will not edit safely; never half-edits.
   */
  edit(text: string, pins: Pin[], file: string, opts?: EditOptions): EditResult;
  /**
   * `gitops-ci pin`: one value into the scalar(s) TARGET names, in the target's TARGET grammar
   * (docs/commands/pin.md). Targets without a TARGET grammar (kustomization: use set-image) leave it out.
   */
  pin?(text: string, file: string, req: PinRequest, opts?: EditOptions): EditResult;
  /** the rendered manifests of the directory, where a renderer exists (kustomize build) */
  render?(dir: string): Promise<string>;
}
