/**
 * No input value runs as shell, whatever its regex (issue 18 item 7). The components hand every input to their
 * scripts as a job variable (GitLab expands `$VAR` references in variable values but never runs them:
 * https://docs.gitlab.com/ci/variables/#use-cicd-variables-in-other-variables), and the scripts only quote them
 * (or split them with globbing off). Here each component is interpolated as GitLab does (node by node, with every
 * string input set to a hostile value, its regex ignored), and each job's script runs in sh (dash, then bash) with
 * a stand-in `gitops-ci` that records its arguments: no marker file appears, and the values reach the CLI as data.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/gitlab-ci-local.js';
import { tmp } from '../helpers/services.js';

type Obj = Record<string, any>;
const SCRIPT_KEYS = ['before_script', 'script', 'after_script'];

/** GitLab interpolates `$[[ inputs.x ]]` in each string of the parsed document (never in YAML text) */
function interpolate(node: unknown, inputs: Obj): unknown {
  if (typeof node === 'string') {
    const whole = /^\$\[\[\s*inputs\.([\w-]+)\s*\]\]$/.exec(node);
    if (whole) return inputs[whole[1]!];
    return node.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, n: string) => String(inputs[n]));
  }
  if (Array.isArray(node)) return node.map((n) => interpolate(n, inputs));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [interpolate(k, inputs) as string, interpolate(v, inputs)]));
  return node;
}

/** GitLab's expansion of job variables: `$VAR` and `${VAR}` references only; `$(…)`, backticks and quotes stay text */
function expand(value: string, env: Obj): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a?: string, b?: string) => (m === '$$' ? '$' : String(env[(a ?? b)!] ?? '')));
}

const templates = readdirSync(join(ROOT, 'templates')).filter((f) => f.endsWith('.yml'));

describe('hostile input values', () => {
  it.each(templates)('templates/%s: no `$[[ inputs.* ]]` in any script text (inputs reach scripts only as variables)', (file) => {
    const [, body] = parseAllDocuments(readFileSync(join(ROOT, 'templates', file), 'utf8')).map((d) => d.toJS() as Obj);
    for (const [name, job] of Object.entries(body!)) {
      for (const k of SCRIPT_KEYS) {
        const text = ([] as string[]).concat(job[k] ?? []).join('\n');
        expect(text, `${name} ${k}`).not.toMatch(/\$\[\[/);
        expect(text, `${name} ${k}`).not.toMatch(/\beval\b/);
      }
    }
  });

  for (const shell of ['dash', 'bash']) {
    it.each(templates)(`templates/%s: every string input set to $(…), backticks, quotes and a newline runs nothing (${shell})`, (file) => {
      const dir = tmp('gci-hostile-');
      const marks = join(dir, 'pwned');
      const hostile = [`$(touch ${marks}-1)`, `\`touch ${marks}-2\``, `"; touch ${marks}-3; "`, `'; touch ${marks}-4; '`, `\ntouch ${marks}-5\n`, `$(IFS=x; touch ${marks}-6)`, `*`].join(' ');
      const [header, body] = parseAllDocuments(readFileSync(join(ROOT, 'templates', file), 'utf8')).map((d) => d.toJS() as Obj);
      const inputs: Obj = {};
      const strings: string[] = [];
      for (const [k, spec] of Object.entries(header!.spec.inputs as Obj)) {
        const type = spec?.type ?? 'string';
        if (type === 'string' && !spec?.options) {
          inputs[k] = hostile;
          strings.push(k);
        } else inputs[k] = spec?.default ?? (type === 'array' ? [] : type === 'number' ? 1 : type === 'boolean' ? true : undefined);
      }
      expect(strings.length).toBeGreaterThan(2);
      const jobs = interpolate(body, inputs) as Obj;

      // a stand-in CLI: records each argument on its own line (NUL-free), writes the outputs the scripts read
      const bin = join(dir, 'bin');
      spawnSync('mkdir', ['-p', bin]);
      const log = join(dir, 'argv');
      writeFileSync(
        join(bin, 'gitops-ci'),
        `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a" >> "${log}"; done\nprintf '\\n\\0' >> "${log}"\n` +
          `while [ $# -gt 0 ]; do if [ "$1" = --dotenv ]; then printf 'GITOPS_CONFIG_HEAD=%s\\nGITOPS_PROMOTED=app=registry.example.com/app@sha256:%s\\nARGOCD_URL=https://app.example.com\\n' 0123456789abcdef0123456789abcdef01234567 ${'a'.repeat(64)} > "$2"; fi; shift; done\n`,
      );
      chmodSync(join(bin, 'gitops-ci'), 0o755);

      let ran = 0;
      for (const [name, job] of Object.entries(jobs)) {
        const predefined: Obj = {
          PATH: `${bin}:${process.env.PATH}`,
          HOME: dir,
          CI_JOB_NAME: name,
          CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
          CI_COMMIT_BRANCH: 'staging',
          CI_MERGE_REQUEST_IID: '7',
          CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main',
          CI_REGISTRY_IMAGE: 'registry.example.com/app',
        };
        const env: Obj = { ...predefined };
        for (const [k, v] of Object.entries((job.variables ?? {}) as Obj)) env[k] = expand(String(v), env);
        // the build's output the deploy job reads (<JOB>_IMAGE of its build job)
        if (env.GITOPS_INPUT_BUILD_JOB !== undefined) {
          const key = Buffer.from(String(env.GITOPS_INPUT_BUILD_JOB)).toString('latin1').toUpperCase().replace(/[^A-Z0-9]/g, '_');
          env[`${key}_IMAGE`] = `registry.example.com/app@sha256:${'b'.repeat(64)}`;
        }
        const script = ([] as string[]).concat(job.script ?? []).join('\n');
        if (!script) continue;
        const r = spawnSync(shell, ['-e', '-c', script], { cwd: dir, env, encoding: 'utf8' });
        expect(r.status, `${name}: ${r.stderr}`).toBe(0);
        ran++;
        for (let i = 1; i <= 6; i++) expect(existsSync(`${marks}-${i}`), `${name}: marker ${i} (${shell})`).toBe(false);
      }
      expect(ran).toBeGreaterThan(0);
      // the values reached the CLI as data: some argument holds the hostile text exactly, or a word of it
      const args = existsSync(log) ? readFileSync(log, 'utf8').split('\0') : [];
      expect(args.some((a) => a.includes(`touch ${marks}-1`)), `${file}: the CLI never saw an input value`).toBe(true);
      // globbing is off where values are split at white space: `*` stays `*`, never the names in the job's directory
      expect(args).not.toContain('bin');
      if (file === 'build.yml') expect(args).toContain('*');
    });
  }
});
