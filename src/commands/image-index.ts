/** `gitops-ci image index DST SRC...`: one multi-platform image from single-platform images, nothing rebuilt. */
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import { fail } from '../core/errors.js';
import { formatRef, parseRef, repoName } from '../registry/ref.js';
import { makeRegistries, registryOptions } from '../registry/options.js';
import { buildIndex, indexEntry, platformName } from '../registry/image-index.js';

export const spec: CommandSpec = {
  name: 'image index',
  usage: 'gitops-ci image index DST SRC... [--dotenv FILE] [--insecure] [--ca-file PEM]',
  description: `
Make one multi-platform image: push an image index (a Docker manifest list when every SRC is a Docker
manifest, else an OCI index) that lists each SRC with the platform (os/architecture/variant) its config
declares, under DST's tag. Each SRC is a single-platform image in DST's repository, named by digest (the
release builds each architecture on a runner of its own and pushes it there); nothing is rebuilt or copied.
The index is read back from the registry before it is reported.`,
  positionals: [
    ['DST', 'the multi-platform image, e.g. registry.example.com/group/runner:1.4.0'],
    ['SRC...', 'the single-platform images by digest, e.g. registry.example.com/group/runner@sha256:…'],
  ],
  options: {
    ...registryOptions,
    dotenv: { type: 'string', value: 'FILE', description: 'write IMAGE (repo@digest), IMAGE_TAG and IMAGE_DIGEST of the index to this dotenv file' },
  },
  examples: ['gitops-ci image index $CI_REGISTRY_IMAGE/runner:$CI_COMMIT_SHA $CI_REGISTRY_IMAGE/runner@$AMD64_DIGEST $CI_REGISTRY_IMAGE/runner@$ARM64_DIGEST'],
};

export async function run(ctx: CommandContext, { values, positionals }: ParsedArgs): Promise<CommandResult> {
  if (positionals.length < 2) throw fail.usage('EREGISTRY_BAD_REF', 'image index takes DST and at least one SRC', { hint: 'e.g. gitops-ci image index registry.example.com/app:1.4.0 registry.example.com/app@sha256:…' });
  const dst = parseRef(positionals[0]);
  if (dst.digest || !dst.tag) throw fail.usage('EREGISTRY_BAD_REF', `DST ${positionals[0]} needs a tag and no digest: it names where the index goes`);
  const srcs = positionals.slice(1).map((p) => parseRef(p));
  for (const [i, s] of srcs.entries()) {
    if (!s.digest) throw fail.usage('EREGISTRY_BAD_REF', `SRC ${positionals[i + 1]} needs a digest (repo@sha256:…): a tag could move while the index is made`);
    if (s.registry !== dst.registry || s.repository !== dst.repository) {
      throw fail.usage('EREGISTRY_BAD_REF', `SRC ${positionals[i + 1]} is not in DST's repository ${repoName(dst)}`, { hint: `copy it there first: gitops-ci image copy ${positionals[i + 1]} ${repoName(dst)}:<tag>` });
    }
  }
  const regs = await makeRegistries(ctx, values, [dst.registry]);
  const client = regs.for(dst.registry);
  const entries = await ctx.log.section(`read ${srcs.length} image(s)`, () => Promise.all(srcs.map((s) => indexEntry(client, dst.repository, s.digest!))), { collapsed: true });
  for (const e of entries) ctx.log.info(`${platformName(e.platform)}: ${e.digest}`);
  const index = buildIndex(entries);
  await client.putManifest(dst.repository, dst.tag, index);
  // reported only when the registry serves it back under the tag
  const back = await client.getManifest(dst.repository, dst.tag);
  if (back.digest !== index.digest) {
    throw fail.failed('EREGISTRY_NOT_STORED', `${formatRef(dst)} serves ${back.digest}, not the index that was pushed (${index.digest})`, { where: formatRef(dst), hint: 'another push to the same tag may have raced this one: run again' });
  }
  return {
    summary: `${formatRef(dst)} is ${index.digest}: ${entries.map((e) => platformName(e.platform)).join(', ')}`,
    outputs: { IMAGE: `${repoName(dst)}@${index.digest}`, IMAGE_TAG: formatRef(dst), IMAGE_DIGEST: index.digest },
  };
}
