/**
 * Review apps: one overlay per merge request in the config repo, `<root>/<slug>/kustomization.yaml`, that an
 * Argo CD ApplicationSet git directories generator (`<root>/*`) turns into one app per MR, and that Argo CD
 * deletes when the directory goes (https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Generators-Git/#git-generator-directories).
 *
 * Written and removed through bump's race-safe loop (src/bump/bump.ts, `BumpConfig.directory`), so many MRs at
 * once, and an MR updated while its previous deploy runs, land as every write-back does: retried on a moving
 * branch, never forced, and guarded against an older pipeline overwriting (or removing) a newer one's deploy.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { fail } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { DirectoryWrite, Plan } from '../bump/bump.js';
import type { Guard } from '../bump/guard.js';
import { diffText } from '../bump/kustomize.js';
import type { Checkout } from '../writeback/checkout.js';
import { refString } from '../writeback/pins.js';
import { targetOf } from '../edit/registry.js';
import type { Pin } from '../edit/target.js';
import { ReviewErrors } from './errors.js';

/**
 * GitLab's environment slug (CI_ENVIRONMENT_SLUG, https://docs.gitlab.com/ci/variables/predefined_variables/:
 * "truncated to 24 characters"), as GitLab computes it (lib/gitlab/slug/environment.rb): lowercase, every
 * character outside a-z0-9 a `-`, `env-` in front unless it starts with a letter, runs of `-` squeezed; a name
 * that changed on the way or is longer than 24 is cut to 17 characters and gets `-` and a 6-character suffix
 * from the SHA-256 of the name (base 36), so two names never share a slug by slugging alone.
 */
export function environmentSlug(name: string): string {
  let s = name.toLowerCase().replace(/[^a-z0-9]/g, '-');
  if (!/^[a-z]/.test(s)) s = `env-${s}`;
  s = s.replace(/-+/g, '-');
  if (s.length > 24 || s !== name) {
    s = s.slice(0, 17);
    if (!s.endsWith('-')) s += '-';
    return s + BigInt(`0x${createHash('sha256').update(name).digest('hex')}`).toString(36).slice(-6);
  }
  return s.replace(/-$/, '');
}

export interface ReviewName {
  /** the GitLab environment, `review/mr-12` */
  env: string;
  /** its name inside the folder, slugged: the directory under the review root, the nameSuffix, the app's name */
  slug: string;
  /** `<root>/<slug>`, repo-relative */
  dir: string;
}

/**
 * The review directory of a GitLab environment `<folder>/<name>` (GitLab's environment folders:
 * https://docs.gitlab.com/ci/environments/#group-similar-environments): `<root>/<slug of name>`. A name that
 * could lead out of the review root (`/`, `\`, `.`, `..`, NUL) is refused rather than slugged; what is left is
 * slugged as GitLab slugs environment names, so `mr-12` stays `mr-12` and `Feature/X` cannot be written as is.
 */
export function reviewName(env: string, root: string, problems: string[]): ReviewName | undefined {
  const m = /^([^/]+)\/(.+)$/.exec(env);
  if (!m || /[\x00-\x1f\x7f]/.test(env)) {
    problems.push(`--env ${JSON.stringify(env)} is not a review environment: use <folder>/<name>, e.g. review/mr-$CI_MERGE_REQUEST_IID`);
    return undefined;
  }
  const name = m[2]!;
  if (/[/\\\x00-\x1f\x7f]/.test(name) || name === '.' || name === '..' || /^\.+$/.test(name) || name.includes('..')) {
    problems.push(`--env ${JSON.stringify(env)}: the name after ${m[1]}/ must be one path segment without .. (it names the directory under ${root}/)`);
    return undefined;
  }
  const slug = environmentSlug(name);
  return { env, slug, dir: posix.join(root, slug) };
}

export const REVIEW_FILE = 'kustomization.yaml';

/**
 * The review overlay: the base as its only resource, the MR's namespace and name suffix, the images pinned by
 * digest, one images: entry each as `kustomize edit set image` writes them (read back by the kustomization edit target).
 */
export function overlayText(o: { name: ReviewName; base: string; namespace?: string; pins: Pin[]; mr?: string; project?: string }): string {
  const header = [
    `# review app ${o.name.env}${o.mr ? ` of merge request !${o.mr}` : ''}${o.project ? ` (${o.project})` : ''}: written by \`gitops-ci review up\`,`,
    '# removed by `gitops-ci review down` (the stop job). Edits by hand are overwritten by the next pipeline.',
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    `  - ${posix.relative(o.name.dir, o.base)}`,
    ...(o.namespace ? [`namespace: ${o.namespace}`] : []),
    `nameSuffix: -${o.name.slug}`,
    'images:',
    // values as JSON strings: valid YAML double-quoted scalars whatever they hold (image-expr checked them)
    ...o.pins.flatMap((p) => [
      `  - name: ${JSON.stringify(p.name)}`,
      ...(p.newName ? [`    newName: ${JSON.stringify(p.newName)}`] : []),
      ...(p.tag ? [`    newTag: ${JSON.stringify(p.tag)}`] : []),
      ...(p.digest ? [`    digest: ${JSON.stringify(p.digest)}`] : []),
    ]),
    '',
  ].join('\n');
  return header;
}

export interface ReviewPlanOptions {
  name: ReviewName;
  /** up: what to write; down: undefined */
  up?: { base: string; namespace?: string; pins: Pin[]; mr?: string; project?: string };
  /** the stale guard stands aside (--force, or no pipeline to compare) */
  guardOff: boolean;
  log: Logger;
}

/**
 * up: write `<dir>/kustomization.yaml` (no change when it already holds exactly that); down: remove `<dir>` (no
 * change when it is gone). Either way, when the directory holds images an older pipeline would replace or
 * remove, the guard skips the whole write (a newer pipeline of the MR deployed since: its deploy stays).
 */
export function reviewWrite(o: ReviewPlanOptions): DirectoryWrite {
  const file = posix.join(o.name.dir, REVIEW_FILE);
  const target = targetOf('kustomization')!;
  const notReview = (why: string) =>
    fail.usage(ReviewErrors.NOT_REVIEW, `${o.name.dir} ${why}: it is not a review overlay gitops-ci wrote; nothing was changed`, {
      where: o.name.dir,
      hint: `pick another --env, or --review-root, for this review app; or remove ${o.name.dir} from the config repo by hand`,
    });
  return {
    async verify(co: Checkout) {
      await co.inside(posix.dirname(o.name.dir));
      await co.inside(o.name.dir);
      const t = await co.typeOf(o.name.dir);
      if (t === 'blob') throw notReview('is a file');
      if (o.up) {
        await co.inside(o.up.base);
        const located = (await co.typeOf(o.up.base)) === 'tree' ? await co.locate(o.up.base, 'kustomization') : undefined;
        if (!located) {
          throw fail.usage(ReviewErrors.BASE_NOT_FOUND, `base ${o.up.base} is not a directory with a kustomization on ${co.branch}`, {
            where: `${co.remote.display} (${co.branch})`,
            hint: '--base is relative to the config repo root and names the overlay the review app deploys, e.g. .kubernetes/overlays/staging',
          });
        }
      }
    },
    async plan(co: Checkout, guard: Guard): Promise<Plan> {
      const out: Plan = { changes: [], skipped: [], files: [], diff: '', written: [] };
      const exists = (await co.typeOf(o.name.dir)) === 'tree';
      if (exists && !(await co.isFile(file))) throw notReview(`holds no ${REVIEW_FILE}`);
      const before = exists ? await co.read(file) : undefined;
      const after = o.up ? overlayText({ name: o.name, ...o.up }) : undefined;
      if (before === after) return out;
      // the guard: every image now in the directory, with the pipeline that wrote it
      const current = before !== undefined ? target.images(before, file) : [];
      const wanted = new Map((after !== undefined ? target.images(after, file) : []).map((r) => [r.name, refString(r)]));
      if (!o.guardOff) {
        for (const cur of current) {
          const ref = refString(cur);
          if (wanted.get(cur.name) === ref) continue;
          const v = await guard.check(file, cur.name, ref);
          if (v?.stale) {
            o.log.debug(`stale guard ${o.name.dir} ${cur.name}: ${v.by}: ${v.why} (trusted: ${v.how})`);
            out.skipped.push({ overlay: o.name.dir, image: cur.name, current: ref, wanted: wanted.get(cur.name) ?? '(removed)', why: `${v.why}; trusted: ${v.how}` });
          }
        }
        if (out.skipped.length) return out;
      }
      const env = o.name.slug;
      if (after !== undefined) {
        await mkdir(await co.inside(o.name.dir), { recursive: true });
        await co.write(file, after);
        out.files.push(file);
        for (const [name, ref] of wanted) {
          const was = current.find((c) => c.name === name);
          if (!was || refString(was) !== ref) out.changes.push({ overlay: o.name.dir, env, image: name, before: was ? refString(was) : undefined, after: ref });
        }
        // only the header or the base changed: still a change, recorded against the first image
        if (!out.changes.length) {
          const [name, ref] = [...wanted][0] ?? ['(review app)', o.name.dir];
          out.changes.push({ overlay: o.name.dir, env, image: name, before: ref, after: ref });
        }
      } else {
        await rm(await co.inside(o.name.dir), { recursive: true, force: true });
        out.files.push(o.name.dir);
        for (const cur of current) out.changes.push({ overlay: o.name.dir, env, image: cur.name, before: refString(cur), after: '(removed)' });
        if (!out.changes.length) out.changes.push({ overlay: o.name.dir, env, image: '(review app)', before: o.name.dir, after: '(removed)' });
      }
      out.diff = diffText(before ?? '', after ?? '', file);
      return out;
    },
  };
}
