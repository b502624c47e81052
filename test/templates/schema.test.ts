/**
 * Our own pipeline and every component in templates/ validate against GitLab's CI/CD JSON schema
 * (a kept copy, test/contracts/gitlab-ci-schema.json; origin in test/contracts/SOURCES.md). A component has two documents: the `spec:` header and the
 * body; GitLab's schema validates them separately.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import { contractFile } from '../helpers/contracts.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const schemaPath = contractFile('gitlab-ci-schema.json');

function validator() {
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(schema);
}

/** `$[[ inputs.x ]]` interpolation with each input's default, or a sample value for required inputs */
function render(node: unknown, inputs: Record<string, { default?: unknown; type?: string }>): unknown {
  const value = (name: string) => {
    const i = inputs[name];
    expect(i, `input ${name} is used but not declared`).toBeDefined();
    return i!.default !== undefined ? i!.default : i!.type === 'number' ? 1 : i!.type === 'boolean' ? true : i!.type === 'array' ? [] : `sample-${name}`;
  };
  if (typeof node === 'string') {
    const text = node.replace(/\$\[\[\s*component\.(version|reference|sha|name)\s*\]\]/g, (_m, k: string) => (k === 'version' ? '1.2.3' : `sample-${k}`));
    const whole = /^\$\[\[\s*inputs\.([\w-]+)\s*\]\]$/.exec(text);
    if (whole) return value(whole[1]!);
    return text.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, n: string) => String(value(n)));
  }
  if (Array.isArray(node)) return node.map((n) => render(n, inputs));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [render(k, inputs) as string, render(v, inputs)]));
  return node;
}

describe('GitLab CI schema', () => {
  const validate = validator();

  it('validates .gitlab-ci.yml', () => {
    const docs = parseAllDocuments(readFileSync(join(root, '.gitlab-ci.yml'), 'utf8'));
    expect(docs).toHaveLength(1);
    const ok = validate(docs[0]!.toJS());
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('rejects a broken pipeline (the validator is live)', () => {
    expect(validate({ job: { script: 'x', when: 'sometimes' } })).toBe(false);
    expect(validate({ job: { stage: 1, script: ['x'] } })).toBe(false);
  });

  const templates = existsSync(join(root, 'templates')) ? readdirSync(join(root, 'templates')).filter((f) => f.endsWith('.yml')) : [];
  it.skipIf(templates.length === 0).each(templates)('validates the component templates/%s (header and body)', (file) => {
    const docs = parseAllDocuments(readFileSync(join(root, 'templates', file), 'utf8'));
    expect(docs).toHaveLength(2);
    const header = docs[0]!.toJS() as { spec: { component?: string[]; inputs: Record<string, { default?: unknown; type?: string }> } };
    // spec:component (GitLab 18.6+, GA 18.7: `$[[ component.version ]]`) is newer than the schema, whose `spec` has
    // additionalProperties: false; GitLab itself accepts it. Everything else in the header is validated.
    if (header.spec.component) {
      expect(header.spec.component.every((k) => ['version', 'reference', 'sha', 'name'].includes(k))).toBe(true);
    }
    const { component: _component, ...spec } = header.spec;
    expect(validate({ spec }), JSON.stringify(validate.errors)).toBe(true);
    // GitLab validates the body after interpolation: render it with the defaults (or a sample for required inputs)
    const body = render(docs[1]!.toJS(), header.spec.inputs);
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    // GitLab accepts only strings and numbers as variable values (VariablesValidator); a whole-value boolean input
    // stays a boolean after interpolation, which the schema does not catch
    for (const [name, job] of Object.entries(body as Record<string, { variables?: Record<string, unknown> }>)) {
      for (const [k, v] of Object.entries(job.variables ?? {})) expect(['string', 'number'], `${name} ${k}`).toContain(typeof v);
    }
  });
});
