/**
 * Markdown from untrusted text: anything read from a commit (trailers, messages), a manifest (image names,
 * resource names) or an API answer that goes into a merge request description or note passes through here,
 * so that it shows as the text it is and never as a heading, a link, an image, HTML, a table cell break or a
 * GitLab reference (`@user` notifies, `#1`, `!1`, `~label` link).
 *
 *   escapeMarkdown(text)  prose: one line, control and bidi characters dropped, and every ASCII punctuation
 *                         character that Markdown, HTML or a GitLab reference gives a meaning written as a numeric
 *                         character reference (`&#35;` for `#`; `-`, `+`, `.`, `=`, `)` only where they could start
 *                         a block: at the beginning). CommonMark renders a reference as the literal character and
 *                         never as syntax (https://spec.commonmark.org/0.31.2/#entity-and-numeric-character-references),
 *                         and so does HTML, so the result is also safe inside a raw HTML element such as
 *                         `<summary>` (where a backslash escape would show as a backslash).
 *   codeSpan(text)        an inline code span whose fence is longer than any backtick run inside: nothing in
 *                         it is Markdown, HTML or a reference. `{ table: true }` also escapes `|`, which GFM
 *                         splits table cells on even inside a code span.
 *   mdLink(text, url)     a link only to an http(s) URL without credentials (re-serialised: no `<`, `>`,
 *                         spaces or line breaks; parentheses percent-encoded), else the text and the URL as a
 *                         code span.
 * Every form is one line; long values are cut (`max`, default 500 characters) with an ellipsis.
 * CommonMark: https://spec.commonmark.org/0.31.2/#backslash-escapes, https://spec.commonmark.org/0.31.2/#code-spans
 * GFM tables: https://github.github.com/gfm/#tables-extension-
 * GitLab references: https://docs.gitlab.com/user/markdown/#gitlab-specific-references
 */

import { redactUrl } from './mask.js';

const DEFAULT_MAX = 500;

/** C0/C1 controls, DEL, line and paragraph separators, bidi embeddings/overrides/isolates, BOM */
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
const BREAKS = /[\r\n\t\u2028\u2029\u0085]+/g;

/** one line, no control or bidi characters, at most `max` characters */
export function oneLine(text: string, max = DEFAULT_MAX): string {
  const s = String(text ?? '').replace(BREAKS, ' ').replace(INVISIBLE, '');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

const SPECIAL = /[\\`*_{}[\]()#!|~<>&"'@$%^:]/g;
/** characters that start a block only at the beginning of a line: a list item (`- `, `+ `, `1. `, `1) `) or a setext underline */
const LEADING = /^(\s*\d*)([-+.=)])/;

/** Prose: shows `text` literally, on one line. */
export function escapeMarkdown(text: string, o: { max?: number } = {}): string {
  return oneLine(text, o.max)
    .replace(SPECIAL, (c) => `&#${c.charCodeAt(0)};`)
    // GFM's extended autolinks start at `www.` (and at `scheme:`, whose colon is a reference above)
    .replace(/\b(www)\./gi, '$1&#46;')
    .replace(LEADING, (_m, pre: string, c: string) => `${pre}&#${c.charCodeAt(0)};`);
}

/** An inline code span showing `text` literally, on one line. */
export function codeSpan(text: string, o: { table?: boolean; max?: number } = {}): string {
  let s = oneLine(text, o.max);
  if (!s) return '` `';
  if (o.table) s = s.replace(/\|/g, '\\|');
  const longest = Math.max(0, ...[...s.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  // a space on both sides is stripped by the renderer: needed when the text starts or ends with a backtick
  const pad = s.startsWith('`') || s.endsWith('`') || (s.startsWith(' ') && s.endsWith(' ')) ? ' ' : '';
  return `${fence}${pad}${s}${pad}${fence}`;
}

/** an http(s) URL, re-serialised (percent-encoded: no `<`, `>`, spaces or line breaks), or undefined */
export function safeUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url.trim());
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
    if (u.username || u.password) return undefined;
    const href = u.href;
    return /[\s<>]/.test(href) ? undefined : href;
  } catch {
    return undefined;
  }
}

/** `[text](<url>)` for an http(s) URL; otherwise the text and the URL as a code span (never a link) */
export function mdLink(text: string, url: string | undefined, o: { table?: boolean } = {}): string {
  const href = safeUrl(url);
  const label = escapeMarkdown(text);
  // parentheses percent-encoded (the same URL): the destination needs no angle brackets and cannot end early
  if (href) return `[${label}](${href.replace(/\(/g, '%28').replace(/\)/g, '%29').replace(/\|/g, o.table ? '%7C' : '|')})`;
  return url ? `${label} (${codeSpan(redactUrl(url), o)})` : label;
}
