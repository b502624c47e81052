/**
 * `pin` on a Helm values file in the common case, without the `yaml` parse: a values file in the subset of
 * src/edit/simple-yaml.ts (plain block YAML: no anchors, aliases, merge keys, tags, flow style, block scalars or
 * several documents), a dotted TARGET of plain keys and [n] indexes that reaches a string scalar, and a tag or a
 * digest that replaces it with nothing to refuse or to warn about. Anything else returns undefined and the full
 * path of src/edit/helm.ts (pinWith over the parsed file) answers, with its refusals and warnings.
 *
 * Same result, byte for byte, as the full path: test/edit/helm-fast.test.ts runs every Helm golden
 * (test/fixtures/edit/helm) and generated values files through both. On 1,000 values files the parse was most
 * of the Helm target's time (bench/set-image.ts, Helm rows).
 */
import { formatScalarFast, yaml11TypeFast } from './plain-scalar.js';
import { isDigest, isTemplate, TAG_RE } from './imageref.js';
import { readSimpleYaml, sget, type SNode } from './simple-yaml.js';
import type { EditResult, PinRequest } from './target.js';

/** tests turn the fast path off to compare it with the full one */
export const helmFastPath = { enabled: true };

/** a key of TARGET that a plain YAML key reads as exactly (letters first, not a bool or null word) */
const KEY_SEG = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** TARGET as keys and indexes, or undefined for any spelling the fast path does not take (quoted keys…) */
function segments(target: string): Array<string | number> | undefined {
  const out: Array<string | number> = [];
  for (const part of target.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m || !KEY_SEG.test(m[1]) || yaml11TypeFast(m[1]) !== 'string') return undefined;
    out.push(m[1]);
    for (const ix of m[2].match(/\d+/g) ?? []) {
      if (ix.length > 1 && ix.startsWith('0')) return undefined;
      out.push(Number(ix));
    }
  }
  return out;
}

/** src/edit/helm.ts helm.pin in the common case (see above), or undefined */
export function pinHelmFast(text: string, req: PinRequest): EditResult | undefined {
  if (!helmFastPath.enabled || req.imageRef) return undefined;
  const value = req.value;
  const digest = isDigest(value);
  if (!digest && !TAG_RE.test(value)) return undefined;
  const segs = segments(req.target);
  const root = segs && readSimpleYaml(text);
  if (!segs || !root || root.pairs.length === 0) return undefined;
  let node: SNode | undefined = root;
  let parent: SNode | undefined;
  for (const s of segs) {
    parent = node;
    if (typeof s === 'number') node = node.kind === 'seq' ? node.items[s] : undefined;
    else node = node.kind === 'map' ? sget(node, s) : undefined;
    if (!node) return undefined;
  }
  if (node.kind !== 'scalar') return undefined;
  const last = segs[segs.length - 1];
  const tagField = typeof last === 'string' && /^tag$/i.test(last);
  // a digest into a tag field, or a tag next to a digest: refusals, which the full path words
  if (tagField && (digest || (parent?.kind === 'map' && sget(parent, 'digest') !== undefined))) return undefined;
  const cur = node.value;
  // a plain value YAML reads as a number, bool or null is rewritten quoted with a warning: the full path
  if ((node.style === 'PLAIN' && yaml11TypeFast(cur) !== 'string') || isTemplate(cur)) return undefined;
  const src = text.slice(node.start, node.end);
  let out = text;
  if (value !== cur) {
    const formatted = formatScalarFast(value, node.style);
    // a value that must be quoted where a plain one was: a warning of the full path
    if (formatted === undefined || (node.style === 'PLAIN' && formatted !== value)) return undefined;
    if (formatted !== src) out = text.slice(0, node.start) + formatted + text.slice(node.end);
  }
  const field = digest ? 'digest' : 'tag';
  const locator = req.target;
  return {
    text: out,
    changes: [
      {
        pin: { name: locator, [field]: value },
        before: { name: locator, [field]: cur, line: node.line, locator },
        after: { name: locator, [field]: value, line: node.line, locator },
        changed: out !== text,
      },
    ],
    warnings: [],
  };
}
