/**
 * The `pin` primitive: one value (a tag or a digest) into one scalar of one file, named by the target's TARGET
 * grammar. Each target that supports it gives `slots` (the scalar(s) a TARGET names, with every refusal of
 * reaching them); this file parses the value, sets each slot (src/edit/scalar.ts) and splices the text.
 */
import { fail } from '../core/errors.js';
import { EditErrors } from './errors.js';
import { isDigest, parseRef, TAG_RE } from './imageref.js';
import { setSlot, type ScalarSlot, type Want } from './scalar.js';
import { Edits } from './splice.js';
import type { EditOptions, EditResult, PinChange, PinRequest } from './target.js';
import { parseYamlFile, type YamlFile } from './yamlfile.js';
import { digestLengthProblem } from '../registry/ref.js';


/** `--value`: a digest (sha256:…) or a tag; anything else is refused before the file is read. */
export function wantOfValue(value: string): Want {
  if (isDigest(value)) {
    const p = digestLengthProblem(value);
    if (!p) return { digest: value };
    throw fail.usage(EditErrors.BAD_VALUE, `--value ${JSON.stringify(value)} is not a digest a registry serves: ${p}`, { where: 'command line', hint: 'copy the digest whole, e.g. from `gitops-ci image resolve` (sha256:<64 hex>)' });
  }
  if (TAG_RE.test(value)) return { tag: value };
  throw fail.usage(EditErrors.BAD_VALUE, `--value ${JSON.stringify(value)} is neither a tag nor a digest`, {
    where: 'command line',
    hint: 'a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, e.g. 1.4.3) or a digest (sha256:<64 hex>); to change a repository, edit the file',
  });
}

export type SlotFinder = (f: YamlFile, target: string, imageRef: boolean) => ScalarSlot[];

/** Pins `req.value` at the slots `find` names. Text in, text out; refusals leave nothing half-edited. */
export function pinWith(find: SlotFinder, text: string, file: string, req: PinRequest, opts: EditOptions = {}): EditResult {
  const want = wantOfValue(req.value);
  const f = parseYamlFile(text, opts.where ?? file);
  const slots = find(f, req.target, !!req.imageRef);
  const edits = new Edits();
  const warnings: string[] = [];
  const changes: PinChange[] = [];
  for (const slot of slots) {
    const r = setSlot(f, edits, slot, want, warnings);
    const b = slot.ref || slot.expr ? parseRef(r.before.slice(slot.expr && r.before.includes('=') ? r.before.indexOf('=') + 1 : 0)) : undefined;
    const a = slot.ref || slot.expr ? parseRef(r.after.slice(slot.expr && r.after.includes('=') ? r.after.indexOf('=') + 1 : 0)) : undefined;
    const pinName = b?.name ?? slot.locator;
    changes.push({
      pin: { name: pinName, ...want },
      before: b ? { ...b, line: r.line, locator: slot.locator } : { name: slot.locator, ...(want.digest ? { digest: r.before } : { tag: r.before }), line: r.line, locator: slot.locator },
      after: a ? { ...a, line: r.line, locator: slot.locator } : { name: slot.locator, ...(want.digest ? { digest: r.after } : { tag: r.after }), line: r.line, locator: slot.locator },
      changed: r.changed,
    });
  }
  return { text: edits.list.length ? edits.apply(text) : text, changes, warnings };
}
