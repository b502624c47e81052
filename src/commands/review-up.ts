/**
 * `gitops-ci review up --env review/NAME --base DIR --image EXPR...`: write the review overlay of a merge
 * request, `<review-root>/<slug>/kustomization.yaml`, through bump's race-safe write-back. See
 * docs/commands/review.md.
 */
import { str, strs, type CommandContext, type CommandResult, type CommandSpec, type ParsedArgs } from '../core/command.js';
import type { GitopsError } from '../core/errors.js';
import { overlayFlag } from '../core/flags.js';
import { imageExprsFlag } from '../kustomize/image-expr.js';
import { pinFromExpr } from '../edit/kustomization.js';
import { freezeCheck, reviewConfig, reviewOptions, runReview, throwProblems, type ReviewConfig } from '../review/command.js';

export const spec: CommandSpec = {
  name: 'review up',
  usage: 'gitops-ci review up --env review/NAME --base DIR --image NAME=REF@DIGEST... [--namespace NS] [flags]',
  description: `
Write the review app of a merge request to the config repo: <review-root>/<slug>/kustomization.yaml with the
base as its resource, a namespace and name suffix of its own, and the images pinned by digest; an Argo CD
ApplicationSet git directories generator (<review-root>/*) deploys it. Commits with [skip ci] and pushes
through bump's race-safe loop. Already written: no commit, exit 0. An older pipeline of the MR does not
overwrite what a newer one deployed (skipped, exit 0) unless --force.`,
  options: {
    base: { type: 'string', value: 'DIR', description: 'the overlay the review app deploys, relative to the config repo root (e.g. .kubernetes/overlays/staging)', env: ['GITOPS_REVIEW_BASE'] },
    image: { type: 'string', multiple: true, value: 'EXPR', description: 'image expression pinned by digest: NAME@DIGEST or NAME=NEWNAME[:TAG]@DIGEST (repeatable; positionals too)' },
    namespace: { type: 'string', value: 'NS', description: 'namespace of the review app (empty: leave it to the base and the Argo CD app)', default: 'review-<slug>' },
    ...reviewOptions,
    'ignore-deploy-freeze': { type: 'boolean', description: 'run even while GitLab reports a deploy freeze (CI_DEPLOY_FREEZE); by default review up refuses (EFREEZE_ACTIVE), review down never does' },
  },
  positionals: [['EXPR...', 'more image expressions']],
  examples: [
    'gitops-ci review up --env review/mr-$CI_MERGE_REQUEST_IID --base .kubernetes/overlays/staging --image "app=$IMAGE" --dotenv review.env',
  ],
};

export async function run(ctx: CommandContext, { values, positionals }: ParsedArgs): Promise<CommandResult> {
  freezeCheck(ctx, values, 'review up');
  const problems: string[] = [];
  const errors: GitopsError[] = [];
  const cfg = await reviewConfig(ctx, values, problems, errors);
  const rawBase = str(values, 'base') ?? (ctx.env.GITOPS_REVIEW_BASE || undefined);
  if (!rawBase) problems.push('no base: pass --base DIR, the overlay the review app deploys, e.g. --base .kubernetes/overlays/staging');
  const base = rawBase ? overlayFlag(rawBase, 'base', problems) : undefined;
  if (base && cfg.name && (base === cfg.name.dir || base.startsWith(`${cfg.name.dir}/`) || cfg.name.dir.startsWith(`${base}/`))) {
    problems.push(`--base ${base} and the review directory ${cfg.name.dir} must not contain one another`);
  }
  const raw = [...strs(values, 'image'), ...positionals];
  if (!raw.length) problems.push('no image: pass --image NAME=REF@DIGEST (the build job’s image, pinned by digest)');
  const exprs = imageExprsFlag(raw, errors);
  const pins = exprs.map(pinFromExpr);
  for (const p of pins) if (!p.digest) problems.push(`--image ${p.name}: a review app pins images by digest (NAME@sha256:… or NAME=NEWNAME:TAG@sha256:…), so that what runs is what was built`);
  const ns = str(values, 'namespace');
  if (ns !== undefined && ns !== '' && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) problems.push(`--namespace ${JSON.stringify(ns)} is not a Kubernetes namespace name (RFC 1123 label)`);
  throwProblems('review up', problems, errors);
  const c = cfg as ReviewConfig;
  const namespace = ns === undefined ? `review-${c.name.slug}` : ns || undefined;
  return runReview(ctx, values, c, { base: base!, namespace, pins, mr: ctx.env.CI_MERGE_REQUEST_IID || undefined, project: ctx.env.CI_PROJECT_PATH || undefined }, [c.name.dir, base!]);
}
