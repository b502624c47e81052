/** The retry backoff: full jitter in units of the shortest measured push window (docs/commands/bump.md). */
import { expect, it } from 'vitest';
import { backoffMs } from '../../src/bump/bump.js';

it('draws below window × 2^n after the n-th refusal, 2^n capped at 16, and never below zero', () => {
  expect(backoffMs(1, 300, () => 0)).toBe(0);
  expect(backoffMs(1, 300, () => 0.5)).toBe(300);
  expect(backoffMs(1, 300, () => 0.999999)).toBeLessThanOrEqual(600);
  expect(backoffMs(3, 300, () => 0.5)).toBe(1200);
  expect(backoffMs(4, 300, () => 0.5)).toBe(2400);
  expect(backoffMs(12, 300, () => 0.5)).toBe(2400);
});

it('a window measured as ~0 ms (an instant local push) still spaces retries by 50 ms units', () => {
  expect(backoffMs(2, 0, () => 0.5)).toBe(100);
});
