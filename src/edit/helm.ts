/**
 * The Helm values target: a values file (values*.yaml), or a Flux HelmRelease whose `spec.values` hold them.
 *
 * - `pin`: the user names the scalar by a dotted path with [n] indexes (`image.tag`, `components[1].image.digest`,
 *   `spec.values.image.tag` in a HelmRelease); `--image-ref` treats it as `repo[:tag][@digest]`.
 * - `images` / `edit`: the common shapes Renovate's helm-values manager and Kargo's helm-update-image know, at
 *   any depth: a block with `repository` (and `registry`, `tag`, `digest`), and `image: "repo:tag"` strings.
 *   An image is matched by its full repository (`registry/repository` when the block splits it).
 * A field shared through an anchor, reached through an alias or a merge key, or holding a template expression is
 * refused (src/edit/yamlfile.ts reach, src/edit/scalar.ts); keys are never invented.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isMap, isScalar, isSeq, type Scalar, type YAMLMap } from 'yaml';
import { EditErrors } from './errors.js';
import { pinWith } from './pin.js';
import { pinHelmFast } from './helm-fast.js';
import { isTemplate, parseRef, sameImage } from './imageref.js';
import { setSlot, type ScalarSlot, type Want } from './scalar.js';
import { Edits } from './splice.js';
import type { EditOptions, EditResult, EditTarget, ImageRef, Pin, PinRequest, PinChange } from './target.js';
import { checkShared, lineOf, pairOf, parsePath, parseYamlFile, pathString, posOf, reach, refuse, strAt, type Reached, type Seg, type YamlFile } from './yamlfile.js';

const VALUES_NAME = /^values(?:[.-][^/]*)?\.ya?ml$/i;

function isHelmRelease(text: string): boolean {
  return /^kind:\s*HelmRelease\s*$/m.test(text) && /^apiVersion:\s*helm\.toolkit\.fluxcd\.io\//m.test(text);
}

/** one detected image of a values tree */
export interface HelmImage {
  ref: ImageRef;
  /** the block shape: the map and its fields */
  block?: { map: YAMLMap; path: Seg[]; tag?: Scalar; digest?: Scalar };
  /** the `image: "repo:tag"` shape */
  str?: { node: Scalar; path: Seg[] };
}

function str(n: unknown): string | undefined {
  return isScalar(n) && typeof n.value === 'string' ? n.value : isScalar(n) && (typeof n.value === 'number' || typeof n.value === 'boolean') ? String(n.value) : undefined;
}

/** the image shapes under `node` (aliases are not followed: what they share is not a place to edit) */
export function detectHelmImages(f: YamlFile, node: unknown, path: Seg[], out: HelmImage[] = []): HelmImage[] {
  if (isMap(node)) {
    const repo = pairOf(node, 'repository')?.value;
    const repoStr = isScalar(repo) && typeof repo.value === 'string' ? repo.value : undefined;
    if (repoStr && !isTemplate(repoStr) && /^[a-z0-9][\w./:-]*$/i.test(repoStr)) {
      const registry = strAt(node, 'registry');
      const name = registry && !isTemplate(registry) ? `${registry}/${repoStr}` : repoStr;
      const tagN = pairOf(node, 'tag')?.value as Scalar | undefined;
      const digN = pairOf(node, 'digest')?.value as Scalar | undefined;
      const ref: ImageRef = { name, line: lineOf(f, posOf(repo)), locator: pathString(path) };
      const tag = str(tagN);
      const digest = str(digN);
      if (tag) ref.tag = tag;
      if (digest) ref.digest = digest;
      out.push({ ref, block: { map: node, path, ...(isScalar(tagN) ? { tag: tagN } : {}), ...(isScalar(digN) ? { digest: digN } : {}) } });
    }
    for (const p of node.items) {
      const k = isScalar(p.key) ? String(p.key.value) : undefined;
      if (k === undefined) continue;
      const v = p.value;
      if (k === 'image' && isScalar(v) && typeof v.value === 'string' && !isTemplate(v.value) && /^[a-z0-9][\w./:@-]*$/i.test(v.value) && /[:@/]/.test(v.value)) {
        const r = parseRef(v.value);
        const ref: ImageRef = { name: r.name, line: lineOf(f, posOf(v)), locator: pathString([...path, k]) };
        if (r.tag) ref.tag = r.tag;
        if (r.digest) ref.digest = r.digest;
        out.push({ ref, str: { node: v, path: [...path, k] } });
      } else if (isMap(v) || isSeq(v)) detectHelmImages(f, v, [...path, k], out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((it, i) => detectHelmImages(f, it, [...path, i], out));
  }
  return out;
}

/** the values trees of a file: the document (values file) or spec.values of each HelmRelease */
function valuesRoots(f: YamlFile): Array<{ node: unknown; prefix: Seg[] }> {
  const roots: Array<{ node: unknown; prefix: Seg[] }> = [];
  for (const d of f.docs) {
    const c = d.contents;
    if (isMap(c) && strAt(c, 'kind') === 'HelmRelease') {
      const spec = pairOf(c, 'spec')?.value;
      const v = isMap(spec) ? pairOf(spec, 'values')?.value : undefined;
      if (v) roots.push({ node: v, prefix: ['spec', 'values'] });
    } else if (c) roots.push({ node: c, prefix: [] });
  }
  return roots;
}

/** The slot of a reached scalar: a `tag` field knows the digest beside it (a tag-only change there is refused). */
export function slotOf(f: YamlFile, r: Reached, segs: Seg[], locator: string, imageRef: boolean): ScalarSlot {
  const last = segs[segs.length - 1];
  const slot: ScalarSlot = { node: r.node, locator, ref: imageRef, inFlow: !!(r.parent as YAMLMap | undefined)?.flow };
  if (!imageRef && typeof last === 'string' && /^tag$/i.test(last)) {
    slot.tagField = true;
    if (isMap(r.parent)) {
      const dig = pairOf(r.parent, 'digest');
      const dv = str(dig?.value);
      if (dv && !isTemplate(dv)) slot.digestBeside = dv;
    }
  }
  return slot;
}

/** The slot a dotted path names, in whichever document holds it (refused when several do). */
export function helmSlot(f: YamlFile, target: string, imageRef: boolean): ScalarSlot {
  const segs = parsePath(target);
  const found: Array<{ slot: ScalarSlot; doc: number }> = [];
  let firstMiss: Error | undefined;
  f.docs.forEach((d, i) => {
    if (d.contents === null) return;
    try {
      const r = reach(f, d.contents, segs);
      found.push({ slot: slotOf(f, r, segs, target, imageRef), doc: i });
    } catch (e) {
      if ((e as { code?: string }).code !== EditErrors.NOT_FOUND) throw e;
      firstMiss ??= e as Error;
    }
  });
  if (found.length > 1) {
    throw refuse(f, EditErrors.AMBIGUOUS, posOf(found[1].slot.node), `${target} is in ${found.length} documents of ${f.file}`, 'split the file, or pin it in a file that holds one values document', found.map((x) => `document ${x.doc + 1}, line ${lineOf(f, posOf(x.slot.node))}`));
  }
  if (found.length === 0) {
    const rel = f.docs.some((d) => isMap(d.contents) && strAt(d.contents, 'kind') === 'HelmRelease') && segs[0] !== 'spec';
    if (rel) {
      throw refuse(f, EditErrors.NOT_FOUND, 0, `${target} does not exist in ${f.file}, a Flux HelmRelease`, `a HelmRelease holds its values under spec.values: try spec.values.${target}`);
    }
    throw firstMiss ?? refuse(f, EditErrors.NOT_FOUND, 0, `${target} does not exist in ${f.file} (it holds no document)`, 'check --file');
  }
  return found[0].slot;
}

/** Pins by image name over detected shapes; shared by the Application target's valuesObject. */
export function editDetected(f: YamlFile, images: HelmImage[], pins: Pin[], edits: Edits, warnings: string[]): PinChange[] {
  const changes: PinChange[] = [];
  for (const pin of pins) {
    const hits = images.filter((im) => sameImage(im.ref.name, pin.name));
    if (!hits.length) {
      throw refuse(f, EditErrors.NOT_FOUND, 0, `no image ${pin.name} in ${f.file}`, 'check the image name (the full repository, registry/repository when the values split it), or name the field with `gitops-ci pin --target PATH`', images.length ? [`images found: ${[...new Set(images.map((i) => `${i.ref.name} (line ${i.ref.line})`))].join(', ')}`] : ['no image shapes (repository/tag, image: "repo:tag") found']);
    }
    for (const im of hits) {
      const before = { ...im.ref };
      const after: ImageRef = { ...im.ref };
      let changed = false;
      if (im.str) {
        checkShared(f, im.str.node, im.ref.locator!);
        const want: Want = {};
        if (pin.tag !== undefined) want.tag = pin.tag;
        if (pin.digest !== undefined) want.digest = pin.digest;
        if (pin.newName !== undefined) want.name = pin.newName;
        const r = setSlot(f, edits, { node: im.str.node, locator: im.ref.locator!, ref: true }, want, warnings);
        changed = r.changed;
        const p = parseRef(r.after);
        after.name = p.name;
        after.tag = p.tag;
        after.digest = p.digest;
      } else if (im.block) {
        const b = im.block;
        const loc = pathString(b.path);
        checkShared(f, b.map, loc || '(the document)');
        if (pin.newName !== undefined && !sameImage(pin.newName, im.ref.name)) {
          throw refuse(f, EditErrors.BAD_VALUE, posOf(b.map), `${loc} in ${f.file} splits the image into fields; a new repository (${pin.newName}) is not pinned there`, 'pin the repository field with `gitops-ci pin --target PATH.repository`, or keep the image name');
        }
        if (pin.digest !== undefined) {
          if (!b.digest) throw refuse(f, EditErrors.NOT_FOUND, posOf(b.map), `${loc} in ${f.file} has no digest field to pin ${pin.digest} in`, 'add a digest field the chart reads (pin never invents keys), or pin a tag');
          const r = setSlot(f, edits, { node: b.digest, locator: `${loc}.digest`, ref: false }, { digest: pin.digest }, warnings);
          changed ||= r.changed;
          after.digest = r.after;
        }
        if (pin.tag !== undefined) {
          if (!b.tag) throw refuse(f, EditErrors.NOT_FOUND, posOf(b.map), `${loc} in ${f.file} has no tag field`, 'add a tag field the chart reads (pin never invents keys), or pin a digest');
          const dv = str(b.digest);
          const r = setSlot(f, edits, { node: b.tag, locator: `${loc}.tag`, ref: false, tagField: true, ...(pin.digest === undefined && dv ? { digestBeside: dv } : {}) }, { tag: pin.tag }, warnings);
          changed ||= r.changed;
          after.tag = r.after;
        }
      }
      changes.push({ pin, before, after, changed });
    }
  }
  return changes;
}

export const helm: EditTarget = {
  kind: 'helm',
  summary: 'Helm values files (values*.yaml) and Flux HelmRelease spec.values: dotted paths, or detected repository/tag/digest blocks and image: "repo:tag" strings',
  async find(dir: string): Promise<string[]> {
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    const out: string[] = [];
    for (const n of names) {
      if (VALUES_NAME.test(n)) out.push(join(dir, n));
      else if (/\.ya?ml$/i.test(n) && !n.startsWith('.')) {
        const text = await readFile(join(dir, n), 'utf8').catch(() => '');
        if (isHelmRelease(text)) out.push(join(dir, n));
      }
    }
    return out;
  },
  detect(text: string, file: string): boolean {
    return VALUES_NAME.test(basename(file)) || isHelmRelease(text);
  },
  pin(text: string, file: string, req: PinRequest, opts?: EditOptions): EditResult {
    // the common case without the parse (src/edit/helm-fast.ts); anything it does not take, with every refusal
    return pinHelmFast(text, req) ?? pinWith((f, target, imageRef) => [helmSlot(f, target, imageRef)], text, file, req, opts);
  },
  images(text: string, file: string): ImageRef[] {
    const f = parseYamlFile(text, file);
    return valuesRoots(f).flatMap((r) => detectHelmImages(f, r.node, r.prefix)).map((i) => i.ref);
  },
  edit(text: string, pins: Pin[], file: string, opts: EditOptions = {}): EditResult {
    const f = parseYamlFile(text, opts.where ?? file);
    const images = valuesRoots(f).flatMap((r) => detectHelmImages(f, r.node, r.prefix));
    const edits = new Edits();
    const warnings: string[] = [];
    const changes = editDetected(f, images, pins, edits, warnings);
    return { text: edits.list.length ? edits.apply(text) : text, changes, warnings };
  },
};
