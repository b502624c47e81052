import type { ErrorCode } from '../core/error-codes.js';
import { fail } from '../core/errors.js';
import { ArgoErrors } from './errors.js';

/** bounds of every duration flag: below 100 ms nothing can finish; above a day a timer would be pointless (and past ~24.8 days it overflows and fires at once) */
export const MIN_DURATION_MS = 100;
export const MAX_DURATION_MS = 24 * 3_600_000;

/**
 * `30s`, `10m`, `1h`, `500ms`, `1m30s` or plain seconds (`90`, `2.5`) → milliseconds, from 100 ms to 24 h
 * (usage error otherwise: `0`, `0s`, `1ms`, `597h` are mistakes, not timeouts).
 */
export function parseDuration(text: string, flag = 'duration', o: { code?: ErrorCode; min?: number; max?: number } = {}): number {
  const ms = parseRaw(text, flag, o.code ?? ArgoErrors.CONFIG);
  const min = o.min ?? MIN_DURATION_MS;
  const max = o.max ?? MAX_DURATION_MS;
  if (!(ms >= min && ms <= max)) {
    throw fail.usage(o.code ?? ArgoErrors.CONFIG, `--${flag}: ${JSON.stringify(text)} is out of range (${formatMs(min)} to ${max / 3_600_000}h)`, { hint: 'use e.g. 30s, 10m, 1h' });
  }
  return ms;
}

function parseRaw(text: string, flag: string, code: ErrorCode): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(t))) {
    const n = Number(m[1]);
    ms += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    end = re.lastIndex;
  }
  if (!t || end !== t.length) {
    throw fail.usage(code, `--${flag}: ${JSON.stringify(text)} is not a duration`, { hint: 'use e.g. 30s, 10m, 1h, 1m30s, 500ms, or plain seconds (300)' });
  }
  return Math.round(ms);
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}
