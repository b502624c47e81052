/**
 * Our own pipeline and every component in templates/ validate against GitLab's CI/CD JSON schema
 * (../shared/contracts/gitlab-ci-schema.json). A component has two documents: the `spec:` header and the
 * body; GitLab's schema validates them separately.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';

const root = fileURLToPath(new URL('../..', import.meta.url));
const schemaPath = resolve(root, '../shared/contracts/gitlab-ci-schema.json');

function validator() {
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(schema);
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
    for (const d of docs) {
      const ok = validate(d.toJS());
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
    }
  });
});
