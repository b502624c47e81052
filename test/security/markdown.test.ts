/**
 * Nothing from a commit, a manifest or an API answer injects Markdown (issue 18, Deliver 3): forged trailers
 * put links and images into the promotion MR's description that approvers read. src/core/markdown.ts escapes
 * prose (escapeMarkdown), makes code spans that nothing can close early (codeSpan) and links only to http(s)
 * URLs (mdLink); promote's MR description and superseded note use them for every value they did not write.
 *
 * No Markdown renderer is a dependency of the project, so the checks are on the text itself, by the
 * CommonMark/GFM rules the functions rely on: a punctuation character that is not backslash-escaped, a `<`, a
 * line break, a code span whose fence occurs inside it, a table row with more cells than columns.
 */
import { describe, expect, it } from 'vitest';
import { codeSpan, escapeMarkdown, mdLink } from '../../src/core/markdown.js';
import { mrDescription } from '../../src/promote/promote.js';

const HOSTILE = [
  '# Approved by security',
  '## heading\n### another',
  '[click here](https://evil.example/login)',
  '![logo](https://evil.example/pixel.png)',
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  '<details open><summary>ok</summary>',
  '@all please merge',
  'fixes #1 and !2 with ~label and %milestone and $snippet',
  'a | b | c',
  '`code` and ``more``',
  '**bold** _it_ ~~gone~~',
  'line one\n\n| a | b |\n|---|---|',
  'safe\u202etxt.exe',
  'https://evil.example/auto-link',
  'www.evil.example/auto-link',
  '[ref]: https://evil.example',
  '\\[escaped\\]',
];

/**
 * characters with a Markdown, HTML or GitLab-reference meaning that appear as themselves, not as a numeric character
 * reference (`&#35;`), which CommonMark and HTML both render as the literal character; `-`, `+`, `.`, `=`, `)` only
 * where they could start a block (the beginning of the line)
 */
function unescaped(out: string): string[] {
  const bad: string[] = [];
  const text = out.replace(/&#\d+;/g, '\u0000');
  for (let i = 0; i < text.length; i++) if (/[\\`*_{}[\]()#!|~<>&"'@$%^:]/.test(text[i]!)) bad.push(`${text[i]} at ${i}`);
  const lead = /^\s*\d*[-+.=)]/.exec(text);
  if (lead) bad.push(`${lead[0]} starts a block`);
  return bad;
}

/** the text inside a code span, checking that the fence occurs nowhere inside it */
function spanContent(out: string): string {
  const m = /^(`+)([\s\S]*)\1$/.exec(out);
  expect(m, out).toBeTruthy();
  const [, fence, inner] = m!;
  for (const run of inner!.match(/`+/g) ?? []) expect(run.length, out).not.toBe(fence!.length);
  return inner!.startsWith(' ') && inner!.endsWith(' ') && inner!.trim() ? inner!.slice(1, -1) : inner!;
}

describe('escapeMarkdown', () => {
  for (const text of HOSTILE) {
    it(`shows ${JSON.stringify(text)} as text`, () => {
      const out = escapeMarkdown(text);
      expect(out).not.toMatch(/[\r\n\u2028\u2029\u202e]/);
      expect(out).not.toMatch(/[<>]/);
      expect(unescaped(out)).toEqual([]);
    });
  }

  it('leaves nothing GFM would autolink: no `scheme:`, no `www.`', () => {
    expect(escapeMarkdown('see https://evil.example and www.evil.example')).not.toMatch(/https?:|www\./i);
  });

  it('keeps plain words readable', () => {
    expect(escapeMarkdown('staging')).toBe('staging');
    expect(escapeMarkdown('shovel app 1')).toBe('shovel app 1');
  });
});

describe('codeSpan', () => {
  for (const text of [...HOSTILE, '`', '``', 'a`', '`a', ' both ', 'x'.repeat(600)]) {
    it(`holds ${JSON.stringify(text.slice(0, 40))} in one span`, () => {
      const out = codeSpan(text);
      expect(out).not.toMatch(/[\r\n]/);
      const inner = spanContent(out);
      const expected = text.replace(/[\r\n\t\u2028\u2029\u0085]+/g, ' ').replace(/[\u202e]/g, '');
      expect(inner).toBe(expected.length > 500 ? `${expected.slice(0, 500)}…` : expected);
    });
  }

  it('in a table cell, a pipe cannot split the row', () => {
    const out = codeSpan('a | b', { table: true });
    expect(out).toBe('`a \\| b`');
  });
});

describe('mdLink', () => {
  it('links only http(s) URLs without credentials; anything else is shown, not linked', () => {
    expect(mdLink('this job', 'https://gitlab.example.com/g/p/-/jobs/1')).toBe('[this job](https://gitlab.example.com/g/p/-/jobs/1)');
    for (const bad of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'https://user:pw@evil.example/', 'not a url', 'vbscript:x']) {
      const out = mdLink('pipeline', bad);
      expect(out, bad).not.toMatch(/\]\(/);
      expect(out).not.toContain('pw@');
    }
  });

  it('a URL cannot end the link early or add a title: parentheses, spaces, quotes and brackets are encoded', () => {
    const out = mdLink('x', 'https://gitlab.example.com/a) ![img](https://evil.example/p.png "t")');
    const dest = /^\[x\]\((.*)\)$/.exec(out)?.[1];
    expect(dest, out).toBeTruthy();
    expect(dest).not.toMatch(/[\s()<>"]/);
  });

  it('escapes the link text', () => {
    // the text's brackets, parentheses, colon and `!` as numeric character references: one link, to GitLab
    expect(mdLink('pipeline ](https://evil.example) ![x', 'https://gitlab.example.com/p')).toBe('[pipeline &#93;&#40;https&#58;//evil.example&#41; &#33;&#91;x](https://gitlab.example.com/p)');
  });
});

describe("the promotion MR's description, from forged trailers and a hostile manifest", () => {
  const image = 'registry.example.com/app`|x';
  const description = mrDescription({
    cfg: {
      from: '.kubernetes/overlays/staging',
      to: '.kubernetes/overlays/production',
      branch: 'main',
      source: {
        commit: 'a'.repeat(40),
        head: 'a'.repeat(40),
        file: '.kubernetes/overlays/staging/kustomization.yaml',
        kind: 'kustomization',
        images: [
          {
            name: image,
            ref: { name: image, digest: `sha256:${'b'.repeat(64)}`, line: 1 },
            provenance: {
              commit: 'c'.repeat(40),
              project: '# Heading\n<script>alert(1)</script>',
              sourceCommit: '[x](https://evil.example)',
              pipelineId: '1](https://evil.example) ![pixel](https://evil.example/p.png) <img src=x>',
              pipelineUrl: 'javascript:alert(document.cookie)',
              verified: 'pipeline @all ![x](https://evil.example/q.png)',
            },
          },
        ],
      },
      pinned: [{ name: image, repo: image, digest: `sha256:${'b'.repeat(64)}`, from: 'tag | with ` pipes\n## and a heading', how: 'resolved', pin: { name: image, digest: `sha256:${'b'.repeat(64)}` }, expr: '' }],
      fromApp: 'app</summary><img src=x>',
      job: { jobUrl: 'https://gitlab.example.com/g/config/-/jobs/7', pipelineUrl: 'https://gitlab.example.com/g/config/-/pipelines/9', pipelineId: '9' },
      verifyJob: 'javascript:alert(2)',
    },
    changes: [{ overlay: '.kubernetes/overlays/production', env: 'production', image, before: `${image}:old\n# injected`, after: `${image}@sha256:${'b'.repeat(64)}` }],
    sections: [],
  });

  it('links nowhere but GitLab, shows no image and carries no HTML of theirs', () => {
    // what is inside code spans is literal text: the rest is what a renderer would read as Markdown
    const outside = description.replace(/(`+)[\s\S]*?(?<!`)\1(?!`)/g, '');
    // their URLs show as text: no `scheme:` a renderer could turn into an autolink (the colon is a reference)
    expect(outside).not.toMatch(/https?:\/\/evil|www\.evil/);
    const links = [...outside.matchAll(/(?<!\\)\]\(([^)]*)\)/g)].map((m) => m[1]);
    for (const l of links) expect(l, description).toMatch(/^https:\/\/gitlab\.example\.com\//);
    expect(outside).not.toMatch(/(?<!\\)!\[/);
    expect(outside).not.toMatch(/<(img|script|details)[\s>]/i);
    expect(description).not.toContain('javascript:alert(document.cookie)](');
  });

  it('adds no heading and no line of theirs: every line is one we wrote', () => {
    const headings = description.split('\n').filter((l) => /^\s{0,3}#/.test(l));
    expect(headings).toEqual(['### Rendered diff of production']);
  });

  it('keeps the table four columns wide', () => {
    const rows = description.split('\n').filter((l) => l.startsWith('| '));
    expect(rows.length).toBe(2);
    for (const row of rows) {
      // pipes that split cells: not escaped (\|) ones
      const cells = row.split(/(?<!\\)\|/).length - 2;
      expect(cells, row).toBe(4);
    }
  });

  it('a GitLab reference in their text is escaped', () => {
    expect(description).not.toMatch(/(?<![\\`])@all/);
  });
});
