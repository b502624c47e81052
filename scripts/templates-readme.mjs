import { readFileSync, readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
const order = ['build', 'image', 'deploy', 'promote', 'config-repo'];
const what = {
  build: 'Builds the image once with registry cache and pushes it (`gitops-ci image build`); job `<prefix>build`, only in pipelines of the protected `branch`. Outputs `<JOB>_IMAGE` (repo@digest), `<JOB>_IMAGE_TAG`, `<JOB>_IMAGE_DIGEST`, e.g. `GITOPS_BUILD_IMAGE`.',
  image: 'Bring your own build: resolves the digest of an image your own job pushed (`gitops-ci image resolve`) and hands it on as `build` does, under the same job name `<prefix>build` and the same outputs.',
  deploy: 'Pins the image of `<prefix>build` in an overlay, commits and pushes (`gitops-ci bump`), then waits until Argo CD runs that commit synced and healthy (`gitops-ci argocd wait`), in one job `<prefix>deploy-<environment>` that records a GitLab deployment. Outputs `<JOB>_CONFIG_HEAD`, `<JOB>_COMMIT_SHA`, `<JOB>_CHANGED`, `<JOB>_ARGOCD_…`.',
  promote: 'Moves what Argo CD verified in the source environment to this one (`gitops-ci promote --from-app`), never a rebuild, after the approval gate (`gitops-ci gate --commit`), and waits for Argo CD; job `<prefix>promote-<environment>`. In merge-request pipelines into `branch`: `<prefix>gate-<environment>` (gate `approvals`).',
  'config-repo': 'For a config repository: in merge-request pipelines, `<prefix>preview` (rendered diff of every touched overlay as one MR note) and `<prefix>gate` (when `approvals` > 0); after a merge, `<prefix>verify` waits for the affected apps.',
};
let out = `# templates/

GitLab CI/CD components (\`spec:inputs\`) that run the \`gitops-ci\` runner image. Recipes: the root README,
[Use it in a pipeline](../README.md#use-it-in-a-pipeline). Each component is validated against GitLab's CI schema
(test/templates/schema.test.ts) and run in gitlab-ci-local (test/templates/*.test.ts); this page is checked against
the components' \`spec:inputs\` by test/templates/inputs-doc.test.ts.

Every input is typed and checked when the pipeline is created (\`options\`, \`regex\`). An empty string means
"unset": the next default applies. Inputs reach the CLI as flags (CI/CD variables in them are expanded by the job's
shell), never as job variables that an upstream dotenv could override.

The default \`runner-image\` is \`$GITOPS_RUNNER_IMAGE\`, a job variable set to
\`registry.gitlab.com/gitops-ci/gitops-ci/runner:$[[ component.version ]]\`: the runner image of the component's own
version. GitLab interpolates \`component.version\` in a component's body but not inside an input's default, hence
the variable. It is empty when the component is included by commit SHA or branch; then set \`runner-image\`.
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
