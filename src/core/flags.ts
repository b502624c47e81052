/**
 * Checks of flag values that several commands share (bump, promote, preview). Each pushes a readable problem
 * onto `problems` instead of throwing, so that a command reports every problem of its configuration at once.
 */
import { posix } from 'node:path';

/** an integer flag within [min, max]; `def` when not given (or when invalid, with the problem recorded) */
export function intFlag(v: string | undefined, name: string, def: number, min: number, max: number, problems: string[]): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    problems.push(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return def;
  }
  return n;
}

/**
 * An overlay directory relative to the config repo root, normalised (`./a/b/` → `a/b`, backslashes as
 * slashes); undefined, with the problem recorded, when it is absolute, leaves the repo, or is the root itself.
 */
export function overlayFlag(d: string, name: string, problems: string[]): string | undefined {
  const n = posix.normalize(d.replace(/\\/g, '/'));
  const p = n.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (posix.isAbsolute(n) || p === '..' || p.startsWith('../')) {
    problems.push(`--${name} ${JSON.stringify(d)} must be relative to the config repo root and stay inside it`);
    return undefined;
  }
  if (p === '' || p === '.') {
    problems.push(`--${name} ${JSON.stringify(d)} is the repo root, not an overlay: name the overlay directory`);
    return undefined;
  }
  return p;
}
