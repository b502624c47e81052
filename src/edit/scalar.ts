/**
 * Setting one scalar that pins an image, with every refusal `pin` promises (docs/commands/pin.md): not a
 * string scalar, a template expression, a tag-only change on an image pinned by a digest, a digest written
 * into a tag field, a Helm --set parameter that would be read as a number or bool. Values that YAML would read
 * as another type are quoted on purpose (and said so in a warning). The edit goes into `edits`; nothing is
 * written until the caller applies them, so a refusal leaves the file as it was.
 */
import { isScalar, parseDocument, type Scalar } from 'yaml';
import { EditErrors } from './errors.js';
import { formatRef, isTemplate, parseRef, type ParsedRef } from './imageref.js';
import { replaceScalar, scalarSource, type Edits } from './splice.js';
import { posOf, refuse, type YamlFile } from './yamlfile.js';

export interface ScalarSlot {
  /** the node to change */
  node: unknown;
  /** how messages and results name it (the TARGET grammar) */
  locator: string;
  /** the value is an image reference `repo[:tag][@digest]` (manifests' image:, --image-ref) */
  ref: boolean;
  /** the value is an Argo CD kustomize image expression (`[name=]repo[:tag][@digest]`) */
  expr?: boolean;
  /** the field holds a tag (a digest written there would render repo:sha256:…) */
  tagField?: boolean;
  /** a digest field next to this tag field, when not empty: the image is pinned by digest */
  digestBeside?: string;
  /** for a Helm parameter (Argo CD): whether it has forceString: true (undefined: not a parameter) */
  forceString?: boolean;
  inFlow?: boolean;
}

export interface Want {
  tag?: string;
  digest?: string;
  /** ref slots only: a new repository */
  name?: string;
}

export interface SlotResult {
  before: string;
  after: string;
  changed: boolean;
  line: number;
}

/** helm's strvals typedVal: what `--set` reads as a bool, null or int instead of a string */
export function setReadsAsNonString(v: string): boolean {
  if (/^(true|false|null)$/i.test(v)) return true;
  return v === '0' || /^[-+]?[1-9]\d*$/.test(v);
}

/** what YAML 1.1 (Helm, sigs.k8s.io/yaml) reads a plain scalar as */
function plainType(v: string): string {
  const n = parseDocument(`k: ${v}\n`, { version: '1.1' }).get('k');
  return n === null ? 'null' : typeof n === 'string' ? 'string' : typeof n;
}

export function setSlot(f: YamlFile, edits: Edits, slot: ScalarSlot, want: Want, warnings: string[]): SlotResult {
  const n = slot.node;
  const pos = posOf(n);
  const line = f.t.src.slice(0, pos).split('\n').length;
  if (!isScalar(n) || n.type === 'BLOCK_LITERAL' || n.type === 'BLOCK_FOLDED' || (n.tag && n.tag !== 'tag:yaml.org,2002:str')) {
    const what = !isScalar(n) ? (n && typeof n === 'object' && 'items' in (n as object) ? 'a mapping or list' : 'empty') : n.tag ? `tagged ${n.tag.replace('tag:yaml.org,2002:', '!!')}` : 'a block scalar';
    throw refuse(f, EditErrors.NOT_SCALAR, pos, `${slot.locator} in ${f.file} is ${what}, not a string that pins an image`, 'point --target at the scalar that holds the tag, the digest or the image reference');
  }
  const s = n as Scalar;
  const cur = typeof s.value === 'string' ? s.value : s.value === null ? '' : scalarSource(f.t, s);
  if (isTemplate(cur)) {
    throw refuse(f, EditErrors.TEMPLATE, pos, `${slot.locator} in ${f.file} holds a template expression (${JSON.stringify(cur)}), not a literal image`, 'pin the value the template reads (e.g. the values key it names), not the template');
  }
  let next: string;
  if (slot.ref || slot.expr) {
    let prefix = '';
    let refText = cur;
    if (slot.expr && cur.includes('=')) {
      prefix = cur.slice(0, cur.indexOf('=') + 1);
      refText = cur.slice(prefix.length);
    }
    if (refText === '') throw refuse(f, EditErrors.NOT_SCALAR, pos, `${slot.locator} in ${f.file} is empty; there is no image reference to change`, 'write the image reference first; pin changes a tag or digest, it does not invent an image');
    const r = parseRef(refText);
    if (want.tag !== undefined && want.digest === undefined && r.digest) {
      throw refuse(f, EditErrors.DIGEST_PINNED, pos, `${slot.locator} in ${f.file} is pinned by digest (${refText}); changing only its tag would not change what runs`, 'pin a digest (--value sha256:…), or both tag and digest');
    }
    const out: ParsedRef = { name: want.name ?? r.name };
    const tag = want.tag ?? r.tag;
    const digest = want.digest ?? r.digest;
    if (tag) out.tag = tag;
    if (digest) out.digest = digest;
    next = prefix + formatRef(out);
  } else {
    if (want.tag !== undefined && want.digest !== undefined) throw new Error('internal: one value per field');
    next = (want.tag ?? want.digest)!;
    if (want.digest !== undefined && slot.tagField) {
      throw refuse(f, EditErrors.DIGEST_PINNED, pos, `${slot.locator} in ${f.file} holds a tag; a digest written there would render as repo:${want.digest}, which no registry serves`, 'pin the digest field beside it (…digest), or the whole reference with --image-ref');
    }
    if (want.tag !== undefined && slot.digestBeside) {
      throw refuse(f, EditErrors.DIGEST_PINNED, pos, `the image of ${slot.locator} in ${f.file} is pinned by the digest beside it (${slot.digestBeside}); changing only the tag would not change what runs`, 'pin the digest field (…digest) instead, or both');
    }
  }
  if (slot.forceString === false && setReadsAsNonString(next)) {
    throw refuse(f, EditErrors.TYPE, pos, `${slot.locator} in ${f.file}: Helm would read ${JSON.stringify(next)} as a ${/^(true|false)$/i.test(next) ? 'bool' : /^null$/i.test(next) ? 'null' : 'number'}, not a string (the parameter has no forceString: true)`, 'add `forceString: true` to the parameter, then pin again');
  }
  if (next === cur && typeof s.value === 'string') return { before: cur, after: next, changed: false, line };
  const r = replaceScalar(f.t, edits, s, next, slot.inFlow ?? false);
  if (r.quoted || (typeof s.value !== 'string' && s.value !== null)) {
    const was = typeof s.value !== 'string' && s.value !== null ? ` (it was the unquoted ${typeof s.value} ${scalarSource(f.t, s)}, which Helm and kubectl read as a ${typeof s.value}, not a string)` : '';
    warnings.push(`${f.file}:${line}: ${slot.locator}: ${JSON.stringify(next)} written quoted on purpose: unquoted, YAML would read it as a ${plainType(next)}${was}`);
  }
  return { before: cur, after: next, changed: r.changed, line };
}
