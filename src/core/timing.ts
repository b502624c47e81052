/** Phase timers for the `… timing {json}` lines commands print with --verbose. */

/** a lap timer: each call returns the milliseconds since the previous call (or since it was made), rounded */
export function lapTimer(): () => number {
  let mark = performance.now();
  return () => {
    const now = performance.now();
    const d = Math.round(now - mark);
    mark = now;
    return d;
  };
}
