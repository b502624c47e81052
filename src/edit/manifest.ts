/**
 * The plain-manifest target: `image:` of containers and initContainers in any object (Pod, Deployment,
 * CronJob… any depth), across multi-document files and `kind: List` items.
 *
 * TARGET (pin): `container=NAME` or `image=REPOSITORY`, optionally scoped `Kind/name:` (e.g.
 * `Deployment/web:container=app`). A container name that matches more than one container is refused; an
 * image name edits every container that runs that image (as kustomize's images: does). `image:` fields are
 * always image references: a tag or a digest changes, the repository stays.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, type Node, type YAMLMap } from 'yaml';
import { fail } from '../core/errors.js';
import { EditErrors } from './errors.js';
import { pinWith } from './pin.js';
import { parseRef, sameImage } from './imageref.js';
import { setSlot, type Want } from './scalar.js';
import { Edits } from './splice.js';
import type { EditOptions, EditResult, EditTarget, ImageRef, Pin, PinRequest, PinChange } from './target.js';
import { checkShared, lineOf, objectsOf, pairOf, parseYamlFile, posOf, refuse, strAt, type YamlFile } from './yamlfile.js';

const CONTAINER_KEYS = new Set(['containers', 'initContainers']);

export interface Container {
  /** Kind/name of the top-level object */
  object: string;
  name: string;
  /** containers | initContainers */
  list: string;
  image: unknown;
  map: YAMLMap;
  /** reached through an alias, or inside a node whose anchor an alias uses */
  shared?: string;
}

function walk(f: YamlFile, node: unknown, object: string, out: Container[], shared?: string): void {
  if (isAlias(node)) return; // what an alias shares is edited where it is anchored (and refused there)
  const a = (node as Node | null)?.anchor;
  const sh = shared ?? (a && f.usedAnchors.has(a) ? `&${a}` : undefined);
  if (isMap(node)) {
    for (const p of node.items) {
      const k = isScalar(p.key) ? String(p.key.value) : '';
      const v = p.value;
      if (CONTAINER_KEYS.has(k) && (isSeq(v) || isAlias(v))) {
        const seq = isAlias(v) ? undefined : v;
        if (!seq) continue;
        const seqShared = sh ?? (seq.anchor && f.usedAnchors.has(seq.anchor) ? `&${seq.anchor}` : undefined);
        for (const it of seq.items) {
          if (isAlias(it)) continue;
          if (!isMap(it)) continue;
          const itShared = seqShared ?? (it.anchor && f.usedAnchors.has(it.anchor) ? `&${it.anchor}` : undefined);
          const img = pairOf(it, 'image');
          if (!img) continue;
          out.push({ object, name: strAt(it, 'name') ?? '', list: k, image: img.value, map: it, ...(itShared ? { shared: itShared } : {}) });
        }
      } else walk(f, v, object, out, sh);
    }
  } else if (isSeq(node)) for (const it of node.items) walk(f, it, object, out, sh);
}

export function containersOf(f: YamlFile): Container[] {
  const out: Container[] = [];
  for (const d of f.docs) {
    for (const o of objectsOf(d)) {
      const kind = strAt(o, 'kind') ?? '?';
      const name = strAt(o, 'metadata', 'name') ?? '?';
      walk(f, o, `${kind}/${name}`, out);
    }
  }
  return out;
}

export interface ManifestSelector {
  scope?: { kind: string; name: string };
  by: 'container' | 'image';
  value: string;
}

export function parseManifestTarget(target: string): ManifestSelector {
  const m = /^(?:([A-Za-z][A-Za-z0-9.]*)\/([A-Za-z0-9][A-Za-z0-9.-]*):)?(container|image)=(\S+)$/.exec(target);
  if (!m) {
    throw fail.usage(EditErrors.BAD_TARGET, `invalid manifest target ${JSON.stringify(target)}`, {
      where: 'command line',
      hint: 'use container=NAME or image=REPOSITORY, optionally scoped as Kind/name: (e.g. Deployment/web:container=app)',
    });
  }
  return { ...(m[1] ? { scope: { kind: m[1], name: m[2] } } : {}), by: m[3] as 'container' | 'image', value: m[4] };
}

function describe(c: Container): string {
  return `${c.object} ${c.list === 'initContainers' ? 'initContainer' : 'container'} ${c.name || '(no name)'}`;
}

/** The containers a selector names; refuses none and (for container=) several. */
export function selectContainers(f: YamlFile, all: Container[], sel: ManifestSelector, target: string): Container[] {
  const inScope = sel.scope ? all.filter((c) => c.object === `${sel.scope!.kind}/${sel.scope!.name}`) : all;
  if (sel.scope && !inScope.length) {
    const objs = [...new Set(all.map((c) => c.object))];
    throw refuse(f, EditErrors.NOT_FOUND, 0, `${f.file} holds no ${sel.scope.kind}/${sel.scope.name} with containers`, 'check the Kind/name: scope (kind as written, metadata.name)', objs.length ? [`objects with containers: ${objs.join(', ')}`] : undefined);
  }
  const hits = inScope.filter((c) => (sel.by === 'container' ? c.name === sel.value : isScalar(c.image) && typeof c.image.value === 'string' && sameImage(parseRef(c.image.value).name, sel.value)));
  if (!hits.length) {
    throw refuse(f, EditErrors.NOT_FOUND, 0, `no ${sel.by === 'container' ? `container named ${sel.value}` : `container running ${sel.value}`} in ${sel.scope ? `${sel.scope.kind}/${sel.scope.name} of ` : ''}${f.file}`, sel.by === 'container' ? 'check the container name, or select by image=REPOSITORY' : 'check the repository (without tag or digest), or select by container=NAME', inScope.length ? ['containers there:', ...inScope.map((c) => `  ${describe(c)}: ${isScalar(c.image) ? String(c.image.value) : '?'} (line ${lineOf(f, posOf(c.image))})`)] : undefined);
  }
  if (sel.by === 'container' && hits.length > 1) {
    throw refuse(f, EditErrors.AMBIGUOUS, posOf(hits[1].image), `container=${sel.value} matches ${hits.length} containers in ${f.file}`, `scope it with Kind/name:, e.g. ${hits[0].object}:container=${sel.value}`, hits.map((c) => `  ${describe(c)} (line ${lineOf(f, posOf(c.image))})`));
  }
  for (const c of hits) {
    if (c.shared) throw refuse(f, EditErrors.ANCHOR, posOf(c.image), `${describe(c)} in ${f.file} is shared through the anchor ${c.shared}; editing it would change every place that uses it`, `write the container out where you want to change it, then pin it there (${target})`);
    checkShared(f, c.image, `${describe(c)} image`);
  }
  return hits;
}

export function refOfContainer(f: YamlFile, c: Container): ImageRef {
  const v = isScalar(c.image) && typeof c.image.value === 'string' ? c.image.value : '';
  const r = parseRef(v);
  const ref: ImageRef = { name: r.name, line: lineOf(f, posOf(c.image)), locator: `${c.object}:container=${c.name}` };
  if (r.tag) ref.tag = r.tag;
  if (r.digest) ref.digest = r.digest;
  return ref;
}

function wantOf(pin: Pin): Want {
  const w: Want = {};
  if (pin.tag !== undefined) w.tag = pin.tag;
  if (pin.digest !== undefined) w.digest = pin.digest;
  if (pin.newName !== undefined) w.name = pin.newName;
  return w;
}

export const manifest: EditTarget = {
  kind: 'manifest',
  summary: 'plain Kubernetes manifests: image: of containers and initContainers, multi-document files and Lists',
  async find(dir: string): Promise<string[]> {
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    const out: string[] = [];
    for (const n of names) {
      if (!/\.ya?ml$/i.test(n) || n.startsWith('.') || /^(kustomization\.ya?ml|values([.-].*)?\.ya?ml)$/i.test(n)) continue;
      const text = await readFile(join(dir, n), 'utf8').catch(() => '');
      if (manifest.detect(text, n)) out.push(join(dir, n));
    }
    return out;
  },
  detect(text: string, file: string): boolean {
    return !/^(kustomization\.ya?ml|Kustomization)$/.test(basename(file)) && /^\s*(?:-\s+)?(?:initContainers|containers):/m.test(text) && /^\s*(?:-\s+)?kind:/m.test(text) && !/^kind:\s*(Application|HelmRelease)\s*$/m.test(text);
  },
  pin(text: string, file: string, req: PinRequest, opts?: EditOptions): EditResult {
    return pinWith((f, target) => selectContainers(f, containersOf(f), parseManifestTarget(target), target).map((c) => ({ node: c.image, locator: refOfContainer(f, c).locator!, ref: true })), text, file, req, opts);
  },
  images(text: string, file: string): ImageRef[] {
    const f = parseYamlFile(text, file);
    return containersOf(f).filter((c) => isScalar(c.image) && typeof c.image.value === 'string').map((c) => refOfContainer(f, c));
  },
  edit(text: string, pins: Pin[], file: string, opts: EditOptions = {}): EditResult {
    const f = parseYamlFile(text, opts.where ?? file);
    const all = containersOf(f);
    const edits = new Edits();
    const warnings: string[] = [];
    const changes: PinChange[] = [];
    for (const pin of pins) {
      const hits = selectContainers(f, all, { by: 'image', value: pin.name }, `image=${pin.name}`);
      for (const c of hits) {
        const before = refOfContainer(f, c);
        const r = setSlot(f, edits, { node: c.image, locator: before.locator!, ref: true }, wantOf(pin), warnings);
        const p = parseRef(r.after);
        changes.push({ pin, before, after: { ...before, name: p.name, tag: p.tag, digest: p.digest }, changed: r.changed });
      }
    }
    return { text: edits.list.length ? edits.apply(text) : text, changes, warnings };
  },
};

