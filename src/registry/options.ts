/** Flags shared by the image commands that talk to a registry, and how they become a Registries. */
import type { CommandContext, OptionSpec, Values } from '../core/command.js';
import { bool, str } from '../core/command.js';
import { credentialStore, readExplicit, readStdinAll, type CredentialStore } from './auth.js';
import { Registries } from './client.js';
import { retryAttempts } from '../core/flags.js';

export const registryOptions: Record<string, OptionSpec> = {
  'registry-user': { type: 'string', value: 'USER', description: 'registry user for the registry written to; the password comes from GITOPS_REGISTRY_PASSWORD or stdin', env: ['GITOPS_REGISTRY_USER'] },
  'registry-password-stdin': { type: 'boolean', description: 'read the registry password from stdin' },
  'ca-file': { type: 'string', value: 'PEM', description: 'extra CA certificate to trust for registry TLS', env: ['GITOPS_REGISTRY_CA_FILE'] },
  insecure: { type: 'boolean', description: 'allow plain HTTP and skip TLS verification (loopback registries may always use plain HTTP)' },
};

/** the credential store: explicit credentials apply to the registries in `explicitFor` (those written to) */
export async function makeCreds(ctx: CommandContext, v: Values, explicitFor: string[] | 'every'): Promise<CredentialStore> {
  const explicit = await readExplicit(ctx.env, str(v, 'registry-user'), bool(v, 'registry-password-stdin'), readStdinAll);
  return credentialStore(ctx.env, explicit, explicitFor);
}

export async function makeRegistries(ctx: CommandContext, v: Values, explicitFor: string[] | 'every', store?: CredentialStore, deadline?: number): Promise<Registries> {
  const creds = store ?? (await makeCreds(ctx, v, explicitFor));
  const attempts = retryAttempts(ctx.env);
  return new Registries({
    creds,
    insecure: bool(v, 'insecure') || ctx.env.GITOPS_REGISTRY_INSECURE === 'true',
    caFile: str(v, 'ca-file') ?? (ctx.env.GITOPS_REGISTRY_CA_FILE || undefined),
    attempts,
    deadline,
    debug: (m) => ctx.log.debug(m),
  });
}
