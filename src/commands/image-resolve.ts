/** `gitops-ci image resolve REF`: the digest behind a tag, from the registry API (no Docker engine). */
import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
import { str } from '../core/command.js';
import { fail } from '../core/errors.js';
import { parseDuration } from '../argocd/duration.js';
import { parseRef, refReference, repoName, formatRef } from '../registry/ref.js';
import { makeRegistries, registryOptions } from '../registry/options.js';

export const spec: CommandSpec = {
  name: 'image resolve',
  usage: 'gitops-ci image resolve REF [--dotenv FILE] [--timeout DURATION] [--insecure] [--ca-file PEM]',
  description: `
Print the digest (sha256:…) behind an image tag on stdout, asking the registry: the manifest is read
and hashed; a Docker-Content-Digest header that is not sha256:<64 hex> or names other bytes is refused
(EREGISTRY_DIGEST, exit 1). A missing tag fails with exit 1. Credentials: DOCKER_AUTH_CONFIG,
CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for CI_REGISTRY, or --registry-user (see docs/commands/image.md).`,
  positionals: [['REF', 'image reference, e.g. registry.example.com/group/app:1.2.3']],
  options: {
    ...registryOptions,
    dotenv: { type: 'string', value: 'FILE', description: 'write IMAGE (repo@digest), IMAGE_TAG and IMAGE_DIGEST to this dotenv file' },
    timeout: { type: 'string', value: 'DURATION', description: 'time limit for the whole lookup, retries included (exit 4 past it)', default: '2m' },
  },
  examples: ['gitops-ci image resolve $CI_REGISTRY_IMAGE:$CI_COMMIT_SHA', 'gitops-ci image resolve 127.0.0.1:5000/app:main --dotenv image.env'],
};

export async function run(ctx: CommandContext, { values, positionals }: ParsedArgs): Promise<CommandResult> {
  if (positionals.length !== 1) throw fail.usage('EREGISTRY_BAD_REF', 'image resolve takes exactly one image reference', { hint: 'gitops-ci image resolve host/path/name:tag' });
  const ref = parseRef(positionals[0]);
  const timeoutMs = parseDuration(str(values, 'timeout') ?? '2m', 'timeout', { code: 'EREGISTRY_TIMEOUT_FLAG' });
  const regs = await makeRegistries(ctx, values, [ref.registry], undefined, Date.now() + timeoutMs);
  const c = regs.for(ref.registry);
  const reference = refReference(ref);
  // GET, not HEAD: the digest printed is the hash of the manifest bytes read, checked against the registry's header
  const m = await c.resolveManifest(ref.repository, reference);
  if (!m) {
    throw fail.failed('EREGISTRY_NOT_FOUND', `${formatRef(ref)} not found`, { where: formatRef(ref), hint: 'check the repository and tag; was the image pushed?' });
  }
  ctx.log.stdout(`${m.digest}\n`);
  return {
    summary: `${formatRef(ref)} is ${m.digest}`,
    outputs: { IMAGE: `${repoName(ref)}@${m.digest}`, IMAGE_TAG: formatRef({ ...ref, digest: undefined }), IMAGE_DIGEST: m.digest },
  };
}
