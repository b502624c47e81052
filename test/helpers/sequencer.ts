/**
 * The order in which vitest starts the test files: longest first, so that the workers stay busy to the end
 * instead of one of them starting a five-minute file when the others are nearly done.
 *
 * vitest's own sequencer orders by the durations of the last run, which it keeps in its cache
 * (node_modules/.vite/vitest); a fresh clone (CI, `make test`) has none, and then it starts the largest files
 * (in bytes) first, which are not the longest. So a file without a cached duration takes its duration from
 * LONG_FILES below (seconds, measured with the whole suite on 2 cores, fresh clone of 2026-12-07; files not listed
 * count as short).
 * Refresh the list from a run's JSON report (scripts/run-tests.mjs writes one) when a file's time changes a lot.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export const LONG_FILES: Record<string, number> = {
  // the entries marked (*) were cut on 2026-12-07 (wip2/suite): the old suite figure scaled by the measured alone
  // before/after ratio (interleaved pairs, 1 worker), so that they stay on the scale of the other entries; alone
  // x 1.3 would rank them below files that are shorter in the suite (for these files the suite took 2.5 to 3 times
  // their alone time on the last run)
  'test/templates/gitlab-seed-flow.test.ts': 333, // (*) alone 136 s -> 128 s
  'test/security/writeback.test.ts': 167, // (*) alone 70 s -> 54 s
  'test/bump/bump.test.ts': 156, // (*) alone 82 s -> 70 s
  'test/templates/readme-pipeline.test.ts': 106, // (*) alone 44 s -> 37 s
  'test/templates/scenarios.test.ts': 76, // (*) alone 47 s -> 38 s
  'test/argocd/rollback.test.ts': 72,
  'test/argocd/wait.test.ts': 68, // (*) alone 28 s -> 24 s
  'test/promote/mr.test.ts': 70,
  'test/bump/concurrency.test.ts': 69,
  'test/promote/push.test.ts': 62,
  'test/image/runner.test.ts': 60,
  'test/promote/failures.test.ts': 57,
  'test/argocd/transport.test.ts': 53,
  'test/gitlab/gate-hostile.test.ts': 48,
  'test/preview/preview.test.ts': 45,
  // the audit files of 2026-12-07 (ninth session), as measured in the whole suite of that day's fresh clones
  'test/security/hostile-audit.test.ts': 36,
  'test/security/leak-audit.test.ts': 23,
  'test/security/failure-audit.test.ts': 19,
  'test/security/promote-audit.test.ts': 90,
  'test/security/verify-audit.test.ts': 18,
  // the server lock's files (tenth session), as measured in that day's whole suite from a fresh clone
  'test/security/server-lock-audit.test.ts': 51,
  'test/bump/server-lock.test.ts': 40, // 53 s with 6 writers at once; now 4
  'test/bump/api.test.ts': 45, // (*) alone 33 s -> 18 s
  'test/templates/gitlab-model.test.ts': 41,
  'test/review/review.test.ts': 40,
  'test/bump/guard-provenance.test.ts': 40,
  'test/argocd/push.test.ts': 39, // (*) alone 22 s -> 19 s
  'test/review/pipeline.test.ts': 36, // (*) alone 21 s -> 20 s
  'test/argocd/fleet.test.ts': 38,
  // measured alone (28 s); about 1.3x that in the suite
  'test/bump/lock.test.ts': 36,
  'test/templates/gitlab-ci-local.test.ts': 33,
  'test/bump/credentials.test.ts': 30,
  'test/preview/hostile.test.ts': 28,
  'test/core/bundle.test.ts': 28,
  'test/image/build.test.ts': 27,
  'test/gitlab/mr.test.ts': 27,
  'test/promote/api.test.ts': 25,
  'test/gitlab/gate.test.ts': 22,
  'test/argocd/double.test.ts': 22,
  'test/templates/gitlab-merge-methods.test.ts': 22,
  'test/image/faults.test.ts': 22,
  'test/security/outside.test.ts': 21,
  'test/bump/push-faults.test.ts': 21, // (*) alone 28 s -> 16 s
};

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    const root = this.ctx.config.root;
    const seconds = (f: TestSpecification): number => {
      const path = relative(root, f.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${f.project.name}:${path}`);
      if (cached?.failed) return Number.MAX_SAFE_INTEGER; // as vitest does: what failed last time runs first
      return cached ? cached.duration / 1000 : (LONG_FILES[path] ?? 0);
    };
    // a stable sort: files of equal weight keep vitest's order (by size when it has no cache)
    return base
      .map((f, i) => ({ f, i, s: seconds(f) }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .map((x) => x.f);
  }
}
