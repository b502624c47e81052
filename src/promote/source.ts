/**
 * What a promotion moves: the images pinned in the source overlay, read from the config repo at a given
 * commit (the branch tip, or the revision Argo CD reports deployed), each turned into a digest reference.
 * Only digests travel: a tag is resolved through the registry (or refused with --require-digest), and with
 * --copy-to the image is first copied, digest preserved, and the copy is pinned.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fail } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { SparseClone } from '../git/clone.js';
import { GitSession } from '../git/session.js';
import { compareRepos, type Remote } from '../git/url.js';
import { redactUrl } from '../core/mask.js';
import { readImages, type ImageEntry } from '../kustomize/edit.js';
import { KUSTOMIZATION_FILES } from '../bump/closure.js';
import { History, pipelineApi, verifyProvenance, writebackIdentity } from '../bump/guard.js';
import { refOf, type Provenance } from '../bump/message.js';
import type { Registries } from '../registry/client.js';
import { copyImage } from '../registry/copy.js';
import { parseRef } from '../registry/ref.js';
import { ArgoClient } from '../argocd/client.js';
import { evaluate, syncRevisions } from '../argocd/predicate.js';
import { appLabel, type AppRef, type Application } from '../argocd/types.js';
import { PromoteErrors } from './errors.js';

export interface SourceImage {
  /** images[].name in the overlays */
  name: string;
  /** the entry as written in --from */
  entry: ImageEntry;
  /** the provenance recorded by the bump commit that set it (when found in history) */
  provenance?: Provenance;
}

export interface Source {
  /** the config commit --from was read at */
  commit: string;
  /** the branch tip when it was read */
  head: string;
  /** repo-relative kustomization file of --from */
  file: string;
  images: SourceImage[];
}

async function kustomizationAt(session: GitSession, dir: string, rev: string, overlay: string): Promise<string | undefined> {
  for (const f of KUSTOMIZATION_FILES) {
    const r = await session.run(['cat-file', '-e', `${rev}:${posix.join(overlay, f)}`], { cwd: dir });
    if (r.code === 0) return posix.join(overlay, f);
  }
  return undefined;
}

/**
 * Clone the branch (shallow, blob-filtered, sparse: only --from) and read --from's images at `revision`
 * (default: the tip), with the provenance of each from the history of the branch.
 */
export async function readSource(o: {
  remote: Remote;
  branch: string;
  from: string;
  revision?: string;
  names: string[];
  env: NodeJS.ProcessEnv;
  log: Logger;
  deadline: number;
  sshAcceptNew: boolean;
  historyDepth: number;
}): Promise<Source> {
  const { log } = o;
  const session = await GitSession.open(o.remote, { env: o.env, log, sshAcceptNew: o.sshAcceptNew, deadline: o.deadline });
  const parent = await mkdtemp(join(tmpdir(), 'gitops-ci-promote-src-'));
  try {
    const dir = join(parent, 'config');
    const clone = await log.section(`read ${o.from} from ${o.remote.display} ${o.branch}${o.revision ? ` at ${o.revision.slice(0, 12)}` : ''}`, async () => {
      const c = await SparseClone.clone(session, { dir, branch: o.branch, paths: [o.from] });
      if (o.revision && o.revision !== (await c.head())) {
        const r = await session.run(['fetch', '--quiet', '--depth=1', '--filter=blob:none', '--no-tags', 'origin', o.revision], { cwd: dir });
        if (r.code !== 0) {
          throw fail.failed(PromoteErrors.REVISION, `config commit ${o.revision} cannot be fetched from ${o.remote.display}`, {
            where: o.remote.display,
            details: r.stderr.trim().split('\n').slice(-3),
            hint: 'the commit Argo CD reports is not on the server any more (force-pushed away?), or the app deploys another repo; check the app, then re-run',
          });
        }
      }
      return c;
    });
    const head = await clone.head();
    const commit = o.revision ?? head;
    const file = await kustomizationAt(session, dir, commit, o.from);
    if (!file) {
      throw fail.usage(PromoteErrors.SOURCE_NOT_FOUND, `--from ${o.from} holds no kustomization at ${commit.slice(0, 12)} of ${o.branch}`, {
        where: `${o.remote.display} (${o.branch} at ${commit.slice(0, 12)})`,
        hint: '--from is an overlay directory relative to the config repo root, e.g. .kubernetes/overlays/staging',
      });
    }
    // blobs come on demand from the promisor remote: `show` may reach the network
    const text = await session.must('fetch', ['show', `${commit}:${file}`], { cwd: dir, branch: o.branch });
    const entries = readImages(text, file);
    if (!entries.length) {
      throw fail.usage(PromoteErrors.NO_IMAGE, `${file} pins no image (no images: entries)`, { where: `${file} at ${commit.slice(0, 12)}`, hint: 'promote moves the images[] entries of --from; pin the image there first (gitops-ci bump)' });
    }
    let chosen = entries;
    if (o.names.length) {
      const missing = o.names.filter((n) => !entries.some((e) => e.name === n));
      if (missing.length) {
        throw fail.usage(PromoteErrors.NO_IMAGE, `${file} has no images entry named ${missing.join(', ')}`, {
          where: `${file} at ${commit.slice(0, 12)}`,
          details: ['images in it:', ...entries.map((e) => `  ${e.name}`)],
          hint: '--image takes the images[].name of --from',
        });
      }
      chosen = entries.filter((e) => o.names.includes(e.name));
    }
    // provenance only from write-back commits, checked against the GitLab API where a token allows: it is shown
    // to approvers in the promotion MR and recorded again in the promotion commit, so nothing unverified travels
    const history = new History(clone, o.historyDepth, { writeback: writebackIdentity(o.env), log });
    const images: SourceImage[] = [];
    const api = await pipelineApi(o.env, log);
    try {
      for (const e of chosen) {
        const prov = await history.provenance(file, e.name, refOf(e)).catch(() => undefined);
        let provenance;
        if (prov) {
          const trust = await verifyProvenance(prov, api);
          if (trust.trusted) provenance = { ...prov, verified: trust.how };
          else log.warn(`provenance of ${e.name} not trusted: ${trust.how}; it is neither shown nor recorded`);
        }
        images.push({ name: e.name, entry: e, provenance });
      }
    } finally {
      api?.close();
    }
    return { commit, head, file, images };
  } finally {
    await session.close();
    await rm(parent, { recursive: true, force: true });
  }
}

export interface Pinned {
  name: string;
  /** the repository pinned (newName, or name), without tag or digest */
  repo: string;
  digest: string;
  /** what --from held: a tag, a digest, or both */
  from: string;
  /** how the digest was obtained */
  how: 'digest' | 'resolved' | 'copied';
  /** the expression handed to the edit: name@digest, or name=repo@digest */
  expr: string;
}

function exprOf(name: string, repo: string, digest: string): string {
  return repo === name ? `${name}@${digest}` : `${name}=${repo}@${digest}`;
}

/**
 * The digest reference of each source image; tags resolved through the registry (unless requireDigest);
 * copied to `copyTo[name]` first when given.
 */
export async function pinDigests(images: SourceImage[], o: { regs?: () => Promise<Registries>; requireDigest: boolean; copyTo: Map<string, string>; log: Logger }): Promise<Pinned[]> {
  const out: Pinned[] = [];
  const refused: string[] = [];
  for (const im of images) {
    const e = im.entry;
    const repo = e.newName || e.name;
    const from = refOf(e);
    if (!e.digest && !e.newTag) {
      refused.push(`${e.name}: ${from} has neither tag nor digest`);
      continue;
    }
    if (!e.digest && o.requireDigest) {
      refused.push(`${e.name}: ${from} is pinned by tag only`);
      continue;
    }
    let digest = e.digest;
    let how: Pinned['how'] = 'digest';
    if (!digest) {
      const ref = parseRef(`${repo}:${e.newTag}`);
      const regs = await o.regs!();
      // the digest pinned is the hash of the manifest bytes read (a malformed or mismatched header is refused)
      const m = await regs.for(ref.registry).resolveManifest(ref.repository, e.newTag!);
      if (!m) {
        throw fail.failed(PromoteErrors.TAG_UNRESOLVED, `${repo}:${e.newTag} (pinned by tag in the source) is not in the registry`, {
          where: `${repo}:${e.newTag}`,
          hint: 'a tag that does not resolve cannot be promoted; pin the source by digest (gitops-ci bump with IMAGE@sha256:…) and re-run',
        });
      }
      digest = m.digest;
      how = 'resolved';
      o.log.info(`${repo}:${e.newTag} resolved to ${digest}`);
    }
    let pinnedRepo = repo;
    const dst = o.copyTo.get(e.name);
    if (dst) {
      const src = parseRef(`${repo}@${digest}`);
      // --copy-to names a repository: the copy keeps the source's tag when it has one, else it is pushed by digest
      const d = parseRef(`${dst}@${digest}`);
      const target = { ...d, digest: undefined, tag: e.newTag };
      const regs = await o.regs!();
      const res = await o.log.section(`copy ${repo}@${digest} → ${dst}`, () => copyImage(regs, src, target, o.log), { collapsed: true });
      if (res.digest !== digest) {
        throw fail.failed(PromoteErrors.COPY_DIGEST, `the copy of ${repo}@${digest} in ${dst} is ${res.digest}`, { where: dst, hint: 'the registry changed the manifest on upload; nothing was pinned' });
      }
      pinnedRepo = dst;
      how = 'copied';
      o.log.info(`copied ${repo}@${digest} to ${pinnedRepo} (digest preserved)`);
    }
    out.push({ name: e.name, repo: pinnedRepo, digest, from, how, expr: exprOf(e.name, pinnedRepo, digest) });
  }
  if (refused.length) {
    throw fail.failed(PromoteErrors.NOT_PINNED, `only digests are promoted, and ${refused.length === 1 ? 'an image' : `${refused.length} images`} in the source ${refused.length === 1 ? 'has' : 'have'} none`, {
      details: refused,
      hint: 'pin the source environment by digest (gitops-ci bump --image NAME=REPO@sha256:…), or drop --require-digest to resolve tags through the registry',
    });
  }
  return out;
}

/**
 * --from-app: the config commit that Argo CD reports deployed, synced and healthy for the app (the predicate of
 * `argocd wait`, evaluated at the app's own sync revision). Anything else is a refusal: only what was
 * verified moves.
 */
export async function deployedRevision(client: ArgoClient, ref: AppRef, o: { from: string; repo?: Remote; log: Logger }): Promise<{ revision: string; app: Application }> {
  const app = await client.getApp(ref);
  const sources = app.spec?.sources?.length ? app.spec.sources : app.spec?.source ? [app.spec.source] : [];
  const norm = (p: string | undefined) => (p ?? '').replace(/^\.\//, '').replace(/\/+$/, '');
  // which of the app's sources is the config repo: a multi-source app lists chart repos and value repos too
  // (status.sync.revisions has one revision per source, in the same order)
  let index = 0;
  if (o.repo && sources.some((s) => s.repoURL)) {
    const verdicts = sources.map((s) => (s.repoURL ? compareRepos(s.repoURL, o.repo!.url) : 'unknown'));
    let ours = sources.map((_, i) => i).filter((i) => verdicts[i] === 'same' || verdicts[i] === 'other-host');
    if (!ours.length && verdicts.includes('unknown')) {
      // a repoURL we cannot read as a location: the path decides, as without --repo
      o.log.warn(`Argo CD app ${appLabel(ref)}: cannot compare its repoURL ${sources.map((s) => redactUrl(s.repoURL ?? '?')).join(', ')} with the config repo ${o.repo.display}; going by the path alone`);
      ours = sources.map((_, i) => i).filter((i) => verdicts[i] === 'unknown');
    }
    if (!ours.length) {
      throw fail.usage(PromoteErrors.APP_MISMATCH, `Argo CD app ${appLabel(ref)} deploys from ${sources.map((s) => redactUrl(s.repoURL ?? '?')).join(', ')}, not from the config repo ${o.repo.display}`, {
        where: appLabel(ref),
        hint: 'name the app that deploys the --from overlay of this config repo, or fix --repo (GITOPS_CONFIG_REPO)',
      });
    }
    index = ours.find((i) => norm(sources[i]!.path) === o.from) ?? ours[0]!;
    if (verdicts[index] === 'other-host') o.log.warn(`Argo CD app ${appLabel(ref)} reaches the config repo as ${redactUrl(sources[index]!.repoURL!)}, this job as ${o.repo.display}: taken as the same repo (same path)`);
  } else if (sources.length > 1) {
    index = Math.max(0, sources.findIndex((s) => norm(s.path) === o.from));
  }
  const src = sources[index];
  if (src?.path !== undefined && norm(src.path) !== o.from) {
    throw fail.usage(PromoteErrors.APP_MISMATCH, `Argo CD app ${appLabel(ref)} deploys ${src.path}, not --from ${o.from}`, {
      where: appLabel(ref),
      hint: 'name the app that deploys the --from overlay, or fix --from',
    });
  }
  const revs = syncRevisions(app);
  const revision = revs.length === sources.length ? revs[index] : revs[0];
  const state = `sync ${app.status?.sync?.status ?? '?'}, health ${app.status?.health?.status ?? '?'}${revision ? ` at ${revision.slice(0, 12)}` : ''}`;
  if (!revision || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(revision)) {
    throw fail.failed(PromoteErrors.APP_NOT_READY, `Argo CD app ${appLabel(ref)} reports no deployed config commit (${state})`, { where: appLabel(ref), hint: 'wait for the app to sync (gitops-ci argocd wait), then re-run' });
  }
  const v = evaluate(app, { revision, startedAt: 0 });
  if (v.kind !== 'done') {
    throw fail.failed(PromoteErrors.APP_NOT_READY, `Argo CD app ${appLabel(ref)} is not deployed, synced and healthy: ${v.kind === 'waiting' ? v.reason : v.message} (${state})`, {
      where: appLabel(ref),
      details: v.kind === 'failed' ? v.details : undefined,
      hint: 'only what the source environment verifiably runs is promoted; wait for it (gitops-ci argocd wait) and re-run',
    });
  }
  o.log.info(`Argo CD app ${appLabel(ref)} runs config commit ${revision.slice(0, 12)}: Synced, Healthy`);
  return { revision, app };
}
