/**
 * Sync windows: when does a window that blocks an app's sync let it through?
 *
 * Argo CD answers GET /api/v1/applications/{name}/syncwindows with the project's windows that apply to the
 * app (`assignedWindows`), the ones active now (`activeWindows`) and `canSync`. A window is a cron
 * `schedule` (standard 5 fields) and a `duration` (Go syntax: 1h30m): it is active from each match of the
 * schedule for the duration (https://argo-cd.readthedocs.io/en/stable/user-guide/sync_windows/). Syncs are
 * blocked while a deny window is active, or while allow windows exist and none is active.
 *
 * The answer does not carry the window's timeZone (it lives in the AppProject), so schedules are read in
 * UTC and the message says so.
 */
export interface SyncWindow {
  kind?: string;
  schedule?: string;
  duration?: string;
  manualSync?: boolean;
}

export interface SyncWindowsAnswer {
  activeWindows?: SyncWindow[];
  assignedWindows?: SyncWindow[];
  canSync?: boolean;
}

const MINUTE = 60_000;
/** how far a search for the next opening looks (a yearly schedule still answers) */
const HORIZON_MINUTES = 366 * 24 * 60;

const NAMES: Record<string, number> = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12, sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

function field(text: string, min: number, max: number): Set<number> | undefined {
  const out = new Set<number>();
  for (const part of text.toLowerCase().split(',')) {
    const m = /^(\*|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) return undefined;
    const num = (s: string) => (s in NAMES ? NAMES[s]! : /^\d+$/.test(s) ? Number(s) : NaN);
    let lo = min;
    let hi = max;
    if (m[1] !== '*') {
      lo = num(m[2]!);
      hi = m[3] !== undefined ? num(m[3]) : m[4] !== undefined ? max : lo;
    }
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (Number.isNaN(lo) || Number.isNaN(hi) || lo < min || hi > max + (max === 6 ? 1 : 0) || step < 1) return undefined;
    for (let v = lo; v <= hi; v += step) out.add(max === 6 && v === 7 ? 0 : v);
  }
  return out;
}

/** a 5-field cron schedule (also @hourly, @daily, @weekly, @monthly, @yearly) → a matcher on UTC minutes */
export function cronMatcher(schedule: string): ((t: Date) => boolean) | undefined {
  const macros: Record<string, string> = { '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0', '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *' };
  const parts = (macros[schedule.trim()] ?? schedule).trim().split(/\s+/);
  if (parts.length !== 5) return undefined;
  const [mi, h, dom, mon, dow] = [field(parts[0]!, 0, 59), field(parts[1]!, 0, 23), field(parts[2]!, 1, 31), field(parts[3]!, 1, 12), field(parts[4]!, 0, 6)];
  if (!mi || !h || !dom || !mon || !dow) return undefined;
  const domAny = parts[2] === '*';
  const dowAny = parts[4] === '*';
  return (t) => {
    if (!mi.has(t.getUTCMinutes()) || !h.has(t.getUTCHours()) || !mon.has(t.getUTCMonth() + 1)) return false;
    // cron: when both day fields are restricted, either may match
    const d1 = dom.has(t.getUTCDate());
    const d2 = dow.has(t.getUTCDay());
    return domAny && dowAny ? true : domAny ? d2 : dowAny ? d1 : d1 || d2;
  };
}

/** Go's time.ParseDuration for the units a window uses (h, m, s) → ms */
export function goDurationMs(text: string | undefined): number | undefined {
  const t = (text ?? '').trim();
  const re = /(\d+(?:\.\d+)?)(h|m|s)/gy;
  let ms = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t))) {
    ms += Number(m[1]) * (m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? MINUTE : 1000);
    end = re.lastIndex;
  }
  return t && end === t.length ? ms : undefined;
}

/** the start of the occurrence of `w` that covers `now`, if one does */
function activeSince(w: SyncWindow, now: number): number | undefined {
  const match = w.schedule ? cronMatcher(w.schedule) : undefined;
  const dur = goDurationMs(w.duration);
  if (!match || dur === undefined) return undefined;
  const start = Math.floor(now / MINUTE) * MINUTE;
  for (let t = start; t > now - dur && start - t <= HORIZON_MINUTES * MINUTE; t -= MINUTE) if (match(new Date(t))) return t;
  return undefined;
}

function nextStart(w: SyncWindow, now: number): number | undefined {
  const match = w.schedule ? cronMatcher(w.schedule) : undefined;
  if (!match) return undefined;
  const start = Math.ceil(now / MINUTE) * MINUTE;
  for (let i = 0; i <= HORIZON_MINUTES; i++) if (match(new Date(start + i * MINUTE))) return start + i * MINUTE;
  return undefined;
}

export interface Blocking {
  /** the windows that hold the sync */
  windows: SyncWindow[];
  /** when syncing is allowed again (ms since epoch), when it can be computed */
  opensAt?: number;
}

/**
 * Why syncing is blocked now and until when: the latest end among the active deny windows; with no active
 * deny window, the next start among the allow windows. (A deny window that starts again before another
 * ends is not chased: the time is when the windows active now have ended.)
 */
export function blocking(a: SyncWindowsAnswer, now = Date.now()): Blocking {
  const deny = (a.activeWindows ?? []).filter((w) => w.kind === 'deny');
  if (deny.length) {
    let opensAt: number | undefined;
    for (const w of deny) {
      const since = activeSince(w, now);
      const dur = goDurationMs(w.duration);
      if (since === undefined || dur === undefined) return { windows: deny };
      opensAt = Math.max(opensAt ?? 0, since + dur);
    }
    return { windows: deny, opensAt };
  }
  const allow = (a.assignedWindows ?? []).filter((w) => w.kind === 'allow');
  const starts = allow.map((w) => nextStart(w, now)).filter((t): t is number => t !== undefined);
  return { windows: allow, opensAt: starts.length ? Math.min(...starts) : undefined };
}

export function describeWindow(w: SyncWindow): string {
  return `${w.kind ?? '?'} window "${w.schedule ?? '?'}" for ${w.duration ?? '?'}${w.manualSync ? ' (manual syncs allowed)' : ''}`;
}
