import { fail } from '../core/errors.js';
import { ArgoErrors } from './errors.js';

/** `30s`, `10m`, `1h`, `500ms`, `1m30s` or plain seconds (`90`, `2.5`) → milliseconds. */
export function parseDuration(text: string, flag = 'duration'): number {
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
    throw fail.usage(ArgoErrors.CONFIG, `--${flag}: ${JSON.stringify(text)} is not a duration`, { hint: 'use e.g. 30s, 10m, 1h, 1m30s, 500ms, or plain seconds (300)' });
  }
  return Math.round(ms);
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}
