/**
 * The rendered diff: what a change to an overlay does to the manifests Argo CD will apply. Both sides are the
 * output of `kustomize build` (src/kustomize/overlay.ts renderOverlay). Each side is split into resources
 * (kind/namespace/name); the values under `data` and `stringData` of every Secret are replaced by a marker
 * BEFORE anything is compared or printed, so a value can appear nowhere, not even in a truncated tail. A key
 * whose value differs between the two sides gets a different marker, so a changed Secret still shows.
 *
 * formatDiffs() turns the per-resource diffs into Markdown for a merge request: one `<details>` block per
 * resource with a unified diff, each diff cut at maxPerResource characters with a note, the whole body kept
 * under maxChars (100,000 by default, below GitLab's 1,000,000-character note limit and readable), the
 * resources left out counted at the end.
 */
import { parseAllDocuments, stringify } from 'yaml';
import { fail } from '../core/errors.js';
import { escapeMarkdown } from '../core/markdown.js';
import { unifiedDiff } from '../kustomize/diff.js';
import { RenderErrors } from './errors.js';

export const REDACTED = '<redacted>';
export const REDACTED_CHANGED = '<redacted, changed>';
export const DEFAULT_MAX_CHARS = 100_000;
export const DEFAULT_MAX_PER_RESOURCE = 20_000;

export interface Resource {
  /** the apiVersion as written ("apps/v1", "v1") */
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  /**
   * group/version/kind/namespace/name ("apps/v1/Deployment/shop/web", "/v1/Secret/shop/db"): two resources
   * that differ only in their API group are two resources (a decoy `Deployment` of another group must not
   * stand in for the real one)
   */
  key: string;
  doc: Record<string, unknown>;
}

export interface ResourceDiff {
  key: string;
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  status: 'added' | 'removed' | 'changed';
  /** a generated resource whose hash suffix changed: its name before */
  renamedFrom?: string;
  /** unified diff of the redacted YAML */
  diff: string;
}

/** group and version of an apiVersion ("apps/v1" -> apps, v1; "v1" -> core "", v1) */
export function groupVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

function keyOf(apiVersion: string, kind: string, namespace: string | undefined, name: string): string {
  const { group, version } = groupVersion(apiVersion);
  return JSON.stringify([group, version, kind, namespace ?? '', name]);
}

/** Split `kustomize build` output into resources keyed by group, version, kind, namespace and name. */
export function splitResources(yamlText: string, where = 'rendered manifests'): Map<string, Resource> {
  const out = new Map<string, Resource>();
  for (const d of parseAllDocuments(yamlText)) {
    if (d.errors.length) {
      throw fail.failed(RenderErrors.YAML, `the rendered manifests of ${where} are not valid YAML: ${d.errors[0]!.message.split('\n')[0]}`, { where, hint: 'kustomize build produced output that is not YAML; check the overlay and the kustomize version' });
    }
    const doc = d.toJS({ maxAliasCount: 1000 }) as unknown;
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) continue;
    const o = doc as Record<string, unknown>;
    const md = (o.metadata ?? {}) as Record<string, unknown>;
    const apiVersion = typeof o.apiVersion === 'string' ? o.apiVersion : '?';
    const kind = typeof o.kind === 'string' ? o.kind : '?';
    const name = typeof md.name === 'string' ? md.name : '?';
    const namespace = typeof md.namespace === 'string' && md.namespace ? md.namespace : undefined;
    const key = keyOf(apiVersion, kind, namespace, name);
    if (out.has(key)) {
      throw fail.failed(RenderErrors.YAML, `the rendered manifests of ${where} hold ${label({ apiVersion, kind, namespace, name })} twice`, { where, hint: 'kustomize should have refused this; check the overlay' });
    }
    out.set(key, { apiVersion, kind, namespace, name, key, doc: o });
  }
  return out;
}

function isSecretDoc(d: Record<string, unknown>): boolean {
  return d.kind === 'Secret';
}

function isSecret(r: Resource | undefined): boolean {
  return !!r && r.kind === 'Secret' && (r.doc.apiVersion === 'v1' || r.doc.apiVersion === undefined);
}

/** a copy of a Secret with every data/stringData value replaced; with `other` (the before side), keys whose value differs from it get REDACTED_CHANGED */
function redactSecret(doc: Record<string, unknown>, other?: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...doc };
  for (const field of ['data', 'stringData']) {
    const m = doc[field];
    if (m === undefined || m === null) continue;
    if (typeof m !== 'object' || Array.isArray(m)) {
      copy[field] = REDACTED;
      continue;
    }
    const o = other?.[field] as Record<string, unknown> | undefined;
    const r: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
      const changed = other !== undefined && isSecretDoc(other) && (o === undefined || typeof o !== 'object' || !(k in o) || JSON.stringify(o[k]) !== JSON.stringify(v));
      r[k] = changed ? REDACTED_CHANGED : REDACTED;
    }
    copy[field] = r;
  }
  // kubectl's last-applied annotation would carry the values again
  const md = doc.metadata as Record<string, unknown> | undefined;
  const ann = md?.annotations as Record<string, unknown> | undefined;
  if (ann && 'kubectl.kubernetes.io/last-applied-configuration' in ann) {
    copy.metadata = { ...md, annotations: { ...ann, 'kubectl.kubernetes.io/last-applied-configuration': REDACTED } };
  }
  return copy;
}

function toYaml(doc: Record<string, unknown>): string {
  return stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** kustomize's generated names end in -<10-character content hash>: the stem is the name without it */
const HASHED = /^(.+)-[a-z0-9]{10}$/;

function stemKey(r: Resource): string | undefined {
  const m = HASHED.exec(r.name);
  return m ? keyOf(r.apiVersion, r.kind, r.namespace, m[1]!) : undefined;
}

/**
 * Per-resource diffs of two renders, Secrets redacted first; resources in a stable order (kind, namespace,
 * name). A generated ConfigMap/Secret whose content changed also changed its hash suffix: it is paired with its
 * predecessor (same kind, namespace and name stem) and shown as one changed resource.
 */
export function diffRendered(before: string, after: string, where = 'rendered manifests'): ResourceDiff[] {
  const a = splitResources(before, `${where} (before)`);
  const b = splitResources(after, `${where} (after)`);
  const pairs: Array<[Resource | undefined, Resource | undefined]> = [];
  const onlyA = [...a.values()].filter((r) => !b.has(r.key));
  const onlyB = [...b.values()].filter((r) => !a.has(r.key));
  const used = new Set<string>();
  for (const ra of onlyA) {
    const st = stemKey(ra);
    const cands = st ? onlyB.filter((rb) => stemKey(rb) === st && !used.has(rb.key)) : [];
    const same = st ? onlyA.filter((x) => stemKey(x) === st) : [];
    if (cands.length === 1 && same.length === 1) {
      used.add(cands[0]!.key);
      used.add(ra.key);
      pairs.push([ra, cands[0]]);
    }
  }
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    if (used.has(k)) continue;
    pairs.push([a.get(k), b.get(k)]);
  }
  const order = (r: Resource) => `${r.kind}\u0000${r.namespace ?? ''}\u0000${r.name}\u0000${r.apiVersion}`;
  pairs.sort((x, y) => (order((x[1] ?? x[0])!) < order((y[1] ?? y[0])!) ? -1 : 1));
  const out: ResourceDiff[] = [];
  for (const [ra, rb] of pairs) {
    const secret = isSecret(ra) || isSecret(rb);
    // both sides redacted before they are compared; the after side marks the keys whose value changed
    const da = ra ? (secret ? redactSecret(ra.doc) : ra.doc) : undefined;
    const db = rb ? (secret ? redactSecret(rb.doc, ra?.doc) : rb.doc) : undefined;
    const ta = da ? toYaml(da) : '';
    const tb = db ? toYaml(db) : '';
    if (ta === tb) continue;
    const r = (rb ?? ra)!;
    const renamedFrom = ra && rb && ra.name !== rb.name ? ra.name : undefined;
    out.push({ key: r.key, apiVersion: r.apiVersion, kind: r.kind, namespace: r.namespace, name: r.name, status: !ra ? 'added' : !rb ? 'removed' : 'changed', renamedFrom, diff: unifiedDiff(ta, tb, `${r.kind}/${r.namespace ? `${r.namespace}/` : ''}${r.name}`) });
  }
  return out;
}

function label(r: { apiVersion: string; kind: string; namespace?: string; name: string }): string {
  return `${r.kind}/${r.namespace ? `${r.namespace}/` : ''}${r.name} (${r.apiVersion})`;
}

/**
 * A render error as it may be shown in a note or a log: kustomize quotes secretGenerator/configMapGenerator
 * literal sources in its errors (`literal sources [K=V …]: invalid literal source K V, expected key=value`),
 * which would put a Secret value in the MR. Those parts are replaced by the marker.
 */
export function redactRenderError(text: string): string {
  return text
    .replace(/(literal sources?) \[[^\]\n]*\]/g, `$1 [${REDACTED}]`)
    .replace(/(invalid literal source) .*?(, expected key=value|$)/gm, `$1 ${REDACTED}$2`)
    .replace(/(\bliterals?:?\s*\[)[^\]\n]*\]/gi, `$1${REDACTED}]`);
}

/** a code fence longer than any run of backticks in the text */
function fenceFor(text: string): string {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** cut a diff at a line boundary under `max` characters; the note says how much was left out */
export function truncateDiff(diff: string, max: number): { text: string; truncated: boolean } {
  if (diff.length <= max) return { text: diff, truncated: false };
  const lines = diff.split('\n');
  let size = 0;
  let keep = 0;
  for (const l of lines) {
    if (size + l.length + 1 > max) break;
    size += l.length + 1;
    keep++;
  }
  return { text: `${lines.slice(0, keep).join('\n')}\n`, truncated: true };
}

export interface DiffSection {
  /** e.g. "production (.kubernetes/overlays/production)" */
  title: string;
  diffs: ResourceDiff[];
  /** a render that failed: shown instead of the diffs */
  error?: string;
}

export interface FormatOptions {
  maxChars?: number;
  maxPerResource?: number;
  /** Markdown before the sections (a heading, the change list); counted in maxChars */
  header?: string;
  /** Markdown after everything (a marker, provenance); counted in maxChars and always kept */
  footer?: string;
}

export interface Formatted {
  body: string;
  resources: number;
  shown: number;
  truncated: number;
}

/**
 * The Markdown body: header, then per section a heading and one `<details>` block per resource, then footer.
 * Always under maxChars: a block that does not fit is left out and counted in a closing note.
 */
export function formatDiffs(sections: DiffSection[], opts: FormatOptions = {}): Formatted {
  const maxChars = opts.maxChars ?? DEFAULT_MAX_CHARS;
  const maxPer = opts.maxPerResource ?? DEFAULT_MAX_PER_RESOURCE;
  const header = opts.header ? `${opts.header.trimEnd()}\n\n` : '';
  const footer = opts.footer ? `\n${opts.footer.trimEnd()}\n` : '';
  // room kept for the closing note about what was left out
  const reserve = 300;
  let budget = maxChars - header.length - footer.length - reserve;
  if (budget < 0) throw new Error(`header and footer alone exceed ${maxChars} characters`);
  const parts: string[] = [];
  let resources = 0;
  let shown = 0;
  let truncated = 0;
  const omitted: string[] = [];
  for (const s of sections) {
    resources += s.diffs.length;
    const counts = ['added', 'changed', 'removed'].map((st) => [st, s.diffs.filter((d) => d.status === st).length] as const).filter(([, n]) => n > 0);
    const summary = s.error ? 'could not be rendered' : counts.length ? counts.map(([st, n]) => `${n} ${st}`).join(', ') : 'no change to the rendered manifests';
    const head = `#### ${escapeMarkdown(s.title)}: ${summary}\n\n`;
    if (head.length > budget) {
      omitted.push(...s.diffs.map((d) => `${s.title}: ${label(d)}`));
      continue;
    }
    parts.push(head);
    budget -= head.length;
    if (s.error) {
      const error = redactRenderError(s.error);
      const fence = fenceFor(error);
      const t = truncateDiff(error, Math.min(maxPer, 4000, Math.max(0, budget - 20)));
      // the closing fence on a line of its own, or the block never closes: the next section's opening fence would
      // close it instead and leave that section's error (text the merge request controls) as Markdown, quick actions
      // such as /merge included, which GitLab runs for the token's user on a note created or edited through the API
      // (https://spec.commonmark.org/0.31.2/#fenced-code-blocks, https://docs.gitlab.com/user/project/quick_actions/)
      const block = `${fence}\n${t.text}${t.text.endsWith('\n') ? '' : '\n'}${fence}\n\n`;
      if (block.length <= budget) {
        parts.push(block);
        budget -= block.length;
      }
      continue;
    }
    for (const d of s.diffs) {
      const t = truncateDiff(d.diff, maxPer);
      const lines = d.diff.split('\n').length - 1;
      const shownLines = t.text.split('\n').length - 1;
      const note = t.truncated ? `\n_Diff truncated: ${lines - shownLines} of ${lines} lines (${d.diff.length - t.text.length} characters) not shown._\n` : '';
      const fence = fenceFor(t.text);
      // the summary line is raw HTML: every character of a name is escaped, and names sit in <code>, where
      // GitLab makes no links, mentions or references
      const block = `<details><summary>${escapeMarkdown(d.kind)} <code>${escapeMarkdown(`${d.namespace ? `${d.namespace}/` : ''}${d.name}`)}</code> (${escapeMarkdown(d.apiVersion)}, ${d.status}${d.renamedFrom ? `, was <code>${escapeMarkdown(d.renamedFrom)}</code>` : ''})</summary>\n\n${fence}diff\n${t.text}${fence}\n${note}\n</details>\n\n`;
      if (block.length > budget) {
        omitted.push(`${s.title}: ${label(d)}`);
        continue;
      }
      parts.push(block);
      budget -= block.length;
      shown++;
      if (t.truncated) truncated++;
    }
  }
  if (omitted.length) {
    parts.push(`_${omitted.length} more resource diff${omitted.length > 1 ? 's' : ''} not shown: the body is limited to ${maxChars.toLocaleString('en-US')} characters. Render the overlay with \`kustomize build\` to see everything._\n`);
  }
  const body = `${header}${parts.join('')}${footer}`;
  return { body, resources, shown, truncated };
}
