/**
 * The part of a contract check both contract files share (test/contracts/gitlab-api.json, git-lfs-locks.json): a value
 * against a named type of the contract, an object whose every required field is present and whose every field is
 * one its type lists (a field not listed is a violation: it catches a misspelt field in a double). Each checker
 * checks a field's own type its way (`field`).
 */
export interface NamedType<F> {
  fields: Record<string, F>;
  required: string[];
}

export function checkNamedType<F>(v: unknown, expr: string, at: string, types: Record<string, NamedType<F>>, field: (x: unknown, f: F, at: string) => string[]): string[] {
  const t = types[expr];
  if (!t) return [`${at}: unknown type ${expr} in the contract`];
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [`${at}: not an object (${expr})`];
  const o = v as Record<string, unknown>;
  const out: string[] = [];
  for (const r of t.required) if (!(r in o)) out.push(`${at}: ${expr} lacks required field ${r}`);
  for (const [k, x] of Object.entries(o)) {
    const f = t.fields[k];
    if (f === undefined) out.push(`${at}: ${expr} has no field ${k}`);
    else out.push(...field(x, f, `${at}.${k}`));
  }
  return out;
}
