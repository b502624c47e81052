/** `gitops-ci image copy SRC DST`: promote an image without rebuilding it, digest preserved. */
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import { fail } from '../core/errors.js';
import { parseRef, repoName, formatRef } from '../registry/ref.js';
import { makeRegistries, registryOptions } from '../registry/options.js';
import { copyImage } from '../registry/copy.js';

export const spec: CommandSpec = {
  name: 'image copy',
  usage: 'gitops-ci image copy SRC DST [--dotenv FILE] [--insecure] [--ca-file PEM]',
  description: `
Copy an image (a manifest, or an index and its child manifests, and their blobs) to another tag,
repository or registry through the registry API. The manifest bytes are pushed unchanged, so the digest
is the same; blobs the target already has are not uploaded; on the same registry blobs are mounted
across repositories. DST without a tag takes SRC's tag. --registry-user credentials apply to DST's
registry (and to SRC when it is on the same registry).`,
  positionals: [
    ['SRC', 'source image, e.g. registry.example.com/group/app:3f2a9c1'],
    ['DST', 'destination image, e.g. registry.example.com/group/app/production:3f2a9c1'],
  ],
  options: {
    ...registryOptions,
    dotenv: { type: 'string', value: 'FILE', description: 'write IMAGE (repo@digest), IMAGE_TAG and IMAGE_DIGEST of DST to this dotenv file' },
  },
  examples: ['gitops-ci image copy $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA $CI_REGISTRY_IMAGE/release:1.4.0'],
};

export async function run(ctx: CommandContext, { values, positionals }: ParsedArgs): Promise<CommandResult> {
  if (positionals.length !== 2) throw fail.usage('EREGISTRY_BAD_REF', 'image copy takes two image references: SRC DST', { hint: 'e.g. gitops-ci image copy registry.example.com/app@sha256:… registry.example.com/app:production' });
  const src = parseRef(positionals[0]);
  const dst = parseRef(positionals[1], { defaultTag: src.tag });
  if (dst.digest && !dst.tag) throw fail.usage('EREGISTRY_BAD_REF', `DST ${positionals[1]} needs a tag (a digest alone names what is copied, not where)`);
  const regs = await makeRegistries(ctx, values, [dst.registry]);
  const res = await ctx.log.section(`copy ${formatRef(src)} → ${formatRef(dst)}`, () => copyImage(regs, src, { ...dst, digest: undefined }, ctx.log), { collapsed: true });
  const st = res.stats;
  ctx.log.info(`copied ${st.manifests} manifest(s): ${st.blobsUploaded} blob(s) uploaded (${(st.bytesUploaded / 1e6).toFixed(1)} MB), ${st.blobsMounted} mounted, ${st.blobsSkipped} already there`);
  if (dst.digest && dst.digest !== res.digest) throw fail.failed('EREGISTRY_DIGEST', `copied image is ${res.digest}, not ${dst.digest}`);
  return {
    summary: `${formatRef(dst)} is ${res.digest} (${st.blobsUploaded} uploaded, ${st.blobsMounted} mounted, ${st.blobsSkipped} skipped)`,
    outputs: { IMAGE: `${repoName(dst)}@${res.digest}`, IMAGE_TAG: formatRef({ ...dst, digest: undefined }), IMAGE_DIGEST: res.digest },
  };
}
