/**
 * What the components promise about GitLab itself is stated, and stated once:
 * - the minimum GitLab version, the same in README.md, templates/README.md (the catalog's description) and
 *   docs/gitlab.md, and no component uses a keyword newer than it (`spec: component:` needs 18.6);
 * - the runner image never renders empty, however a component is included: it is written in each component as the
 *   release's version (package.json's, which the release pipeline publishes), never `$[[ component.* ]]`, which GitLab
 *   leaves null for an include by SHA, by branch or from a mirror (gitlab-org/gitlab MR 208965;
 *   https://docs.gitlab.com/ci/yaml/expressions/#component-context).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/gitlab-ci-local.js';

const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const templates = readdirSync(join(ROOT, 'templates')).filter((f) => f.endsWith('.yml'));
const MIN = /GitLab (\d+\.\d+) or later/g;

describe('GitLab version and include forms', () => {
  it('states one minimum GitLab version in the README, the catalog description and docs/gitlab.md', () => {
    const found = new Map<string, Set<string>>();
    for (const f of ['README.md', 'templates/README.md', 'docs/gitlab.md']) {
      const versions = new Set([...read(f).matchAll(MIN)].map((m) => m[1]!));
      expect(versions.size, `${f} states a minimum GitLab version ("GitLab X.Y or later")`).toBeGreaterThan(0);
      found.set(f, versions);
    }
    const all = new Set([...found.values()].flatMap((v) => [...v]));
    expect([...all], 'one minimum version everywhere').toHaveLength(1);
    const [major, minor] = [...all][0]!.split('.').map(Number);
    // no component uses spec:component / $[[ component.* ]] (18.6+) unless the stated minimum allows it
    for (const f of templates) {
      const text = read(join('templates', f));
      if (major! < 18 || (major === 18 && minor! < 6)) {
        expect(text, f).not.toMatch(/\$\[\[\s*component\./);
        expect(parseAllDocuments(text)[0]!.toJS().spec.component, f).toBeUndefined();
      }
    }
  });

  it('every job of every component runs a runner image that is never empty: the release version, written in the component', () => {
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    const ci = parseAllDocuments(read('.gitlab-ci.yml'))[0]!.toJS() as { variables: Record<string, string> };
    expect(ci.variables.RUNNER_IMAGE, 'the release pipeline publishes the runner image the components name').toMatch(/\/runner$/);
    let jobs = 0;
    for (const f of templates) {
      const [header, body] = parseAllDocuments(read(join('templates', f))).map((d) => d.toJS() as Record<string, any>);
      expect(header!.spec.inputs['runner-image'].default, f).toBe('$GITOPS_RUNNER_IMAGE');
      for (const [name, job] of Object.entries(body!)) {
        expect(job.image?.name, `${f} ${name}`).toBe('$[[ inputs.runner-image ]]');
        expect(job.variables?.GITOPS_RUNNER_IMAGE, `${f} ${name}`).toBe(`registry.gitlab.com/gitops-ci/gitops-ci/runner:${version}`);
        jobs++;
      }
    }
    expect(jobs).toBeGreaterThan(8);
  });
});
