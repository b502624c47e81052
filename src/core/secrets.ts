/**
 * Secrets the CLI can meet in its environment. They are registered with the masker at start-up, before
 * anything is printed, so that no code path can print one by accident.
 */
import { addSecret } from './mask.js';

/** variables whose whole value is secret */
export const SECRET_VARS = [
  'CI_JOB_TOKEN',
  'CI_REGISTRY_PASSWORD',
  'CI_DEPENDENCY_PROXY_PASSWORD',
  'CI_DEPLOY_PASSWORD',
  'GITOPS_GIT_TOKEN',
  'GITOPS_GITLAB_TOKEN',
  'GITLAB_TOKEN',
  'GITOPS_REGISTRY_PASSWORD',
  'ARGOCD_AUTH_TOKEN',
  'ARGOCD_PASSWORD',
  'ARGOCD_WEBHOOK_SECRET',
  'GITOPS_WEBHOOK_SECRET',
  'SSH_PRIVATE_KEY',
  'GITOPS_SSH_PRIVATE_KEY',
];

/** usernames that appear next to secrets in basic auth (for the base64 `user:secret` form) */
export function knownUsers(env: NodeJS.ProcessEnv): string[] {
  return ['gitlab-ci-token', 'oauth2', 'git', 'admin', env.CI_REGISTRY_USER, env.CI_DEPLOY_USER, env.GITOPS_GIT_USER, env.GITOPS_REGISTRY_USER, env.ARGOCD_USERNAME].filter(
    (u): u is string => !!u,
  );
}

export function registerEnvSecrets(env: NodeJS.ProcessEnv): void {
  const users = knownUsers(env);
  for (const k of SECRET_VARS) addSecret(env[k], { users });
  // DOCKER_AUTH_CONFIG holds `auths: {host: {auth: base64(user:pass)}}`
  const dac = env.DOCKER_AUTH_CONFIG;
  if (dac) {
    addSecret(dac);
    try {
      const j = JSON.parse(dac) as { auths?: Record<string, { auth?: string; password?: string; identitytoken?: string }> };
      for (const a of Object.values(j.auths ?? {})) {
        addSecret(a.auth);
        addSecret(a.password, { users });
        addSecret(a.identitytoken);
        if (a.auth) {
          const dec = Buffer.from(a.auth, 'base64').toString();
          const i = dec.indexOf(':');
          if (i > 0) addSecret(dec.slice(i + 1), { users: [...users, dec.slice(0, i)] });
        }
      }
    } catch {
      /* not JSON: masked whole above */
    }
  }
}
