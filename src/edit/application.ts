/**
 * The Argo CD Application target, and the source-level logic Image Updater's `.argocd-source-<app>.yaml`
 * target shares (src/edit/argocd-source.ts): both hold an ApplicationSource's `kustomize.images` (kustomize
 * image expressions, as `kustomize edit set image` takes them), `helm.parameters` (`name`, `value`,
 * `forceString`; Image Updater writes `forcestring`) and `helm.valuesObject` (a values map).
 * An Application has `spec.source`, or `spec.sources[]` (multi-source).
 *
 * TARGET (pin): `[APP:][sources[n].]kustomize.images:IMAGE`, `[APP:][sources[n].]helm.parameters:NAME`,
 * `[APP:][sources[n].]helm.valuesObject.PATH`. APP (metadata.name) is needed only when the file holds several
 * Applications that have the target, `sources[n].` only when several sources have it.
 * https://argo-cd.readthedocs.io/en/stable/user-guide/parameters/ ("Store Overrides In Git")
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isMap, isScalar, isSeq, type Scalar, type YAMLMap } from 'yaml';
import { fail } from '../core/errors.js';
import { EditErrors } from './errors.js';
import { pinWith } from './pin.js';
import { detectHelmImages, editDetected, slotOf } from './helm.js';
import { parseRef, sameImage } from './imageref.js';
import { setSlot, type ScalarSlot, type Want } from './scalar.js';
import { Edits } from './splice.js';
import type { EditOptions, EditResult, EditTarget, ImageRef, Pin, PinChange, PinRequest } from './target.js';
import { keyOf, lineOf, pairOf, parsePath, parseYamlFile, pathString, posOf, reach, refuse, strAt, type Seg, type YamlFile } from './yamlfile.js';

export interface ArgoTarget {
  app?: string;
  source?: number;
  what: 'kustomize.images' | 'helm.parameters' | 'helm.valuesObject';
  key: string;
}

export function parseArgoTarget(target: string, withApp: boolean): ArgoTarget {
  let rest = target;
  let app: string | undefined;
  let source: number | undefined;
  const bad = () =>
    fail.usage(EditErrors.BAD_TARGET, `invalid ${withApp ? 'Application' : '.argocd-source'} target ${JSON.stringify(target)}`, {
      where: 'command line',
      hint: `use ${withApp ? '[APP:][sources[n].]' : ''}kustomize.images:IMAGE, ${withApp ? '[APP:][sources[n].]' : ''}helm.parameters:NAME or ${withApp ? '[APP:][sources[n].]' : ''}helm.valuesObject.PATH`,
    });
  if (withApp && !/^(kustomize\.|helm\.|sources\[)/.test(rest)) {
    const i = rest.indexOf(':');
    if (i <= 0) throw bad();
    app = rest.slice(0, i);
    rest = rest.slice(i + 1);
  }
  const sm = withApp ? /^sources\[(\d+)\]\./.exec(rest) : null;
  if (sm) {
    source = Number(sm[1]);
    rest = rest.slice(sm[0].length);
  }
  let m: RegExpExecArray | null;
  if ((m = /^kustomize\.images:(\S+)$/.exec(rest))) return { ...(app ? { app } : {}), ...(source !== undefined ? { source } : {}), what: 'kustomize.images', key: m[1] };
  if ((m = /^helm\.parameters:(\S+)$/.exec(rest))) return { ...(app ? { app } : {}), ...(source !== undefined ? { source } : {}), what: 'helm.parameters', key: m[1] };
  if ((m = /^helm\.valuesObject\.(.+)$/.exec(rest))) {
    parsePath(m[1]);
    return { ...(app ? { app } : {}), ...(source !== undefined ? { source } : {}), what: 'helm.valuesObject', key: m[1] };
  }
  throw bad();
}

/** One ApplicationSource (or an override file's root), with how messages name it. */
export interface Source {
  map: YAMLMap;
  /** path segments from the document root, for reach's messages */
  prefix: Seg[];
  app?: string;
  index?: number;
  /** how a TARGET names this source: `APP:sources[1].` */
  qualifier: string;
}

/** the name images[] matches in a kustomize image expression (`name=new:tag`: name; `repo:tag`: repo) */
export function exprName(s: string): string {
  const eq = s.indexOf('=');
  return eq >= 0 ? s.slice(0, eq) : parseRef(s).name;
}

function forceStringOf(m: YAMLMap): boolean {
  const p = m.items.find((x) => (keyOf(x) ?? '').toLowerCase() === 'forcestring');
  const v = p?.value;
  return isScalar(v) && (v.value === true || v.value === 'true');
}

/** The slot of one target in one source (throws NOT_FOUND when the source lacks it). */
export function sourceSlot(f: YamlFile, src: Source, t: ArgoTarget, imageRef: boolean): ScalarSlot {
  const loc = `${src.qualifier}${t.what}${t.what === 'helm.valuesObject' ? '.' : ':'}${t.key}`;
  if (t.what === 'helm.valuesObject') {
    const segs = ['helm', 'valuesObject', ...parsePath(t.key)];
    const r = reach(f, src.map, segs, src.prefix);
    return slotOf(f, r, segs, loc, imageRef);
  }
  const listSegs = t.what === 'kustomize.images' ? ['kustomize', 'images'] : ['helm', 'parameters'];
  const r = reach(f, src.map, listSegs, src.prefix);
  const where = pathString([...src.prefix, ...listSegs]);
  if (!isSeq(r.node)) throw refuse(f, EditErrors.NOT_FOUND, posOf(r.node), `${where} in ${f.file} is not a list`, 'check the file: it should be a list');
  const seq = r.node;
  if (t.what === 'kustomize.images') {
    const hits = seq.items.filter((it) => isScalar(it) && typeof it.value === 'string' && sameImage(exprName(it.value), t.key)) as Scalar[];
    const all = seq.items.filter((it) => isScalar(it)).map((it) => String((it as Scalar).value));
    if (!hits.length) throw refuse(f, EditErrors.NOT_FOUND, posOf(seq), `no image ${t.key} in ${where} of ${f.file}`, 'check the image name (the name the resources use, before any =)', all.length ? [`entries: ${all.join(', ')}`] : undefined);
    if (hits.length > 1) throw refuse(f, EditErrors.AMBIGUOUS, posOf(hits[1]), `${t.key} is in ${where} of ${f.file} ${hits.length} times`, 'keep one entry per image (kustomize applies the last)');
    reach(f, hits[0], [], [...src.prefix, ...listSegs, seq.items.indexOf(hits[0])]);
    return { node: hits[0], locator: loc, ref: false, expr: true, inFlow: !!seq.flow };
  }
  const params = seq.items.filter((it): it is YAMLMap => isMap(it));
  const hits = params.filter((m) => strAt(m, 'name') === t.key);
  if (!hits.length) throw refuse(f, EditErrors.NOT_FOUND, posOf(seq), `no parameter ${t.key} in ${where} of ${f.file}`, 'check the parameter name; pin never adds parameters', params.length ? [`parameters: ${params.map((m) => strAt(m, 'name') ?? '?').join(', ')}`] : undefined);
  if (hits.length > 1) throw refuse(f, EditErrors.AMBIGUOUS, posOf(hits[1]), `parameter ${t.key} is in ${where} of ${f.file} ${hits.length} times`, 'keep one entry per parameter');
  const idx = seq.items.indexOf(hits[0]);
  const v = reach(f, hits[0], ['value'], [...src.prefix, ...listSegs, idx]);
  const slot: ScalarSlot = { node: v.node, locator: loc, ref: imageRef, forceString: forceStringOf(hits[0]), inFlow: !!hits[0].flow };
  if (!imageRef && /(^|\.)tag$/i.test(t.key)) {
    slot.tagField = true;
    const dig = params.find((m) => strAt(m, 'name') === t.key.replace(/tag$/i, 'digest'));
    const dv = dig ? strAt(dig, 'value') : undefined;
    if (dv) slot.digestBeside = dv;
  }
  return slot;
}

/** Picks the one source that has the target; refuses none and several (naming the qualifiers to pass). */
export function pickSlot(f: YamlFile, sources: Source[], t: ArgoTarget, imageRef: boolean, target: string): ScalarSlot {
  const found: ScalarSlot[] = [];
  const misses: Error[] = [];
  for (const s of sources) {
    try {
      found.push(sourceSlot(f, s, t, imageRef));
    } catch (e) {
      if ((e as { code?: string }).code !== EditErrors.NOT_FOUND) throw e;
      misses.push(e as Error);
    }
  }
  if (found.length === 1) return found[0];
  if (found.length > 1) {
    throw refuse(f, EditErrors.AMBIGUOUS, posOf(found[1].node), `${target} matches ${found.length} places in ${f.file}`, `qualify it: ${found.map((s) => s.locator).join(' or ')}`, found.map((s) => `  ${s.locator} (line ${lineOf(f, posOf(s.node))})`));
  }
  if (misses.length === 1) throw misses[0];
  throw refuse(f, EditErrors.NOT_FOUND, 0, `${target} does not exist in ${f.file}${sources.length ? ` (looked in ${sources.map((s) => s.qualifier.replace(/[:.]$/, '') || 'the file').join(', ')})` : ''}`, 'check the target; pin never adds keys, parameters or images', misses.map((e) => `  ${e.message}`));
}

/** the sources of the Applications in a file */
export function applicationSources(f: YamlFile): Source[] {
  const out: Source[] = [];
  for (const d of f.docs) {
    const c = d.contents;
    if (!isMap(c) || strAt(c, 'kind') !== 'Application') continue;
    const app = strAt(c, 'metadata', 'name');
    const spec = pairOf(c, 'spec')?.value;
    if (!isMap(spec)) continue;
    const one = pairOf(spec, 'source')?.value;
    if (isMap(one)) out.push({ map: one, prefix: ['spec', 'source'], ...(app ? { app } : {}), qualifier: `${app ? `${app}:` : ''}` });
    const many = pairOf(spec, 'sources')?.value;
    if (isSeq(many)) many.items.forEach((m, i) => isMap(m) && out.push({ map: m, prefix: ['spec', 'sources', i], ...(app ? { app } : {}), index: i, qualifier: `${app ? `${app}:` : ''}sources[${i}].` }));
  }
  return out;
}

/** The images of some sources: kustomize.images entries, helm.parameters groups (P.repository|P.name + P.tag/P.digest), valuesObject shapes. */
export interface SourceImage {
  ref: ImageRef;
  apply(edits: Edits, pin: Pin, warnings: string[]): { after: ImageRef; changed: boolean };
}

export function sourceImages(f: YamlFile, sources: Source[]): SourceImage[] {
  const out: SourceImage[] = [];
  for (const s of sources) {
    const k = pairOf(s.map, 'kustomize')?.value;
    const images = isMap(k) ? pairOf(k, 'images')?.value : undefined;
    if (isSeq(images)) {
      images.items.forEach((it) => {
        if (!isScalar(it) || typeof it.value !== 'string') return;
        const v = it.value;
        const eq = v.indexOf('=');
        const r = parseRef(eq >= 0 ? v.slice(eq + 1) : v);
        const ref: ImageRef = { name: exprName(v), line: lineOf(f, posOf(it)), locator: `${s.qualifier}kustomize.images:${exprName(v)}` };
        if (eq >= 0) ref.newName = r.name;
        if (r.tag) ref.tag = r.tag;
        if (r.digest) ref.digest = r.digest;
        out.push({
          ref,
          apply: (edits, pin, warnings) => {
            const slot = sourceSlot(f, s, { what: 'kustomize.images', key: ref.name }, false);
            const want: Want = {};
            if (pin.tag !== undefined) want.tag = pin.tag;
            if (pin.digest !== undefined) want.digest = pin.digest;
            if (pin.newName !== undefined) want.name = pin.newName;
            const res = setSlot(f, edits, slot, want, warnings);
            const a = parseRef(res.after.includes('=') ? res.after.slice(res.after.indexOf('=') + 1) : res.after);
            return { after: { ...ref, ...(eq >= 0 ? { newName: a.name } : {}), tag: a.tag, digest: a.digest }, changed: res.changed };
          },
        });
      });
    }
    const h = pairOf(s.map, 'helm')?.value;
    const params = isMap(h) ? pairOf(h, 'parameters')?.value : undefined;
    if (isSeq(params)) {
      const byName = new Map<string, YAMLMap>();
      for (const m of params.items) if (isMap(m) && strAt(m, 'name')) byName.set(strAt(m, 'name')!, m);
      for (const [name, m] of byName) {
        const pm = /^(.*?)(?:repository|name)$/.exec(name);
        if (!pm || (pm[1] !== '' && !pm[1].endsWith('.'))) continue;
        const P = pm[1];
        const repo = strAt(m, 'value');
        if (!repo || /[{$]/.test(repo)) continue;
        const registry = byName.get(`${P}registry`);
        const full = registry && strAt(registry, 'value') ? `${strAt(registry, 'value')}/${repo}` : repo;
        const tagP = byName.get(`${P}tag`);
        const digP = byName.get(`${P}digest`);
        const ref: ImageRef = { name: parseRef(full).name, line: lineOf(f, posOf(m)), locator: `${s.qualifier}helm.parameters:${P}tag` };
        if (tagP && strAt(tagP, 'value')) ref.tag = strAt(tagP, 'value');
        if (digP && strAt(digP, 'value')) ref.digest = strAt(digP, 'value');
        out.push({
          ref,
          apply: (edits, pin, warnings) => {
            const after = { ...ref };
            let changed = false;
            if (pin.newName !== undefined && !sameImage(pin.newName, ref.name)) throw refuse(f, EditErrors.BAD_VALUE, posOf(m), `${ref.locator} in ${f.file}: a new repository (${pin.newName}) is not pinned through tag parameters`, `pin ${s.qualifier}helm.parameters:${name} with gitops-ci pin, or keep the image name`);
            if (pin.digest !== undefined) {
              if (!digP) throw refuse(f, EditErrors.NOT_FOUND, posOf(m), `no parameter ${P}digest in ${f.file} to pin ${pin.digest} in`, 'add the digest parameter the chart reads (pin never adds parameters), or pin a tag');
              const r = setSlot(f, edits, sourceSlot(f, s, { what: 'helm.parameters', key: `${P}digest` }, false), { digest: pin.digest }, warnings);
              changed ||= r.changed;
              after.digest = r.after;
            }
            if (pin.tag !== undefined) {
              if (!tagP) throw refuse(f, EditErrors.NOT_FOUND, posOf(m), `no parameter ${P}tag in ${f.file}`, 'add the tag parameter the chart reads (pin never adds parameters)');
              const slot = sourceSlot(f, s, { what: 'helm.parameters', key: `${P}tag` }, false);
              if (pin.digest !== undefined) delete slot.digestBeside;
              const r = setSlot(f, edits, slot, { tag: pin.tag }, warnings);
              changed ||= r.changed;
              after.tag = r.after;
            }
            return { after, changed };
          },
        });
      }
    }
    const vo = isMap(h) ? pairOf(h, 'valuesObject')?.value : undefined;
    if (vo) {
      for (const im of detectHelmImages(f, vo, [...s.prefix, 'helm', 'valuesObject'])) {
        out.push({
          ref: im.ref,
          apply: (edits, pin, warnings) => {
            const [c] = editDetected(f, [im], [pin], edits, warnings);
            return { after: c.after, changed: c.changed };
          },
        });
      }
    }
  }
  return out;
}

export function editSources(f: YamlFile, text: string, sources: Source[], pins: Pin[]): EditResult {
  const imgs = sourceImages(f, sources);
  const edits = new Edits();
  const warnings: string[] = [];
  const changes: PinChange[] = [];
  for (const pin of pins) {
    const hits = imgs.filter((i) => sameImage(i.ref.name, pin.name));
    if (!hits.length) {
      throw refuse(f, EditErrors.NOT_FOUND, 0, `no image ${pin.name} in ${f.file}`, 'check the image name, or name the field with `gitops-ci pin --target`', imgs.length ? [`images found: ${imgs.map((i) => `${i.ref.name} (${i.ref.locator}, line ${i.ref.line})`).join(', ')}`] : ['no kustomize.images, image helm.parameters or valuesObject image shapes found']);
    }
    for (const h of hits) {
      const r = h.apply(edits, pin, warnings);
      changes.push({ pin, before: h.ref, after: r.after, changed: r.changed });
    }
  }
  return { text: edits.list.length ? edits.apply(text) : text, changes, warnings };
}

const APP_RE = /^kind:\s*Application\s*$/m;
const ARGO_API = /^apiVersion:\s*argoproj\.io\//m;

export const application: EditTarget = {
  kind: 'application',
  summary: 'Argo CD Application manifests: spec.source(s).kustomize.images, helm.parameters and helm.valuesObject',
  async find(dir: string): Promise<string[]> {
    const names = (await readdir(dir).catch(() => [] as string[])).sort();
    const out: string[] = [];
    for (const n of names) {
      if (!/\.ya?ml$/i.test(n) || n.startsWith('.')) continue;
      const text = await readFile(join(dir, n), 'utf8').catch(() => '');
      if (application.detect(text, n)) out.push(join(dir, n));
    }
    return out;
  },
  detect(text: string, file: string): boolean {
    return !basename(file).startsWith('.argocd-source') && APP_RE.test(text) && ARGO_API.test(text);
  },
  pin(text: string, file: string, req: PinRequest, opts?: EditOptions): EditResult {
    return pinWith((f, target, imageRef) => [applicationSlot(f, target, imageRef)], text, file, req, opts);
  },
  images(text: string, file: string): ImageRef[] {
    const f = parseYamlFile(text, file);
    return sourceImages(f, applicationSources(f)).map((i) => i.ref);
  },
  edit(text: string, pins: Pin[], file: string, opts: EditOptions = {}): EditResult {
    const f = parseYamlFile(text, opts.where ?? file);
    return editSources(f, text, applicationSources(f), pins);
  },
};

/** `pin` on an Application: the sources of APP (or all), sources[n] when given */
export function applicationSlot(f: YamlFile, target: string, imageRef: boolean): ScalarSlot {
  const t = parseArgoTarget(target, true);
  let sources = applicationSources(f);
  if (!sources.length) throw refuse(f, EditErrors.NOT_FOUND, 0, `${f.file} holds no Argo CD Application with spec.source or spec.sources`, 'check --file and --kind');
  if (t.app) {
    const apps = [...new Set(sources.map((s) => s.app))];
    sources = sources.filter((s) => s.app === t.app);
    if (!sources.length) throw refuse(f, EditErrors.NOT_FOUND, 0, `no Application ${t.app} in ${f.file}`, 'check APP: (metadata.name)', [`Applications: ${apps.join(', ')}`]);
  }
  if (t.source !== undefined) {
    sources = sources.filter((s) => s.index === t.source);
    if (!sources.length) throw refuse(f, EditErrors.NOT_FOUND, 0, `no spec.sources[${t.source}] in ${t.app ? `Application ${t.app} of ` : ''}${f.file}`, 'check the index (from 0); a single-source Application has no sources[n]');
  }
  return pickSlot(f, sources, t, imageRef, target);
}
