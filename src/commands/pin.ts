/**
 * `gitops-ci pin`: the primitive for scripts and other CI systems. One value (a tag or a digest) into one
 * target of one file, through the edit layer (src/edit/): every other byte of the file stays as it was, and
 * every refusal (exit 2) names file, line and why before anything is written.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import { bool, str } from '../core/command.js';
import { fail } from '../core/errors.js';
import { resolveInside, utf8Text, workTreeOf, writeFileAtomic } from '../core/fsutil.js';
import { EditErrors } from '../edit/errors.js';
import { wantOfValue } from '../edit/pin.js';
import { targetOf, targets } from '../edit/registry.js';
import { unifiedDiff } from '../kustomize/diff.js';

const PIN_KINDS = targets.filter((t) => t.pin).map((t) => t.kind);

export const spec: CommandSpec = {
  name: 'pin',
  usage: 'gitops-ci pin --kind KIND --file FILE --target TARGET --value TAG|DIGEST [--image-ref] [--dry-run] [--dotenv FILE]',
  description: `
Pins one value (a tag or a digest) in one file: a Helm values file (or a Flux HelmRelease), a plain manifest,
an Argo CD Application, or an Image Updater .argocd-source-<app>.yaml. Only the value changes; comments,
quoting, layout and line endings stay as written. It never adds keys, and refuses (exit 2, naming file and
line) an ambiguous or unknown target, a template expression, a field shared through an anchor, a tag-only
change on an image pinned by digest, and a value YAML or Helm would read as another type.
Running it again with the same value writes nothing and exits 0.

TARGET by kind:
  helm           a dotted path with [n] indexes: image.tag, components[0].image.digest, spec.values.image.tag
  manifest       container=NAME or image=REPOSITORY, optionally scoped Kind/name: (Deployment/web:container=app)
  application    [APP:][sources[n].]kustomize.images:IMAGE | helm.parameters:NAME | helm.valuesObject.PATH
  argocd-source  kustomize.images:IMAGE | helm.parameters:NAME | helm.valuesObject.PATH`,
  options: {
    kind: { type: 'string', value: 'KIND', description: `the kind of file: ${PIN_KINDS.join(', ')}` },
    file: { type: 'string', value: 'FILE', description: 'the file to edit (relative to the current directory)' },
    target: { type: 'string', value: 'TARGET', description: 'what to pin in the file (grammar by kind, above)' },
    value: { type: 'string', value: 'TAG|DIGEST', description: 'the tag (1.4.3) or digest (sha256:…) to pin' },
    'image-ref': { type: 'boolean', description: 'the target scalar is an image reference repo[:tag][@digest]: change only its tag or digest (manifests: always)' },
    'dry-run': { type: 'boolean', description: 'print a unified diff on stdout and write nothing' },
    dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_CHANGED=true|false to FILE for artifacts:reports:dotenv' },
  },
  examples: [
    'gitops-ci pin --kind helm --file envs/prod/values.yaml --target image.tag --value 1.4.3',
    'gitops-ci pin --kind helm --file apps/web/release.yaml --target spec.values.image.digest --value sha256:4f1c…',
    'gitops-ci pin --kind manifest --file deploy.yaml --target Deployment/web:container=app --value sha256:4f1c…',
    'gitops-ci pin --kind application --file apps/web.yaml --target web:helm.parameters:image.tag --value 1.4.3',
    'gitops-ci pin --kind argocd-source --file .argocd-source-web.yaml --target kustomize.images:ghcr.io/acme/web --value 1.4.3',
  ],
};

export async function run(ctx: CommandContext, a: ParsedArgs): Promise<CommandResult> {
  // the whole command line first
  const missing = ['kind', 'file', 'target', 'value'].filter((k) => !str(a.values, k));
  if (missing.length) {
    throw fail.usage(EditErrors.FLAGS, `missing ${missing.map((m) => `--${m}`).join(', ')}`, { where: 'command line', hint: `usage: ${spec.usage}` });
  }
  if (a.positionals.length) throw fail.usage(EditErrors.FLAGS, `unexpected argument ${JSON.stringify(a.positionals[0])}`, { where: 'command line', hint: `usage: ${spec.usage}` });
  const kind = str(a.values, 'kind')!;
  const target = targetOf(kind);
  if (!target?.pin) {
    throw fail.usage(EditErrors.KIND, `--kind ${JSON.stringify(kind)} is not a kind pin knows`, {
      where: 'command line',
      hint: `use one of ${PIN_KINDS.join(', ')}${kind === 'kustomization' ? '; for a kustomization use `gitops-ci set-image`' : ''}`,
    });
  }
  const value = str(a.values, 'value')!;
  wantOfValue(value);
  const req = { target: str(a.values, 'target')!, value, imageRef: bool(a.values, 'image-ref') };
  const dryRun = bool(a.values, 'dry-run');

  // the file: inside the work tree (or the current directory), through no symlink that leads out
  const given = str(a.values, 'file')!;
  const abs = resolve(ctx.cwd, given);
  const shown = relative(ctx.cwd, abs).startsWith('..') ? abs : relative(ctx.cwd, abs) || given;
  const root = (await workTreeOf(dirname(abs))) ?? resolve(ctx.cwd);
  const inside = await resolveInside(root, abs);
  if (!inside.inside) {
    throw fail.usage(EditErrors.OUTSIDE, `${shown} leads outside ${root} (to ${inside.real}); it is not read or written`, {
      where: shown,
      hint: 'pin files inside the git work tree (or the current directory) only',
    });
  }
  const st = await stat(abs).catch(() => undefined);
  if (!st || !st.isFile()) {
    throw fail.usage(EditErrors.NO_FILE, `${shown} ${st ? 'is not a regular file' : 'does not exist'}`, { where: shown, hint: 'check --file (relative paths are from the current directory)' });
  }
  const file = await realpath(abs);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw fail.failed(EditErrors.IO, `cannot read ${shown}: ${(e as Error).message}`, { where: shown });
  }
  const before = utf8Text(bytes, shown, EditErrors.YAML);
  const r = target.pin(before, file, req, { where: shown });
  for (const w of r.warnings) ctx.log.warn(w);
  const show = (x?: { tag?: string; digest?: string }) => (x && (x.tag || x.digest) ? `${x.tag ?? ''}${x.tag && x.digest ? '@' : ''}${x.digest ?? ''}` : '(none)');
  const desc = r.changes.map((c) => `${c.after.locator ?? req.target} (line ${c.after.line}) ${show(c.before)} → ${show(c.after)}`).join(', ');
  const changed = r.text !== before;
  if (!changed) return { summary: `nothing to do: ${shown} already pins ${value} at ${req.target}`, outputs: dotenv(a, false) };
  if (dryRun) {
    ctx.log.stdout(unifiedDiff(before, r.text, shown));
    return { summary: `dry run: ${shown} would change: ${desc}; nothing written`, outputs: dotenv(a, false) };
  }
  try {
    await writeFileAtomic(file, r.text);
  } catch (e) {
    throw fail.failed(EditErrors.IO, `cannot write ${shown}: ${(e as Error).message}`, { where: shown, hint: 'check that the file and its directory are writable (a temp file is created beside it); the file is as it was' });
  }
  return { summary: `${shown}: ${desc}`, outputs: dotenv(a, true) };
}

function dotenv(a: ParsedArgs, changed: boolean): Record<string, string> | undefined {
  return str(a.values, 'dotenv') ? { GITOPS_CHANGED: String(changed) } : undefined;
}
