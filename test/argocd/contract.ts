/**
 * Validates every response of the Argo CD double against the v3.5.1 swagger (the part we use, kept in
 * test/contracts/argocd-swagger.json; origin and license in test/contracts/SOURCES.md): each
 * recorded response names the definition it claims to be; errors are runtimeError, stream lines the
 * path's inline "Stream result of v1alpha1ApplicationWatchEvent" schema.
 *
 * Stricter than the swagger on one point: objects may not carry properties the swagger does not define
 * (additionalProperties: false, with allOf members merged in), so that a misspelt field in the double
 * (`reconciledat`) fails here instead of silently passing.
 */
import { readFileSync } from 'node:fs';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { RecordedResponse } from '../doubles/argocd/server.js';
import { contractFile } from '../helpers/contracts.js';

const SWAGGER = contractFile('argocd-swagger.json');

type Schema = Record<string, any>;

function strict(s: Schema): Schema {
  if (Array.isArray(s)) return s.map(strict) as unknown as Schema;
  if (!s || typeof s !== 'object') return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref' && typeof v === 'string') out.$ref = v.replace('#/definitions/', 'argocd#/definitions/');
    else if (k === 'title' || k === 'description' || k === 'example') continue;
    else out[k] = strict(v as Schema);
  }
  if (out.allOf) {
    // merge allOf members' properties (ResourceNode inlines ResourceRef on the wire)
    out.properties = { ...(out.properties ?? {}) };
    for (const m of out.allOf as Schema[]) {
      const ref = m.$ref ? defs[String(m.$ref).split('/').pop()!] : m;
      Object.assign(out.properties, strict(ref?.properties ?? {}));
    }
    delete out.allOf;
  }
  if ((out.type === 'object' || out.properties) && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const swagger = JSON.parse(readFileSync(SWAGGER, 'utf8'));
const defs: Record<string, Schema> = swagger.definitions;

// CommonJS default exports under NodeNext
const Ajv = ((AjvModule as any).default ?? AjvModule) as typeof AjvModule.default;
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as typeof addFormatsModule.default;
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('int64', true);
ajv.addFormat('int32', true);
ajv.addFormat('byte', true);
ajv.addSchema({ $id: 'argocd', definitions: Object.fromEntries(Object.entries(defs).map(([k, v]) => [k, strict(v)])) });

const streamSchema = strict(swagger.paths['/api/v1/stream/applications'].get.responses['200'].schema);
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function validator(name: string) {
  let v = validators.get(name);
  if (!v) {
    v = name === 'streamResult' ? ajv.compile(streamSchema) : ajv.compile({ $ref: `argocd#/definitions/${name}` });
    validators.set(name, v);
  }
  return v;
}

export function knownDefinition(name: string): boolean {
  return name === 'streamResult' || name in defs;
}

/** problems of one response; JSON bodies must name a swagger definition */
export function validateResponse(r: RecordedResponse): string[] {
  if (typeof r.body === 'string') {
    // plain-text answers exist in the contract: 415, webhook results, gateway routing errors
    return [];
  }
  if (!r.schema) return [`${r.method} ${r.path} ${r.status}: JSON body without a schema`];
  if (!knownDefinition(r.schema)) return [`${r.method} ${r.path}: unknown definition ${r.schema}`];
  if (r.status >= 400 && r.schema !== 'runtimeError' && r.schema !== 'streamResult') return [`${r.method} ${r.path} ${r.status}: error body claims ${r.schema}`];
  const v = validator(r.schema);
  if (v(r.body)) return [];
  return (v.errors ?? []).map((e: { instancePath: string; message?: string; params: Record<string, unknown> }) => `${r.method} ${r.path} ${r.status} (${r.schema}): ${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : ''}`);
}

/** a recorder to pass as `onResponse`: collects every violation */
export function contractRecorder() {
  const violations: string[] = [];
  let checked = 0;
  return {
    onResponse: (r: RecordedResponse) => {
      checked++;
      violations.push(...validateResponse(r));
    },
    violations,
    get checked() {
      return checked;
    },
  };
}
