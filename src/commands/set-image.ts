/**
 * `gitops-ci set-image`: set images in Kustomize overlays with the semantics of `kustomize edit set image`
 * (kustomize v5.5), editing only the lines that must change. Several overlays in one call, all or nothing.
 */
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import { bool, str, strs } from '../core/command.js';
import { fail } from '../core/errors.js';
import { tuning } from '../core/flags.js';
import type { ImageEntry } from '../kustomize/fast-edit.js';
import { KustomizeErrors } from '../kustomize/errors.js';
import { parseImageExprs } from '../kustomize/image-expr.js';
import { unifiedDiff } from '../kustomize/diff.js';
import { setImagesInOverlays } from '../kustomize/set-images.js';

export const spec: CommandSpec = {
  name: 'set-image',
  usage: 'gitops-ci set-image [--dir DIR]... [--dry-run] [--render] [--dotenv FILE] EXPR...',
  description: `
Sets images in the kustomization file of one or more overlays, as \`kustomize edit set image\` does
(same expressions, same merge rules, same validation), but edits only the lines that must change:
comments, blank lines, key order, indentation, quoting, flow style and CRLF stay as written.

All overlays are read and checked before the first write; a failure leaves every file as it was.
Running it again with the same images writes nothing and exits 0.`,
  positionals: [
    ['EXPR...', 'image expressions: NAME:TAG, NAME@DIGEST, NAME:TAG@DIGEST, NAME=NEWNAME[:TAG][@DIGEST]; * keeps a field'],
  ],
  options: {
    dir: { type: 'string', multiple: true, value: 'DIR', description: 'overlay directory; repeat for several overlays', default: '.' },
    'dry-run': { type: 'boolean', description: 'print a unified diff on stdout and write nothing' },
    render: { type: 'boolean', description: 'build each changed overlay with kustomize and check that a resource uses the image; restore all files if not' },
    dotenv: { type: 'string', value: 'FILE', description: 'write GITOPS_CHANGED=true|false (and GITOPS_CHANGED_OVERLAYS) to FILE for artifacts:reports:dotenv' },
  },
  examples: [
    'gitops-ci set-image --dir .kubernetes/overlays/staging registry.example.com/team/app:1.4.3',
    'gitops-ci set-image --dir overlays/a --dir overlays/b app=registry.example.com/team/app:1.4.3@sha256:…',
    "gitops-ci set-image --dry-run 'app=*:1.5.0'        # keep newName, set the tag; print the diff",
  ],
};

/** `newName:newTag@digest` as far as set, or `(none)` */
export function describeEntry(e: ImageEntry | undefined): string {
  if (!e) return '(not set)';
  const s = `${e.newName ?? ''}${e.newTag ? (e.newName ? ':' : '') + e.newTag : ''}${e.digest ? `@${e.digest}` : ''}${e.tagSuffix ? ` (tagSuffix ${e.tagSuffix})` : ''}`;
  return s === '' ? '(name only)' : s;
}

export async function run(ctx: CommandContext, a: ParsedArgs): Promise<CommandResult> {
  const dryRun = bool(a.values, 'dry-run');
  const render = bool(a.values, 'render');
  const dirs = strs(a.values, 'dir');
  // verify the whole command line first
  const exprs = parseImageExprs(a.positionals);
  if (dryRun && render) {
    throw fail.usage(KustomizeErrors.FLAGS, '--render cannot be combined with --dry-run', {
      where: 'command line',
      hint: 'kustomize renders files on disk; run with --render alone (it restores every file if the check fails)',
    });
  }
  if (dirs.some((d) => d.trim() === '')) throw fail.usage(KustomizeErrors.NOT_FOUND, '--dir is empty', { where: 'command line' });

  const conc = tuning(ctx.env, 'GITOPS_SETIMAGE_CONCURRENCY');
  const results = await setImagesInOverlays(dirs.length ? dirs : ['.'], exprs, {
    cwd: ctx.cwd,
    dryRun,
    render,
    log: ctx.log,
    ...(conc !== undefined ? { concurrency: conc } : {}),
  });

  let changed = 0;
  // one line per overlay: consecutive lines go out in one write (a thousand overlays, one write, not a thousand),
  // the same bytes in the same order; a warning or the diff on stdout sends the lines before it first
  const lines: string[] = [];
  const flush = () => {
    if (lines.length) ctx.log.info(lines.join('\n'));
    lines.length = 0;
  };
  for (const r of results) {
    if (r.changed) {
      changed++;
      const diffs = r.changes.filter((c) => c.changed).map((c) => `${c.name} ${describeEntry(c.before)} → ${describeEntry(c.after)}`);
      lines.push(`${r.dir}: ${diffs.join(', ')}${dryRun ? ' (dry run)' : ''}`);
      if (dryRun) {
        flush();
        ctx.log.stdout(unifiedDiff(r.before, r.after, r.where));
      }
    } else {
      lines.push(`${r.dir}: unchanged (${r.changes.map((c) => `${c.name} ${describeEntry(c.after)}`).join(', ')} already set)`);
    }
    if (r.warnings?.length || r.unused?.length) flush();
    for (const w of r.warnings ?? []) ctx.log.warn(w);
    if (r.unused?.length) {
      ctx.log.warn(
        `${r.dir}: no resource of the overlay (its files and local bases) uses ${r.unused.join(', ')}; check the image name (images[].name is the repository as the resources write it, without tag); --render checks the built output`,
      );
    }
  }
  flush();
  const unchanged = results.length - changed;
  const noun = (n: number) => `${n} overlay${n === 1 ? '' : 's'}`;
  const summary = dryRun
    ? `dry run: ${noun(changed)} would change, ${unchanged} unchanged; nothing written`
    : changed === 0
      ? `nothing to do: ${noun(results.length)} already set`
      : `${noun(changed)} changed, ${unchanged} unchanged${render ? ', rendered and checked' : ''}`;
  const dotenv = str(a.values, 'dotenv');
  return {
    summary,
    outputs: dotenv
      ? {
          GITOPS_CHANGED: String(!dryRun && changed > 0),
          GITOPS_CHANGED_OVERLAYS: dryRun ? '' : results.filter((r) => r.changed).map((r) => r.dir).join(' '),
        }
      : undefined,
  };
}
