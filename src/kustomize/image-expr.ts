/**
 * Image expressions, as `kustomize edit set image` (kustomize v5.5, kustomize/commands/edit/set/setimage.go)
 * parses them:
 *
 *   <image>=<newimage>:<newtag>@<digest>   <image>=<newimage>:<newtag>   <image>=<newimage>@<digest>
 *   <image>=<newimage>                     <image>:<newtag>[@<digest>]   <image>@<digest>
 *
 * Split once on '='; the left side is images[].name, the right side is split into name, tag and digest
 * (':' before the first '/' belongs to a registry port). Without '=', the split name is images[].name and
 * no newName is written. '*' as newName, newTag or digest keeps the value already in the file.
 */
import { fail, isGitopsError, type GitopsError } from '../core/errors.js';
import { KustomizeErrors } from './errors.js';
import { parseRef } from '../registry/ref.js';

export const KEEP = '*';

export interface ImageExpr {
  /** the argument as given */
  raw: string;
  /** images[].name: the image as the resources name it */
  name: string;
  /** '*' means: keep the value in the file (omitted when the image is new) */
  newName?: string;
  newTag?: string;
  digest?: string;
  /** true when newName / newTag / digest was given as '*' */
  keepNewName: boolean;
  keepNewTag: boolean;
  keepDigest: boolean;
}

export const EXPR_FORMS = [
  '<image>=<newimage>:<newtag>',
  '<image>=<newimage>@<digest>',
  '<image>=<newimage>:<newtag>@<digest>',
  '<image>=<newimage>',
  '<image>:<newtag>',
  '<image>:<newtag>@<digest>',
  '<image>@<digest>',
];

/**
 * kustomize's image.Split: name, tag and digest of `[[host[:port]/]component/]component[:tag][@digest]`.
 * ':' and '@' are searched from the first '/' on, so a registry port is not taken for a tag.
 */
export function splitImage(ref: string): { name: string; tag: string; digest: string } {
  let search = ref;
  let slash = ref.indexOf('/');
  if (slash > 0) search = ref.slice(slash);
  else slash = 0;
  let id = search.indexOf('@');
  let ic = search.indexOf(':');
  if (ic < 0 && id < 0) return { name: ref, tag: '', digest: '' };
  if (id >= 0 && (id < ic || ic < 0)) {
    id += slash;
    return { name: ref.slice(0, id), tag: '', digest: ref.slice(id + 1) };
  }
  if (id >= 0 && ic >= 0) {
    id += slash;
    ic += slash;
    return { name: ref.slice(0, ic), tag: ref.slice(ic + 1, id), digest: ref.slice(id + 1) };
  }
  ic += slash;
  return { name: ref.slice(0, ic), tag: ref.slice(ic + 1), digest: '' };
}

function badExpr(arg: string, why?: string) {
  return fail.usage(KustomizeErrors.BAD_IMAGE_EXPR, `invalid image expression ${JSON.stringify(arg)}${why ? `: ${why}` : ''}`, {
    where: 'command line',
    details: ['use one of the following forms:', ...EXPR_FORMS.map((f) => `- ${f}`), "'*' as <newimage>, <newtag> or <digest> keeps the value already in the file"],
    hint: 'for example: registry.example.com/app:1.2.3, or app=registry.example.com/team/app:1.2.3',
  });
}

/** Parses one argument; throws usage EKUSTOMIZE_BAD_IMAGE_EXPR where kustomize returns errImageInvalidArgs. */
export function parseImageExpr(arg: string): ImageExpr {
  const eq = arg.indexOf('=');
  const key = eq >= 0 ? arg.slice(0, eq) : '';
  const value = eq >= 0 ? arg.slice(eq + 1) : arg;
  const { name, tag, digest } = splitImage(value);
  // kustomize: `if name == arg { return errImageInvalidArgs }` (no ':', '@' or '=' at all)
  if (name === arg) throw badExpr(arg, /\s/.test(arg) ? 'it has whitespace' : "it has no ':<tag>', '@<digest>' or '=<newimage>'");
  const imageName = key === '' ? name : key;
  // Deviation, documented: kustomize would write an entry without a name (`=` or `=:tag`), which matches nothing.
  if (imageName === '') throw badExpr(arg, 'the image name is empty');
  if (/\s/.test(arg)) throw badExpr(arg, 'it has whitespace');
  // Deviation, documented: an empty tag or digest (`app:`, `app@`, `app:$UNSET`) would silently unpin the
  // image; refused instead. (`app=`, kustomize's way to reset an entry to its name, stays as kustomize has it.)
  const search = value.slice(Math.max(value.indexOf('/'), 0));
  const at = search.indexOf('@');
  const colon = search.indexOf(':');
  if (colon >= 0 && (at < 0 || colon < at) && tag === '') throw badExpr(arg, "the tag after ':' is empty (an unset variable?)");
  if (at >= 0 && digest === '') throw badExpr(arg, "the digest after '@' is empty (an unset variable?)");
  const e: ImageExpr = { raw: arg, name: imageName, keepNewName: false, keepNewTag: false, keepDigest: false };
  if (key !== '' && name !== '') e.newName = name;
  if (tag !== '') e.newTag = tag;
  if (digest !== '') e.digest = digest;
  e.keepNewName = e.newName === KEEP;
  e.keepNewTag = e.newTag === KEEP;
  e.keepDigest = e.digest === KEEP;
  return e;
}

/**
 * Parses all arguments, as kustomize's Validate does: none is errImageNoArgs; any bad one fails the call;
 * a later expression for the same image name replaces an earlier one (kustomize keeps them in a map).
 */
export function parseImageExprs(args: string[]): ImageExpr[] {
  if (args.length === 0) {
    throw fail.usage(KustomizeErrors.NO_IMAGE, 'no image specified', {
      where: 'command line',
      hint: 'give at least one image expression, e.g. `gitops-ci set-image registry.example.com/app:1.2.3`',
    });
  }
  const byName = new Map<string, ImageExpr>();
  const bad: Array<{ arg: string; e: Error }> = [];
  for (const a of args) {
    try {
      const e = parseImageExpr(a);
      byName.delete(e.name);
      byName.set(e.name, e);
    } catch (e) {
      bad.push({ arg: a, e: e as Error });
    }
  }
  if (bad.length === 1) throw bad[0].e;
  if (bad.length > 1) {
    throw fail.usage(KustomizeErrors.BAD_IMAGE_EXPR, `invalid image expressions: ${bad.map((b) => JSON.stringify(b.arg)).join(', ')}`, {
      where: 'command line',
      details: [...bad.map((b) => b.e.message), 'use one of the following forms:', ...EXPR_FORMS.map((f) => `- ${f}`)],
      hint: 'for example: registry.example.com/app:1.2.3, or app=registry.example.com/team/app:1.2.3',
    });
  }
  return [...byName.values()];
}

/**
 * parseImageExprs for a command's configuration, which reports every problem at once: no arguments gives no
 * expressions (the command says what is missing), and a bad expression goes into `errors` instead of being thrown.
 */
export function imageExprsFlag(args: string[], errors: GitopsError[]): ImageExpr[] {
  if (!args.length) return [];
  let exprs: ImageExpr[];
  try {
    exprs = parseImageExprs(args);
  } catch (e) {
    if (!isGitopsError(e)) throw e;
    errors.push(e);
    return [];
  }
  // what these commands pin is deployed: the reference an expression writes must be one a registry and the
  // kubelet accept (a digest of the wrong length, an uppercase repository, a tag with a character a tag cannot
  // hold). set-image keeps kustomize's own leniency.
  const bad = exprs.map((e) => ({ e, why: unpullable(e) })).filter((b) => b.why);
  for (const b of bad) errors.push(badExpr(b.e.raw, b.why));
  return bad.length ? [] : exprs;
}

/** why the reference `e` writes (its fields given as '*' left out) cannot be pulled, or undefined */
function unpullable(e: ImageExpr): string | undefined {
  const repo = e.newName !== undefined && !e.keepNewName ? e.newName : e.name;
  const tag = e.newTag !== undefined && !e.keepNewTag ? e.newTag : undefined;
  const digest = e.digest !== undefined && !e.keepDigest ? e.digest : undefined;
  const ref = `${repo}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  try {
    parseRef(ref);
    return undefined;
  } catch (x) {
    if (!isGitopsError(x)) throw x;
    return `it would pin ${JSON.stringify(ref)}, which no registry serves: ${x.message.replace(/^invalid image reference "[^"]*": /, '')}`;
  }
}
