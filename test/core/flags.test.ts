/** The flag checks bump, promote and preview share (src/core/flags.ts). */
import { describe, expect, it } from 'vitest';
import { intFlag, overlayFlag } from '../../src/core/flags.js';
import { originFromCi } from '../../src/bump/message.js';

describe('shared flag checks', () => {
  it('intFlag: default when absent; a problem for empty, fractional, out-of-range or non-numeric values', () => {
    const problems: string[] = [];
    expect(intFlag(undefined, 'timeout', 300, 1, 86_400, problems)).toBe(300);
    expect(intFlag('42', 'timeout', 300, 1, 86_400, problems)).toBe(42);
    expect(problems).toEqual([]);
    for (const v of ['', ' ', '1.5', '0', '86401', 'abc', '1e20']) expect(intFlag(v, 'timeout', 300, 1, 86_400, problems)).toBe(300);
    expect(problems).toHaveLength(7);
    expect(problems[0]).toBe('--timeout must be an integer from 1 to 86400 (got "")');
  });

  it('overlayFlag: normalised relative paths; absolute, escaping and root paths refused with the flag named', () => {
    const problems: string[] = [];
    expect(overlayFlag('./a/b/', 'from', problems)).toBe('a/b');
    expect(overlayFlag('a\\b', 'dir', problems)).toBe('a/b');
    expect(overlayFlag('a/../b', 'to', problems)).toBe('b');
    expect(problems).toEqual([]);
    for (const d of ['/etc', '../x', 'a/../../x', '.', './', '', '/']) expect(overlayFlag(d, 'to', problems)).toBeUndefined();
    expect(problems).toHaveLength(7);
    expect(problems[6]).toBe('--to "/" must be relative to the config repo root and stay inside it');
    expect(problems[0]).toBe('--to "/etc" must be relative to the config repo root and stay inside it');
    expect(problems[3]).toBe('--to "." is the repo root, not an overlay: name the overlay directory');
  });

  it('originFromCi: GitLab predefined variables, empty ones unset', () => {
    expect(originFromCi({ CI_PROJECT_PATH: 'g/p', CI_COMMIT_SHA: '', CI_PIPELINE_ID: '7', CI_JOB_URL: 'https://x/-/jobs/1' })).toEqual({ project: 'g/p', commit: undefined, ref: undefined, pipelineId: '7', pipelineUrl: undefined, jobUrl: 'https://x/-/jobs/1' });
  });
});
