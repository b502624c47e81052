/**
 * What a promotion moves: the images pinned in the source overlay, read from the config repo at a given
 * commit (the branch tip, or the revision Argo CD reports deployed), each turned into a digest reference.
 * Only digests travel: a tag is resolved through the registry (or refused with --require-digest), and with
 * --copy-to the image is first copied, digest preserved, and the copy is pinned.
 */
import { fail, isGitopsError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { compareRepos, type Remote } from '../git/url.js';
import { redactUrl } from '../core/mask.js';
import { History, pipelineApi, verifyProvenance, writebackIdentity, type HistorySource } from '../bump/guard.js';
import type { Identity } from '../git/clone.js';
import type { GitlabConfig } from '../gitlab/config.js';
import type { Provenance } from '../bump/message.js';
import type { ImageRef, Pin } from '../edit/target.js';
import { Checkout, type KindChoice } from '../writeback/checkout.js';
import { ApiTree, apiClient, tokenCommitter } from '../writeback/api.js';
import type { LocalTree } from '../writeback/tree.js';
import { pinText, refString } from '../writeback/pins.js';
import type { Registries } from '../registry/client.js';
import { copyImage } from '../registry/copy.js';
import { parseRef } from '../registry/ref.js';
import { ArgoClient } from '../argocd/client.js';
import { evaluate, syncRevisions } from '../argocd/predicate.js';
import { appLabel, type AppRef, type Application } from '../argocd/types.js';
import { PromoteErrors } from './errors.js';

export interface SourceImage {
  /** the image as --from's file names it (images[].name in a kustomization) */
  name: string;
  /** the reference as written in --from (an object from the edit layer, carried as it is to the pin) */
  ref: ImageRef;
  /** the provenance recorded by the bump commit that set it (when found in history) */
  provenance?: Provenance;
}

export interface Source {
  /** the config commit --from was read at */
  commit: string;
  /** the branch tip when it was read */
  head: string;
  /** repo-relative file of --from that pins the images */
  file: string;
  /** its edit target kind */
  kind: string;
  images: SourceImage[];
}

/**
 * --from's file and the history that says who pinned what, whichever way they are read: a clone (the shared
 * write-back checkout) or, with --via api, GitLab's repository and commits APIs (no clone; src/writeback/api.ts).
 */
interface SourceReader {
  tree: LocalTree & { typeOf(rel: string): Promise<'tree' | 'blob' | undefined> };
  /** the branch tip when it was opened */
  head: string;
  /** the files of --from at `commit` (and, with the branch tip, back at the tip) */
  at(commit: string): Promise<void>;
  history: HistorySource;
  /** identities trusted beside the write-back identity (through the API, GitLab commits as the token's user) */
  also: Identity[];
  close(): Promise<void>;
}

/** the shallow, blob-filtered, sparse clone of --from (the shared write-back checkout) */
async function cloneReader(o: SourceOptions): Promise<SourceReader> {
  const co = await Checkout.open({ remote: o.remote, branch: o.branch, paths: [o.from], env: o.env, log: o.log, sshAcceptNew: o.sshAcceptNew, deadline: o.deadline, purpose: 'promote-src' });
  const head = await co.clone.head().catch(async (e) => {
    await co.close();
    throw e;
  });
  return { tree: co, head, at: (commit) => co.switchTo(commit === head ? o.branch : commit), history: co.clone, also: [], close: () => co.close() };
}

/** --from read through GitLab's repository API into a temp dir (ApiTree), its history through the commits API */
async function apiReader(o: SourceOptions, conn: GitlabConfig): Promise<SourceReader> {
  const gl = await apiClient(conn, { deadline: o.deadline, env: o.env, log: o.log });
  let t: ApiTree | undefined;
  try {
    t = await ApiTree.open(gl, { project: conn.project, branch: o.branch, log: o.log, purpose: 'promote-src' });
    const tree = t;
    const head = tree.head;
    // commits made through the API carry the token's user as committer: trusted as bump's guard trusts it
    const u = await gl.currentUser().catch((e) => void o.log.debug(`the token's user could not be read (${e instanceof Error ? e.message : e}): only the write-back identity's trailers are trusted`));
    const also: Identity[] = u ? tokenCommitter(u, o.log) : [];
    const at = async (commit: string) => {
      if (commit !== head) {
        // a commit the server does not have (force-pushed away) is a 404 here, as a fetch of it fails in a clone
        if (!(await gl.listCommits(conn.project, { ref: commit, max: 1 })).length) throw new Error(`GitLab lists no commit ${commit}`);
      }
      await tree.moveTo(commit);
      await tree.add([o.from]);
    };
    await tree.add([o.from]);
    return {
      tree,
      head,
      at,
      history: tree.history(),
      also,
      close: async () => {
        tree.close();
        gl.close();
      },
    };
  } catch (e) {
    t?.close();
    gl.close();
    throw e;
  }
}

interface SourceOptions {
  remote: Remote;
  branch: string;
  from: string;
  revision?: string;
  names: string[];
  targetKind?: KindChoice;
  env: NodeJS.ProcessEnv;
  log: Logger;
  deadline: number;
  sshAcceptNew: boolean;
  historyDepth: number;
  /** --via api: read through GitLab's APIs with this connection, no clone */
  api?: GitlabConfig;
}

/**
 * Read --from's images at `revision` (default: the tip), with the provenance of each from the history of the
 * branch: through the shared write-back checkout (shallow, blob-filtered, sparse: only --from), or with `api`
 * through GitLab's repository and commits APIs. At another revision the files are read there (the same
 * resolveInside checks as at the tip) and back at the tip for the history.
 */
export async function readSource(o: SourceOptions): Promise<Source> {
  const r = o.api ? await apiReader(o, o.api) : await cloneReader(o);
  try {
    const head = r.head;
    const commit = o.revision ?? head;
    const { file, kind, refs } = await readAt(r, o, commit);
    const chosen = chooseImages(refs, o.names, file, commit);
    // provenance only from write-back commits, checked against the GitLab API where a token allows: it is shown
    // to approvers in the promotion MR and recorded again in the promotion commit, so nothing unverified travels
    const history = new History(r.history, o.historyDepth, { writeback: writebackIdentity(o.env), also: r.also, log: o.log });
    const images: SourceImage[] = [];
    const api = await pipelineApi(o.env, o.log);
    try {
      for (const im of chosen) {
        const prov = await history.provenance(file, im.name, refString(im)).catch(() => undefined);
        let provenance;
        if (prov) {
          const trust = await verifyProvenance(prov, api);
          if (trust.trusted) provenance = { ...prov, verified: trust.how };
          else o.log.warn(`provenance of ${im.name} not trusted: ${trust.how}; it is neither shown nor recorded`);
        }
        images.push({ name: im.name, ref: im, provenance });
      }
    } finally {
      api?.close();
    }
    return { commit, head, file, kind, images };
  } finally {
    await r.close();
  }
}

/** the file of --from and the references it holds at `commit` (the files moved there and back) */
async function readAt(r: SourceReader, o: { remote: Remote; branch: string; from: string; revision?: string; targetKind?: KindChoice }, commit: string): Promise<{ file: string; kind: string; refs: ImageRef[] }> {
  const moved = commit !== r.head;
  if (moved) {
    try {
      await r.at(commit);
    } catch (e) {
      if (isGitopsError(e) && e.kind === 'auth') throw e;
      throw fail.failed(PromoteErrors.REVISION, `config commit ${commit} cannot be fetched from ${o.remote.display}`, {
        where: o.remote.display,
        details: e instanceof Error ? e.message.split('\n').slice(-3) : undefined,
        hint: 'the commit Argo CD reports is not on the server any more (force-pushed away?), or the app deploys another repo; check the app, then re-run',
        cause: e,
      });
    }
  }
  try {
    const co = r.tree;
    const located = (await co.typeOf(o.from)) === 'tree' ? await co.locate(o.from, o.targetKind ?? 'auto') : undefined;
    if (!located) {
      throw fail.usage(PromoteErrors.SOURCE_NOT_FOUND, `--from ${o.from} holds no file that pins images (a kustomization) at ${commit.slice(0, 12)} of ${o.branch}`, {
        where: `${o.remote.display} (${o.branch} at ${commit.slice(0, 12)})`,
        hint: '--from is an overlay directory relative to the config repo root, e.g. .kubernetes/overlays/staging',
      });
    }
    const text = await co.read(located.file);
    return { file: located.file, kind: located.target.kind, refs: located.target.images(text, located.file) };
  } finally {
    if (moved) await r.at(r.head);
  }
}

function chooseImages(refs: ImageRef[], names: string[], file: string, commit: string): ImageRef[] {
  if (!refs.length) {
    throw fail.usage(PromoteErrors.NO_IMAGE, `${file} pins no image (no images: entries)`, { where: `${file} at ${commit.slice(0, 12)}`, hint: 'promote moves the images[] entries of --from; pin the image there first (gitops-ci bump)' });
  }
  if (!names.length) return refs;
  const missing = names.filter((n) => !refs.some((e) => e.name === n));
  if (missing.length) {
    throw fail.usage(PromoteErrors.NO_IMAGE, `${file} has no images entry named ${missing.join(', ')}`, {
      where: `${file} at ${commit.slice(0, 12)}`,
      details: ['images in it:', ...refs.map((e) => `  ${e.name} (line ${e.line})`)],
      hint: '--image takes the images[].name of --from',
    });
  }
  return refs.filter((e) => names.includes(e.name));
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
  /** what the edit layer writes in --to: the name, the repository when it is not the name, the digest */
  pin: Pin;
  /** the pin as text, for logs and messages only (never parsed again) */
  expr: string;
}

/** the pin of a digest: kustomize's `name@digest` or `name=repo@digest` (the tag dropped: only the digest moves) */
export function pinOf(name: string, repo: string, digest: string): Pin {
  return repo === name ? { name, digest } : { name, newName: repo, digest };
}

function pinned(p: Omit<Pinned, 'pin' | 'expr'>): Pinned {
  const pin = pinOf(p.name, p.repo, p.digest);
  return { ...p, pin, expr: pinText(pin) };
}

/** a pinned image moved to another repository (--copy-to in a dry run: what the copy would hold, same digest) */
export function repinned(p: Pinned, repo: string): Pinned {
  return pinned({ name: p.name, repo, digest: p.digest, from: p.from, how: p.how });
}

/**
 * The digest reference of each source image; tags resolved through the registry (unless requireDigest);
 * copied to `copyTo[name]` first when given.
 */
export async function pinDigests(images: SourceImage[], o: { regs?: () => Promise<Registries>; requireDigest: boolean; copyTo: Map<string, string>; log: Logger }): Promise<Pinned[]> {
  const out: Pinned[] = [];
  const refused: string[] = [];
  for (const im of images) {
    const e = im.ref;
    const repo = e.newName || e.name;
    const from = refString(e);
    if (!e.digest && !e.tag) {
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
      const ref = parseRef(`${repo}:${e.tag}`);
      const regs = await o.regs!();
      // the digest pinned is the hash of the manifest bytes read (a malformed or mismatched header is refused)
      const m = await regs.for(ref.registry).resolveManifest(ref.repository, e.tag!);
      if (!m) {
        throw fail.failed(PromoteErrors.TAG_UNRESOLVED, `${repo}:${e.tag} (pinned by tag in the source) is not in the registry`, {
          where: `${repo}:${e.tag}`,
          hint: 'a tag that does not resolve cannot be promoted; pin the source by digest (gitops-ci bump with IMAGE@sha256:…) and re-run',
        });
      }
      digest = m.digest;
      how = 'resolved';
      o.log.info(`${repo}:${e.tag} resolved to ${digest}`);
    }
    let pinnedRepo = repo;
    const dst = o.copyTo.get(e.name);
    if (dst) {
      const src = parseRef(`${repo}@${digest}`);
      // --copy-to names a repository: the copy keeps the source's tag when it has one, else it is pushed by digest
      const d = parseRef(`${dst}@${digest}`);
      const target = { ...d, digest: undefined, tag: e.tag };
      const regs = await o.regs!();
      const res = await o.log.section(`copy ${repo}@${digest} → ${dst}`, () => copyImage(regs, src, target, o.log), { collapsed: true });
      if (res.digest !== digest) {
        throw fail.failed(PromoteErrors.COPY_DIGEST, `the copy of ${repo}@${digest} in ${dst} is ${res.digest}`, { where: dst, hint: 'the registry changed the manifest on upload; nothing was pinned' });
      }
      pinnedRepo = dst;
      how = 'copied';
      o.log.info(`copied ${repo}@${digest} to ${pinnedRepo} (digest preserved)`);
    }
    out.push(pinned({ name: e.name, repo: pinnedRepo, digest, from, how }));
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
