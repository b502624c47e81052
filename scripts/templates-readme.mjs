import { readFileSync, readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
const order = ['build', 'image', 'deploy', 'review', 'promote', 'config-repo'];
const what = {
  build: 'Builds the image once with registry cache and pushes it (`gitops-ci image build`); job `<prefix>build`, only in pipelines of the protected `branch`. Outputs `<JOB>_IMAGE` (repo@digest), `<JOB>_IMAGE_TAG`, `<JOB>_IMAGE_DIGEST`, e.g. `GITOPS_BUILD_IMAGE`.',
  image: 'Bring your own build: resolves the digest of an image your own job pushed (`gitops-ci image resolve`) and hands it on as `build` does, under the same job name `<prefix>build` and the same outputs.',
  deploy: 'Pins the image of `<prefix>build` in an overlay, commits and pushes (`gitops-ci bump`), then waits until Argo CD runs that commit synced and healthy (`gitops-ci argocd wait`), in one job `<prefix>deploy-<environment>` that records a GitLab deployment. Outputs `<JOB>_CONFIG_HEAD`, `<JOB>_COMMIT_SHA`, `<JOB>_CHANGED`, `<JOB>_ARGOCD_…`.',
  review: 'Review apps: in merge-request pipelines, `<prefix>review` writes the MR\'s overlay `<review-root>/mr-<iid>/` with the image of `build-job` by digest (`gitops-ci review up`) and waits until the app an Argo CD ApplicationSet generates from it runs healthy; environment `review/mr-<iid>` with `on_stop: <prefix>review-stop` and `auto_stop_in`. The stop job (MR merged or closed, auto-stop, or by hand) removes the overlay (`gitops-ci review down`) and waits until Argo CD has deleted the app. See docs/commands/review.md.',
  promote: 'Moves what Argo CD verified in the source environment to this one (`gitops-ci promote --from-app`), never a rebuild, after the approval gate (`gitops-ci gate --commit`), and waits for Argo CD; job `<prefix>promote-<environment>`. With gate `merge-request`, the job is `<prefix>promotion-mr-<environment>` and opens a merge request (`environment: action: prepare`). In merge-request pipelines into `branch`: `<prefix>gate-<environment>` (gate `approvals`) and `<prefix>preview-<environment>`.',
  'config-repo': 'For a config repository: in merge-request pipelines, `<prefix>preview` (rendered diff of every touched overlay as one MR note) and `<prefix>gate` (when `approvals` > 0); after a merge, `<prefix>verify` waits for the affected apps.',
};
let out = `# templates/

GitLab CI/CD components (\`spec:inputs\`) that run the \`gitops-ci\` runner image. Recipes: the root README,
[Use it in a pipeline](../README.md#use-it-in-a-pipeline). Each component is validated against GitLab's CI schema
(test/templates/schema.test.ts) and run in gitlab-ci-local (test/templates/*.test.ts); this page is checked against
the components' \`spec:inputs\` by test/templates/inputs-doc.test.ts.

**Requires GitLab 18.0 or later** (self-managed or GitLab.com); see [docs/gitlab.md](../docs/gitlab.md#minimum-gitlab-version).
Include the components by a released version (\`@0.2.0\`, \`@0.2\`, \`@~latest\`), by commit SHA (GitLab's advice for
security), by branch, or from a mirror: they behave the same, and the runner image never depends on how they were
included.

Every input is typed and checked when the pipeline is created (\`options\`, \`regex\`). An empty string means
"unset": the next default applies. Inputs reach the scripts as job variables (\`GITOPS_INPUT_*\`), which GitLab
expands (CI/CD variables in them) but never runs as shell; the scripts only quote them. No value of an input runs as
a command, whatever its regex (test/templates/hostile-inputs.test.ts).

The default \`runner-image\` is \`$GITOPS_RUNNER_IMAGE\`, a job variable set to the runner image of the components'
release, \`registry.gitlab.com/gitops-ci/gitops-ci/runner:<version>\`, written in each component (not
\`$[[ component.version ]]\`, which is empty when a component is included by SHA, by branch or from a mirror). A
project or group CI/CD variable \`GITOPS_RUNNER_IMAGE\` takes precedence over it: set one to use a mirrored image
for every component at once, or set \`runner-image\` per include.
`;
for (const n of order) {
  const [h] = parseAllDocuments(readFileSync(`templates/${n}.yml`, 'utf8'));
  const inputs = h.toJS().spec.inputs;
  out += `\n## ${n}\n\n${what[n]}\n\n| input | type | default | description |\n|---|---|---|---|\n`;
  for (const [k, v] of Object.entries(inputs)) {
    const type = v.type ?? 'string';
    const constraint = v.options ? `one of ${v.options.map((o) => '`' + o + '`').join(', ')}` : v.regex ? `regex \`\` ${v.regex.replace(/\|/g, '\\|')} \`\`` : '';
    const def = v.default === undefined ? '(required)' : v.default === '' ? '""' : '`' + JSON.stringify(v.default).replace(/^"|"$/g, '') + '`';
    out += `| \`${k}\` | ${type}${constraint ? `, ${constraint}` : ''} | ${def.replace(/\|/g, '\\|')} | ${v.description.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |\n`;
  }
}
process.stdout.write(out);
