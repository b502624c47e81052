/**
 * Text from a commit, a manifest or an API answer that goes into an MR description or note. GitLab renders
 * both as GitLab Flavored Markdown (CommonMark + HTML + references): a resource name, an image string or a
 * path could otherwise open a heading, a link, an image, raw HTML, a closing code fence, a mention.
 * https://docs.gitlab.com/user/markdown/
 *
 * - escapeMarkdown(text): for running text. Line breaks become spaces (no new block can start), and every
 *   ASCII punctuation character that Markdown or HTML gives a meaning (`-`, `+`, `.`, `=`, `)` only where they
 *   could start a block: at the beginning) is written as a numeric character
 *   reference (`&#35;` for `#`): CommonMark renders a reference as the literal character and never as syntax
 *   (https://spec.commonmark.org/0.31.2/#entity-and-numeric-character-references), and so does HTML, so the
 *   result is also safe inside a raw HTML element such as `<summary>`.
 * - codeSpan(text): an inline code span that no backtick run in the text can close; GitLab does not turn
 *   what is inside code into links, mentions or references. Use it for identifiers (names, images, paths).
 */

const SPECIAL = /[\\`*_{}[\]()#!|~<>&"'@$%^]/g;
/** characters that start a block only at the beginning of a line: a list item (`- `, `+ `, `1. `, `1) `) or a setext underline */
const LEADING = /^(\s*\d*)([-+.=)])/;

export function escapeMarkdown(text: string): string {
  return String(text)
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(SPECIAL, (c) => `&#${c.charCodeAt(0)};`)
    .replace(LEADING, (_m, pre: string, c: string) => `${pre}&#${c.charCodeAt(0)};`);
}

export function codeSpan(text: string): string {
  const t = String(text).replace(/[\r\n\u2028\u2029]+/g, ' ');
  if (t === '') return '` `';
  let longest = 0;
  for (const m of t.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  const fence = '`'.repeat(longest + 1);
  // a span that starts or ends with a backtick (or is blank) needs a space on each side, which CommonMark strips
  const pad = t.startsWith('`') || t.endsWith('`') || (t.length > 0 && t.trim() === '') ? ' ' : '';
  return `${fence}${pad}${t}${pad}${fence}`;
}
