/** Shared set-up of the promote/preview tests: a config repo whose staging pins a digest, and a tiny image pushed to the real registry. */
import { execFileSync } from 'node:child_process';
import { seedLayout, type Tree } from '../helpers/config-repo.js';
import type { GitServer, Registry } from '../helpers/services.js';
import { pushTree } from '../helpers/config-repo.js';
import { configRepo } from '../bump/fixture.js';
import { OCI_MANIFEST, pushImage } from '../helpers/registry-api.js';

export const IMAGE = 'registry.example.com/shovel/shovel-gitops';
export const PROD = '.kubernetes/overlays/production';
export const STAGING = '.kubernetes/overlays/staging';
export const DIGEST = `sha256:${'ab12'.repeat(16)}`;

/** the images: block of an overlay, replaced */
export function withImages(tree: Tree, overlay: string, images: string): Tree {
  const k = `${overlay}/kustomization.yaml`;
  return { ...tree, [k]: tree[k]!.replace(/images:\n[\s\S]*$/, `images:\n${images}`) };
}

/** the seed layout with staging pinned by `staging` (an images: block body) */
export function layout(staging = `  - name: ${IMAGE}\n    digest: ${DIGEST}\n`, image = IMAGE): Tree {
  return withImages(seedLayout(image), STAGING, staging);
}

/** pushes a minimal OCI image (config only, no layer) to repo:tag through the registry API; returns its digest */
export async function pushTinyImage(reg: Registry, repo: string, tag: string, salt = tag): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { salt } }, rootfs: { type: 'layers', diff_ids: [] } }));
  return (await pushImage(reg, repo, { ref: tag, mediaType: OCI_MANIFEST, config, layers: 0 })).digest;
}

/** HEAD of a manifest in the registry: its digest, or undefined */
export async function manifestDigest(reg: Registry, repo: string, ref: string): Promise<string | undefined> {
  const auth = `Basic ${Buffer.from(`${reg.user}:${reg.password}`).toString('base64')}`;
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { Authorization: auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return r.status === 200 ? (r.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** the commit message of a ref in a bare repo */
export function messageOf(bare: string, ref = 'main'): string {
  return execFileSync('git', ['-C', bare, 'log', '-1', '--format=%B', ref]).toString();
}

/** DOCKER_AUTH_CONFIG for the registry */
export function dockerAuth(reg: Registry): string {
  return JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } });
}

/**
 * a config repo whose staging pins IMAGE by digest, with a bump commit recording its provenance, made as bump
 * makes it: by the write-back identity, the only one whose trailers are trusted
 */
export function repoWithDigest(srv: GitServer): ReturnType<typeof configRepo> {
  const r = configRepo(srv);
  const staging = layout()[`${STAGING}/kustomization.yaml`]!;
  const msg = `[skip ci] bump shovel-gitops in staging\n\nstaging:\n- x\n\nGitops-Overlay: ${STAGING}\nGitops-Image: ${IMAGE}=${IMAGE}@${DIGEST}\nGitops-Source-Project: shovel/app\nGitops-Source-Commit: ${'c'.repeat(40)}\nGitops-Pipeline: https://gitlab.example.com/shovel/app/-/pipelines/1500\nGitops-Pipeline-Id: 1500\n`;
  const head = pushTree(r.authUrl, { [`${STAGING}/kustomization.yaml`]: staging }, { message: msg, committer: { name: 'gitops-ci', email: 'gitops-ci@noreply.invalid' } });
  return { ...r, head };
}
