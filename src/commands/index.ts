/**
 * The command registry: names, one-line summaries and lazy loaders. Nothing heavy is imported here,
 * so that `gitops-ci --version` and `--help` start fast.
 */
import type { CommandEntry } from '../core/command.js';

export const commands: CommandEntry[] = [
  { name: 'set-image', summary: 'Set images in Kustomize overlays, as `kustomize edit set image` does, keeping the file as written', load: () => import('./set-image.js') },
  { name: 'pin', summary: 'Pin one tag or digest in one file: Helm values, a manifest, an Argo CD Application or .argocd-source, keeping the file as written', load: () => import('./pin.js') },
  { name: 'bump', summary: 'Clone the config repo, set images in overlays, commit with [skip ci] and push, safely under concurrency', load: () => import('./bump.js') },
  { name: 'image build', summary: 'Build an image through the Docker Engine API (BuildKit), with registry cache, and push it', load: () => import('./image-build.js') },
  { name: 'image resolve', summary: 'Print the digest behind an image tag, from the registry API', load: () => import('./image-resolve.js') },
  { name: 'image index', summary: 'Make one multi-platform image from single-platform ones (an index of their digests), nothing rebuilt', load: () => import('./image-index.js') },
  { name: 'image copy', summary: 'Copy an image to another tag, repository or registry without rebuilding', load: () => import('./image-copy.js') },
  { name: 'argocd wait', summary: 'Wait until Argo CD has deployed a commit: synced to it, reconciled and healthy', load: () => import('./argocd-wait.js') },
  { name: 'argocd sync', summary: 'Trigger an Argo CD sync, optionally to a revision, and optionally wait', load: () => import('./argocd-sync.js') },
  { name: 'argocd refresh', summary: 'Ask Argo CD to refresh an application now', load: () => import('./argocd-refresh.js') },
  { name: 'gate', summary: 'Check merge-request approvals as GitLab Free does not: N distinct approvers, not the author, after the latest push', load: () => import('./gate.js') },
  { name: 'argocd notify', summary: "Post a GitLab push event to Argo CD's webhook so it refreshes at once", load: () => import('./argocd-notify.js') },
  { name: 'promote', summary: 'Promote the images one environment runs to another, by digest: commit, or one merge request with the rendered diff', load: () => import('./promote.js') },
  { name: 'status', summary: 'Print what runs where: per environment and image the digest, source commit and pipeline, config commit, deployed since, Argo CD sync and health', load: () => import('./status.js') },
  { name: 'rollback', summary: 'Return an environment to a state Argo CD deployed before, by a new write-back commit, pushed or as a merge request the gate checks', load: () => import('./rollback.js') },
  { name: 'review up', summary: 'Deploy a merge request to its own review app: write its overlay (images by digest) to the config repo, race-safe', load: () => import('./review-up.js') },
  { name: 'review down', summary: "Stop a merge request's review app: remove its overlay from the config repo, race-safe", load: () => import('./review-down.js') },
  { name: 'preview', summary: 'Render what a merge request will deploy and post it as one note on the MR, edited in place', load: () => import('./preview.js') },
];
