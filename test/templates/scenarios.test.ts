/**
 * Scenarios beyond the README's first example, as GitLab users include the components (issue #9 items 3, 7, 8, 9,
 * 10), in gitlab-ci-local against the harness's real services and the GitLab and Argo CD doubles:
 * - two services in one repo (one built by the build component, one by the team's own docker job through the
 *   image component), and two pipelines of the same branch at once;
 * - the separate config repo of the README: a merge request (preview and gate) and its merge (verify the affected
 *   app only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/services.js';
import { git, seedLayout, type Tree } from '../helpers/config-repo.js';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import { ARGO_POLL_MS, startPipelineHarness, type PipelineHarness } from '../helpers/pipeline-harness.js';
import { startArgoCdDouble, type ArgoCdDouble } from '../doubles/argocd/server.js';

const VERSION = '0.2.0';

/** seedLayout with `.kubernetes/` moved to `prefix` */
function layout(image: string, prefix: string): Tree {
  return Object.fromEntries(Object.entries(seedLayout(image)).map(([k, v]) => [k.replace(/^\.kubernetes\//, prefix), v]));
}

/** the yaml block of the README that starts with `first` */
function readmeBlock(first: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const m of readme.matchAll(/```yaml\n([\s\S]*?)```/g)) if (m[1]!.startsWith(first)) return m[1]!;
  throw new Error(`README.md: no yaml block starting with ${first}`);
}

const MULTI_FIRST_LINE = '# two services in one repository: api and web';

const DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n';

describe('component scenarios in gitlab-ci-local', () => {
  let h: PipelineHarness;
  let argoApp: ArgoCdDouble;
  let argoCfg: ArgoCdDouble;
  const CONFIG_CI = readmeBlock("# the config repo's .gitlab-ci.yml");
  const MULTI = readmeBlock(MULTI_FIRST_LINE); // the README's several-services example, verbatim

  beforeAll(async () => {
    h = await startPipelineHarness([
      {
        path: 'shovel/multi',
        branches: ['main', 'staging'],
        tree: {
          ...layout('registry.example.com/shovel/api', '.kubernetes/api/'),
          ...layout('registry.example.com/shovel/web', '.kubernetes/web/'),
          '.gitlab-ci.yml': MULTI,
          'api/Dockerfile': DOCKERFILE,
          'web/Dockerfile': DOCKERFILE,
        },
        binaries: { 'api/busybox': '/bin/busybox', 'web/busybox': '/bin/busybox' },
      },
      { path: 'shovel/shovel-config', branches: ['main'], tree: { ...layout('registry.example.com/shovel/shovel-gitops', ''), '.gitlab-ci.yml': CONFIG_CI } },
    ]);
    argoApp = await startArgoCdDouble({
      repoURL: h.srv.authUrl('shovel/multi.git'),
      apps: [
        { name: 'api-staging', path: '.kubernetes/api/overlays/staging', targetRevision: 'staging' },
        { name: 'web-staging', path: '.kubernetes/web/overlays/staging', targetRevision: 'staging' },
      ],
      pollIntervalMs: ARGO_POLL_MS,
    });
    argoCfg = await startArgoCdDouble({
      repoURL: h.srv.authUrl('shovel/shovel-config.git'),
      apps: [
        { name: 'shovel-staging', path: 'overlays/staging', targetRevision: 'main' },
        { name: 'shovel-production', path: 'overlays/production', targetRevision: 'main' },
      ],
      pollIntervalMs: ARGO_POLL_MS,
    });
  });
  afterAll(async () => {
    await argoApp?.stop();
    await argoCfg?.stop();
    await h?.stop();
  });

  it('two services in one repo, two pipelines of staging at once: every job passes, the newer commit\'s images land in both overlays', async () => {
    // commit A is on staging; commit B follows it; both pipelines run at the same time
    const a = h.checkout('shovel/multi', 'staging', VERSION);
    const shaA = git(a, ['rev-parse', 'HEAD']);
    const b = h.checkout('shovel/multi', 'staging', VERSION);
    git(b, ['commit', '-q', '--allow-empty', '-m', 'B']);
    git(b, ['push', '-q', h.srv.authUrl('shovel/multi.git'), 'HEAD:refs/heads/staging']);
    const shaB = git(b, ['rev-parse', 'HEAD']);
    git(a, ['fetch', '-q', h.srv.authUrl('shovel/multi.git'), 'staging']); // A's clone knows B, as a runner's fetch would: the stale guard decides by ancestry
    const v = h.vars('shovel/multi', { protectedRef: true, argo: argoApp });
    expect(await h.jobs(a, v)).toEqual(['api-build', 'api-deploy-staging', 'build-web', 'web-build', 'web-deploy-staging']);
    const [ra, rb] = await Promise.all([h.gcl(a, ['--no-json-schema-validation'], v), h.gcl(b, ['--no-json-schema-validation'], v)]);
    for (const r of [ra, rb]) {
      expect(r.code, r.out).toBe(0);
      for (const j of ['api-build', 'api-deploy-staging', 'build-web', 'web-build', 'web-deploy-staging']) expect(r.out).toMatch(new RegExp(`PASS\\s+${j}\\b`));
    }
    // each deploy took its own service's image (outputs named per job)
    const out = (dir: string, job: string, file: string) => readFileSync(join(dir, `.gitlab-ci-local/artifacts/${job}/.gitlab-ci-reports/dotenv/${file}`), 'utf8');
    const apiB = /^API_BUILD_IMAGE=(.+)$/m.exec(out(b, 'api-build', 'gitops-image.env'))![1]!;
    const webB = /^WEB_BUILD_IMAGE=(.+)$/m.exec(out(b, 'web-build', 'gitops-image.env'))![1]!;
    expect(apiB).toMatch(/\/shovel\/multi@sha256:/);
    expect(webB).toMatch(/\/shovel\/multi\/web@sha256:/);
    const check = tmp();
    git(check, ['clone', '-q', '--branch', 'staging', h.srv.authUrl('shovel/multi.git'), 'c']);
    const api = readFileSync(join(check, 'c/.kubernetes/api/overlays/staging/kustomization.yaml'), 'utf8');
    const web = readFileSync(join(check, 'c/.kubernetes/web/overlays/staging/kustomization.yaml'), 'utf8');
    expect(api).toContain(apiB.split('@')[1]);
    expect(web).toContain(webB.split('@')[1]);
    expect(api).not.toContain('shovel/multi/web');
    // every bump landed as one commit on top of the other (never forced), each naming its pipeline's source commit
    const log = git(join(check, 'c'), ['log', '--format=%B', `${shaB}..HEAD`]);
    expect(log).toContain(shaB);
    expect(readFileSync(join(check, 'c/.kubernetes/api/overlays/staging/kustomization.yaml'), 'utf8')).toContain('# staging overlay: CI bumps the image below; keep the comments');
    void shaA;
    const head = git(join(check, 'c'), ['rev-parse', 'HEAD']);
    // the app whose deploy job ran before the last bump learns of that bump from Argo CD's own git polling (the
    // jobs refresh only their own app): poll now rather than waiting out the interval (ARGO_POLL_MS)
    argoApp.pollNow();
    for (const app of ['api-staging', 'web-staging']) await argoApp.waitFor(app, (a) => a.status.sync.revision === head).catch(() => undefined);
    expect(argoApp.app('api-staging').status.sync.revision).toBe(head);
    expect(argoApp.app('web-staging').status.sync.revision).toBe(head);
  }, 300_000);

  it("the config repo of the README: its MR is previewed and gated; after the merge only the affected app is verified", async () => {
    const P = 'shovel/shovel-config';
    const id = h.ids[P]!;
    // a developer changes production's replicas on a branch and opens an MR into main
    const base = h.gl.hooks.branchSha(P, 'main')!;
    h.gl.hooks.push(P, 'more-replicas', { files: { 'overlays/production/deployment_patch.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shovel\nspec:\n  replicas: 5\n' }, message: 'production: 5 replicas', from: 'main' });
    const res = await fetch(`${h.gl.apiUrl}/projects/${id}/merge_requests`, {
      method: 'POST',
      headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('dev'), 'content-type': 'application/json' },
      body: JSON.stringify({ source_branch: 'more-replicas', target_branch: 'main', title: 'More replicas' }),
    });
    expect(res.status).toBe(201);
    const iid = ((await res.json()) as { iid: number }).iid;
    const mrDir = h.checkout(P, 'more-replicas', VERSION);
    const mrVars = {
      ...h.vars(P, { protectedRef: false, argo: argoCfg }),
      CI_PIPELINE_SOURCE: 'merge_request_event',
      CI_MERGE_REQUEST_IID: String(iid),
      CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'more-replicas',
      CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main',
      CI_MERGE_REQUEST_DIFF_BASE_SHA: base,
    };
    expect(await h.jobs(mrDir, mrVars, ['CI_COMMIT_BRANCH'])).toEqual(['gitops-gate', 'gitops-preview']);
    const mr = await h.gcl(mrDir, ['--no-json-schema-validation'], mrVars, ['CI_COMMIT_BRANCH']);
    expect(mr.out, mr.out).toMatch(/PASS\s+gitops-preview/);
    expect(mr.out).toMatch(/FAIL\s+gitops-gate/);
    const notes = h.gl.hooks.notes(P, iid);
    expect(notes).toHaveLength(1);
    expect(String(notes[0]!.body)).toMatch(/overlays\/production/);
    expect(String(notes[0]!.body)).toMatch(/replicas: 5/);
    expect(String(notes[0]!.body)).not.toMatch(/overlays\/staging/);

    h.gl.hooks.approve(P, iid, 'alice');
    const retry = await h.gcl(mrDir, ['gitops-gate', '--no-json-schema-validation'], mrVars, ['CI_COMMIT_BRANCH']);
    expect(retry.code, retry.out).toBe(0);
    const merged = await fetch(`${h.gl.apiUrl}/projects/${id}/merge_requests/${iid}/merge`, { method: 'PUT', headers: { 'PRIVATE-TOKEN': h.gl.tokenOf('alice') } });
    expect(merged.status).toBe(200);

    // the pipeline of the merge on main: verify the apps the change affects
    const mainDir = h.checkout(P, 'main', VERSION);
    const mainVars = { ...h.vars(P, { protectedRef: true, argo: argoCfg }), CI_COMMIT_BEFORE_SHA: base };
    expect(await h.jobs(mainDir, mainVars)).toEqual(['gitops-verify']);
    const r = await h.gcl(mainDir, ['--no-json-schema-validation'], mainVars);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('verifying shovel-production (overlays/production)');
    expect(r.out).toContain('not affected: shovel-staging (overlays/staging)');
    const head = git(mainDir, ['rev-parse', 'HEAD']);
    expect(r.out).toContain(`shovel-production deployed ${head.slice(0, 8)}`);
    expect(argoCfg.app('shovel-production').status.sync.revision).toBe(head);
  }, 240_000);
});
