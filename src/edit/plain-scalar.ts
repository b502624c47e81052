/**
 * What a plain YAML scalar is, answered without the `yaml` parser where the answer is certain (a letter first, not
 * one of the bool or null words): the edit fast paths use these and leave the rest to the parse (src/edit/splice.ts
 * plainIsSafe, src/kustomize/edit.ts yaml11Type), so a command whose files are all in the common case never loads
 * `yaml` (set-image over 1,000 overlays: bench/set-image.ts). test/set-image/fast-path.test.ts checks both answers
 * against the parse.
 *
 * A plain scalar that starts with a letter is a string in YAML 1.1 and 1.2 unless it is one of the bool or null words, or
 * an exponent-only float (`e5`); every other 1.1 type (ints, floats, sexagesimals, timestamps, `.inf`, `<<`) starts
 * with a digit, a sign, a dot or `<`. The patterns are those of the `yaml` package's 1.1 schema
 * (yaml/dist/schema/yaml-1.1/bool.js, float.js, common/null.js); YAML 1.2's core schema types fewer words.
 */
const LETTER_FIRST = /^[A-Za-z]/;
/**
 * A version with three or more numbers (1.4.3, 10.0.0-rc.1): no int, float, sexagesimal or timestamp of YAML 1.1
 * or 1.2 has two dots before any other sign, so it is a string in both (and safe to write plain)
 */
const VERSION = /^[0-9]+(?:\.[0-9]+){2,}(?:-[0-9A-Za-z.-]*[0-9A-Za-z])?$/;
const NOT_STRING_1_1 = /^(?:Y|y|[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON|N|n|[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF|[Nn]ull|NULL|[eE][-+]?[0-9]+)$/;

/** 'string' where YAML 1.1 certainly reads the plain scalar `src` as a string; undefined when only a parse can tell */
export function yaml11TypeFast(src: string): 'string' | undefined {
  return (LETTER_FIRST.test(src) && !NOT_STRING_1_1.test(src)) || VERSION.test(src) ? 'string' : undefined;
}

/**
 * Letters first, then the characters a block plain scalar may hold on one line without a question (no `#`, no
 * quote, no flow indicator, no tab); `: ` and a final `:` are refused below.
 */
const SAFE_PLAIN = /^[A-Za-z][A-Za-z0-9_./:@+=~$ -]*$/;

/**
 * true where `s` written as a plain scalar in block context certainly reads back as the same string in YAML 1.1
 * and 1.2 (what plainIsSafe(s) answers by parsing); undefined when only the parse can tell.
 */
export function plainIsSafeFast(s: string): true | undefined {
  if (VERSION.test(s)) return true;
  if (!SAFE_PLAIN.test(s) || s.endsWith(' ') || s.endsWith(':') || s.includes(': ')) return undefined;
  return NOT_STRING_1_1.test(s) ? undefined : true;
}

export type Style = 'PLAIN' | 'QUOTE_SINGLE' | 'QUOTE_DOUBLE';

/** formatScalar(s, style) of src/edit/splice.ts in block context where it needs no parse; undefined otherwise */
export function formatScalarFast(s: string, style: Style): string | undefined {
  if (style === 'QUOTE_SINGLE' && !/[\r\n]/.test(s)) return `'${s.replace(/'/g, "''")}'`;
  if (style === 'QUOTE_DOUBLE') return JSON.stringify(s);
  return plainIsSafeFast(s) ? s : undefined;
}
