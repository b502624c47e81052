/**
 * A hostile audit of `gate` and `preview`: what a Developer (or a fork MR) can do to fool them, through the CLI bundle
 * with the real git server, the GitLab double (responses checked against test/contracts/) and the real kustomize.
 * Only cases no other test covers:
 *  - gate: a tag named like the target branch does not replace the target branch's protected settings file
 *    (GitLab resolves a bare ref name tag first: https://gitlab.com/groups/gitlab-org/-/epics/11540);
 *  - preview: a render error's code block is closed on a line of its own, so the next failing overlay's error text
 *    (which the MR writes) stays code, never Markdown (a heading, or a /merge quick action GitLab would run for the
 *    token's user: https://docs.gitlab.com/user/project/quick_actions/);
 *  - gate and preview on a fork MR: the way on they suggest (run the pipeline in the parent project) says to review
 *    the changes first, which then run with the parent's variables;
 *  - preview: kustomizations are judged as kustomize reads them (field names ignoring case, merge keys, one document,
 *    each key once): a base out of the checkout cannot hide from checkTree, nor a base from the touched overlays;
 *  - preview: generator inputs cannot read the job's environment: a builtin generator config naming
 *    /proc/self/environ, a configMapGenerator file symlinked to it, an env file naming variables, an exec KRM function;
 *  - preview: a note with our marker that the MR author posted is never taken for ours (GET /user failing).
 */
import { chmodSync, existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { git, localCheckout, writeTree, type Tree } from '../helpers/config-repo.js';
import { tmp } from '../helpers/services.js';
import { PROJECT, useGitlab } from '../gitlab/fixture.js';

describe('gate: the protected settings file cannot be swapped for a tag', () => {
  const fx = useGitlab();

  it('a tag `main` pointing at a lax .gitops-ci.yml does not replace the one on branch main', async () => {
    fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': 'gate:\n  approvals: 2\n  approvers: ["@release"]\n' } });
    // alice (Developer) pushes a commit whose settings say nothing, and tags it `main` over the real git server
    const lax = fx.gl.hooks.push(PROJECT, 'alice/lax-settings', { files: { '.gitops-ci.yml': '# no gate settings\n' }, author: 'alice' });
    const clone = tmp('gci-audit-tag-');
    git(clone, ['clone', '-q', fx.git.authUrl('group/config.git'), '.']);
    git(clone, ['push', '-q', 'origin', `${lax}:refs/tags/main`]);
    try {
      // the attack is real: the bare name resolves to the tag (git's and GitLab's order)
      expect(await fx.client().fileAtRef(PROJECT, '.gitops-ci.yml', 'main')).toBe('# no gate settings\n');
      const branch = 'alice/change';
      fx.gl.hooks.push(PROJECT, branch, { files: { 'change.txt': 'a change\n' }, author: 'alice' });
      const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: branch, targetBranch: 'main', title: 'A change' });
      fx.gl.hooks.approve(PROJECT, mr.iid, 'dave');
      const r = await runCli(['gate', '--mr', String(mr.iid), '--approvals', '1'], { env: fx.env });
      expect(r.code, r.all).toBe(1);
      expect(r.stderr).toMatch(/protected setting: \.gitops-ci\.yml on main: approvals 2, approvers @release/);
      expect(r.stderr).toMatch(/ignored: @dave .*not an allowed approver/);
      expect(r.stderr).toContain('EGITLAB_NOT_APPROVED');
    } finally {
      git(clone, ['push', '-q', 'origin', ':refs/tags/main']);
      fx.gl.hooks.push(PROJECT, 'main', { files: { '.gitops-ci.yml': '# no gate settings here\n' } });
    }
  });
});

describe('gate: a whitespace-only push resets the approvals', () => {
  const fx = useGitlab();

  it('an indentation change keeps the --stable patch-id but not the approvals; a clean rebase still keeps them', async () => {
    const branch = 'alice/indent';
    fx.gl.hooks.push(PROJECT, branch, { files: { 'cfg.yaml': 'config:\n  a: 1\n  privileged: false\n' }, author: 'alice' });
    const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: branch, targetBranch: 'main', title: 'Indent' });
    fx.gl.hooks.approve(PROJECT, mr.iid, 'dave');
    const gate = () => runCli(['gate', '--mr', String(mr.iid), '--approvals', '1'], { env: fx.env });
    expect((await gate()).code).toBe(0);
    // a clean rebase: the same diff on a newer main keeps the approval
    fx.gl.hooks.push(PROJECT, 'main', { files: { 'unrelated-indent.txt': 'main moved on\n' } });
    fx.gl.hooks.push(PROJECT, branch, { files: { 'cfg.yaml': 'config:\n  a: 1\n  privileged: false\n' }, author: 'alice', onto: 'main', message: 'rebased' });
    const kept = await gate();
    expect(kept.code, kept.all).toBe(0);
    expect(kept.stderr).toMatch(/left the diff unchanged, approvals kept/);
    // `privileged` moves out of `config`: only whitespace differs, so git patch-id --stable (Gitaly without
    // verbatim_patch_id, and the double) gives the same id
    fx.gl.hooks.push(PROJECT, branch, { files: { 'cfg.yaml': 'config:\n  a: 1\nprivileged: false\n' }, author: 'alice' });
    const [v2, v1] = await fx.client().mergeRequestVersions(PROJECT, mr.iid);
    expect(v2!.patchIdSha).toBe(v1!.patchIdSha);
    const r = await gate();
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toMatch(/ignored: @dave .*before the latest push/);
  });
});

describe('forks: the way on that the gate and the preview suggest says what it hands the fork', () => {
  it('gate (exit 3) and preview (skipped) tell to review the changes before running the pipeline in the parent project', async () => {
    // https://docs.gitlab.com/ci/pipelines/merge_request_pipelines/#run-pipelines-in-the-parent-project
    const fork = { CI_API_V4_URL: 'http://127.0.0.1:9/api/v4', CI_MERGE_REQUEST_IID: '1', CI_MERGE_REQUEST_PROJECT_ID: '42', CI_MERGE_REQUEST_SOURCE_PROJECT_ID: '77', CI_PROJECT_ID: '77', CI_COMMIT_SHA: 'a'.repeat(40), CI_MERGE_REQUEST_DIFF_BASE_SHA: 'b'.repeat(40) };
    const g = await runCli(['gate', '--approvals', '1'], { env: fork });
    expect(g.code, g.all).toBe(3);
    expect(g.stderr).toContain('EGITLAB_FORK_NO_TOKEN');
    expect(g.stderr).toMatch(/after reviewing the merge request's changes \(they then run with the parent's CI\/CD variables, tokens included\)/);
    const p = await runCli(['preview'], { env: fork });
    expect(p.code, p.all).toBe(0);
    expect(p.stderr).toMatch(/skipped: .*after reviewing the MR's changes: they then run with the parent's CI\/CD variables/);
  });
});

const checkout = (tree: Tree) => localCheckout(tree, 'gci-audit-');

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  a: "1"\n`;
const OVERLAYS: Tree = {
  'overlays/a/kustomization.yaml': 'resources:\n  - cm.yaml\n',
  'overlays/a/cm.yaml': cm('a'),
  'overlays/b/kustomization.yaml': 'resources:\n  - cm.yaml\n',
  'overlays/b/cm.yaml': cm('b'),
};
const preview = (c: { dir: string }, base: string, head: string, env: NodeJS.ProcessEnv = {}) => runCli(['preview', '--dry-run', '--repo-dir', c.dir, '--base', base, '--head', head], { env });

/**
 * The lines of a Markdown text that are inside a fenced code block, by CommonMark's rules for backtick and tilde
 * fences (https://spec.commonmark.org/0.31.2/#fenced-code-blocks): an opening fence of 3+ backticks (no backtick in
 * its info string) or tildes, indented at most 3 spaces; closed by a line of the same character, at least as long,
 * nothing after it but spaces. `unclosed`: a block still open at the end.
 */
function fencedLines(md: string): { inside: Set<number>; unclosed: boolean } {
  const inside = new Set<number>();
  let open: { ch: string; len: number } | undefined;
  md.split('\n').forEach((line, i) => {
    if (!open) {
      const m = /^ {0,3}(`{3,}(?=[^`]*$)|~{3,})/.exec(line);
      if (m) open = { ch: m[1]![0]!, len: m[1]!.length };
      return;
    }
    const close = new RegExp(`^ {0,3}${open.ch === '`' ? '`' : '~'}{${open.len},} *$`).exec(line);
    if (close) open = undefined;
    else inside.add(i);
  });
  return { inside, unclosed: !!open };
}

describe('preview: the text of a render error stays code', () => {
  it('two overlays fail; the second one\'s error (MR text: a quick action, a heading) is inside a closed code block', async () => {
    const c = checkout(OVERLAYS);
    const head = c.commit({
      'overlays/a/kustomization.yaml': 'resources:\n  - cm.yaml\n  - missing.yaml\n',
      // the remote reference is quoted in the error, line breaks included
      'overlays/b/kustomization.yaml': 'resources:\n  - cm.yaml\n  - "http://x.invalid/\\n\\n/merge\\n\\n## Approved by the release managers\\n"\n',
    });
    const r = await preview(c, c.first, head);
    expect(r.code, r.all).toBe(1);
    expect(r.stderr).toContain('EPREVIEW_RENDER');
    const body = r.stdout;
    const lines = body.split('\n');
    const { inside, unclosed } = fencedLines(body);
    expect(unclosed, body).toBe(false);
    for (const text of ['/merge', '## Approved by the release managers']) {
      const at = lines.indexOf(text);
      expect(at, body).toBeGreaterThan(0);
      expect(inside.has(at), `${JSON.stringify(text)} is Markdown in:\n${body}`).toBe(true);
    }
    // the only headings outside code are ours
    const headings = lines.filter((l, i) => !inside.has(i) && /^ {0,3}#/.test(l));
    expect(headings).toEqual(['### gitops-ci preview', '#### a &#40;overlays/a&#41;: could not be rendered', '#### b &#40;overlays/b&#41;: could not be rendered']);
    // the marker and the footer are not swallowed by a block either
    expect(inside.has(lines.indexOf('<!-- gitops-ci:preview:default -->'))).toBe(false);
  });
});

describe('preview: a kustomization read as kustomize reads it', () => {
  // another checkout on the same runner, reached by `../` past the root: kustomize's load restrictor lets a base
  // (a directory) be anywhere, so checkTree is what keeps it out
  const other = tmp('gci-audit-other-');
  writeTree(other, { 'kustomization.yaml': 'resources:\n  - cm.yaml\n', 'cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata:\n  token: other-projects-value\n' });
  const up = `${'../'.repeat(16)}${other.replace(/^\//, '')}`;
  for (const [what, kust, code] of [
    ['a field name in another case (Go\'s JSON decoding ignores case)', `RESOURCES:\n  - cm.yaml\n  - ${up}\n`, 'ERENDER_OUTSIDE'],
    ['a field name with a long s (ſ folds to s)', `re\u017fources:\n  - cm.yaml\n  - ${up}\n`, 'ERENDER_OUTSIDE'],
    ['a YAML merge key', `<<: {resources: [cm.yaml, ${up}]}\n`, 'ERENDER_OUTSIDE'],
    ['a key given twice (kustomize takes the last)', `resources: [cm.yaml]\nresources: [cm.yaml, ${up}]\n`, 'ERENDER_UNCHECKED'],
    ['a second YAML document (kustomize takes the first)', `resources: [cm.yaml, ${up}]\n---\nresources: [cm.yaml]\n`, 'ERENDER_UNCHECKED'],
    ['the same field twice in two spellings', `resources: [cm.yaml]\nResources: [cm.yaml, ${up}]\n`, 'ERENDER_UNCHECKED'],
  ] as const) {
    it(`${what}: the base out of the checkout is refused before kustomize runs; nothing of it reaches the note`, async () => {
      const c = checkout(OVERLAYS);
      const head = c.commit({ 'overlays/a/kustomization.yaml': kust });
      const r = await preview(c, c.first, head);
      expect(r.code, r.all).toBe(1);
      expect(r.stdout, r.all).toContain('could not be rendered');
      expect(r.stdout).toMatch(code === 'ERENDER_OUTSIDE' ? /which leads outside the checkout/ : /cannot be checked before kustomize runs/);
      expect(r.all).not.toContain('other-projects-value');
    });
  }

  it('data keys are not fields: labels `env` and `ENV` side by side still render', async () => {
    const c = checkout(OVERLAYS);
    const head = c.commit({ 'overlays/a/kustomization.yaml': 'resources:\n  - cm.yaml\ncommonLabels:\n  env: a\n  ENV: b\n' });
    const r = await preview(c, c.first, head);
    expect(r.code, r.all).toBe(0);
    expect(r.stdout).toContain('+    ENV: b');
  });

  it('a base reached through a symlink inside the repository: a change at the link\'s target is shown under the overlay that reads it', async () => {
    const c = checkout({ ...OVERLAYS, 'overlays/a/kustomization.yaml': 'resources:\n  - base\n', 'real-base/kustomization.yaml': 'resources:\n  - cm.yaml\n', 'real-base/cm.yaml': cm('shared') });
    symlinkSync('../../real-base', join(c.dir, 'overlays/a/base'));
    git(c.dir, ['add', '-A']);
    git(c.dir, ['commit', '-q', '-m', 'link']);
    const base = git(c.dir, ['rev-parse', 'HEAD']);
    const head = c.commit({ 'real-base/cm.yaml': cm('shared').replace('"1"', '"2"') });
    const r = await preview(c, base, head);
    expect(r.code, r.all).toBe(0);
    // not `real-base` as an overlay of its own: reviewers would not see that production changes
    expect(r.stderr).toContain('overlays touched: overlays/a\n');
    expect(r.stdout).toContain('#### a &#40;overlays/a&#41;: 1 changed');
  });

  it('a base named under another spelling is in the closure: a change to it touches the overlay', async () => {
    const c = checkout({ ...OVERLAYS, 'overlays/a/kustomization.yaml': 'Resources:\n  - ../../common-base\n', 'common-base/kustomization.yaml': 'resources:\n  - cm.yaml\n', 'common-base/cm.yaml': cm('common-base') });
    const head = c.commit({ 'common-base/cm.yaml': cm('common-base').replace('"1"', '"2"') });
    const r = await preview(c, c.first, head);
    expect(r.code, r.all).toBe(0);
    expect(r.stderr).toContain('overlays touched: overlays/a');
    expect(r.stdout).toContain('+  a: "2"');
  });
});

describe('preview: generator inputs cannot read the job environment', () => {
  const SECRETS = { GITOPS_GITLAB_TOKEN: 'glpat-audit-token-0042', CUSTOM_API_KEY: 'custom-api-key-not-on-any-list' };
  const gen = (kust: string) => ({ 'overlays/a/kustomization.yaml': `resources:\n  - cm.yaml\n${kust}` });

  it('a builtin generator config naming /proc/self/environ is refused by the load restrictor', async () => {
    const c = checkout(OVERLAYS);
    const head = c.commit({ ...gen('generators:\n  - gen.yaml\n'), 'overlays/a/gen.yaml': 'apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: leak\nfiles:\n  - /proc/self/environ\n' });
    const r = await preview(c, c.first, head, SECRETS);
    expect(r.code, r.all).toBe(1);
    expect(r.stdout).toMatch(/security; file '\/proc\/self\/environ' is not in or below/);
    for (const v of Object.values(SECRETS)) expect(r.all).not.toContain(v);
  });

  it('a configMapGenerator file symlinked to /proc/self/environ is refused before kustomize runs', async () => {
    const c = checkout(OVERLAYS);
    const head = c.commit(gen('configMapGenerator:\n  - name: leak\n    files:\n      - environ\n'), (d) => symlinkSync('/proc/self/environ', join(d, 'overlays/a/environ')));
    const r = await preview(c, c.first, head, SECRETS);
    expect(r.code, r.all).toBe(1);
    expect(r.stdout).toMatch(/names environ, which leads outside the checkout/);
    for (const v of Object.values(SECRETS)) expect(r.all).not.toContain(v);
  });

  it('an env file naming variables without values renders them empty (kustomize 5 does not read its environment)', async () => {
    const c = checkout(OVERLAYS);
    const head = c.commit({ ...gen('configMapGenerator:\n  - name: leak\n    envs:\n      - leak.env\n'), 'overlays/a/leak.env': `${Object.keys(SECRETS).join('\n')}\nHOME\n` });
    const r = await preview(c, c.first, head, SECRETS);
    expect(r.code, r.all).toBe(0);
    expect(r.stdout).toContain('+  CUSTOM_API_KEY: ""');
    expect(r.stdout).toContain('+  HOME: ""');
    for (const v of Object.values(SECRETS)) expect(r.all).not.toContain(v);
  });

  it('an exec KRM function in generators never runs', async () => {
    const c = checkout(OVERLAYS);
    const ran = join(tmp('gci-audit-exec-'), 'ran');
    const head = c.commit(
      {
        ...gen('generators:\n  - fn.yaml\n'),
        'overlays/a/fn.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fn\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ./fn.sh\n',
        'overlays/a/fn.sh': `#!/bin/sh\ntouch ${ran}\nenv\n`,
      },
      (d) => chmodSync(join(d, 'overlays/a/fn.sh'), 0o755),
    );
    const r = await preview(c, c.first, head, SECRETS);
    expect(r.code, r.all).toBe(1);
    expect(r.stdout).toMatch(/external plugins disabled/);
    expect(existsSync(ran)).toBe(false);
    for (const v of Object.values(SECRETS)) expect(r.all).not.toContain(v);
  });
});

describe('preview: a note with our marker that someone else wrote is never taken for ours', () => {
  const fx = useGitlab();

  it('alice pre-posts the exact preview body; with GET /user failing, the preview fails (75) instead of calling her note its own', async () => {
    const c = checkout(OVERLAYS);
    const head = c.commit({ 'overlays/a/cm.yaml': cm('a').replace('"1"', '"2"') });
    const branch = 'alice/notes';
    fx.gl.hooks.push(PROJECT, branch, { files: { 'n.txt': 'n\n' }, author: 'alice' });
    const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: branch, targetBranch: 'main', title: 'Notes' });
    // the body is deterministic: the author can compute it from the MR and post it first
    const dry = await preview(c, c.first, head);
    expect(dry.code, dry.all).toBe(0);
    const hers = await fx.client('alice').createNote(PROJECT, mr.iid, dry.stdout.replace(/\n$/, ''));
    const run = (env: NodeJS.ProcessEnv = {}) => runCli(['preview', '--mr', String(mr.iid), '--repo-dir', c.dir, '--base', c.first, '--head', head], { env: { ...fx.env, GITOPS_RETRY_ATTEMPTS: '1', ...env } });

    fx.gl.hooks.failNext({ method: 'GET', route: 'GET /user', status: 503 });
    const r = await run();
    expect(r.code, r.all).toBe(75);
    expect(r.stderr).toContain('EGITLAB_UNAVAILABLE');
    expect(r.stderr).not.toContain(`note ${hers.id}`);
    // the retry: a note of the token's user, hers untouched
    const again = await run();
    expect(again.code, again.all).toBe(0);
    const notes = fx.gl.hooks.notes(PROJECT, mr.iid) as Array<{ id: number; body: string; author: { username: string } }>;
    const marked = notes.filter((n) => n.body.includes('<!-- gitops-ci:preview:default -->'));
    expect(marked.map((n) => n.author.username).sort()).toEqual(['alice', 'gitops-bot']);
    expect(again.stderr).toMatch(new RegExp(`posted the preview note (?!${hers.id}\\b)\\d+`));
  });
});
