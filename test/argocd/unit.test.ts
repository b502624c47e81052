/**
 * Pure parts of the argocd area: the deploy predicate on the lifecycle states Argo CD goes through (A.2.7),
 * durations, server/app parsing, and the contract validator itself (it must reject what the swagger
 * rejects, or the double's checks would prove nothing).
 */
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/argocd/predicate.js';
import { parseDuration } from '../../src/argocd/duration.js';
import { normalizeServer, parseAppRef, parseArgocdOpts, resolveConnection } from '../../src/argocd/config.js';
import type { Application } from '../../src/argocd/types.js';
import { validateResponse } from './contract.js';

const C = 'c'.repeat(40);
const OLD = 'a'.repeat(40);
const NEW = 'd'.repeat(40);
const T0 = '2026-01-02T03:04:00Z';
const T1 = '2026-01-02T03:04:05Z';
const T2 = '2026-01-02T03:04:09Z';

function app(p: { rev?: string; sync?: string; health?: string; op?: boolean; phase?: string; opRev?: string; finishedAt?: string | null; reconciledAt?: string; conditions?: Array<{ type: string; message: string }> }): Application {
  return {
    metadata: { name: 'web', resourceVersion: '1' },
    operation: p.op ? { sync: { revision: p.opRev ?? C } } : undefined,
    status: {
      sync: { status: p.sync ?? 'Synced', revision: p.rev ?? C },
      health: { status: p.health ?? 'Healthy' },
      operationState: p.phase
        ? { phase: p.phase, operation: { sync: { revision: p.opRev ?? C } }, syncResult: { revision: p.opRev ?? C }, startedAt: T0, ...(p.finishedAt === null ? {} : { finishedAt: p.finishedAt ?? T1 }) }
        : undefined,
      reconciledAt: p.reconciledAt ?? T2,
      conditions: p.conditions,
    },
  };
}
const ev = (a: Application, extra: Partial<Parameters<typeof evaluate>[1]> = {}) => evaluate(a, { revision: C, startedAt: Date.parse(T0), ...extra });

describe('deploy predicate', () => {
  it('stale: Healthy and Synced at the previous commit is not done', () => {
    expect(ev(app({ rev: OLD, opRev: OLD, phase: 'Succeeded' }))).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('not cccccccc') });
  });
  it('refreshed, OutOfSync at C with the old Healthy: waiting', () => {
    expect(ev(app({ sync: 'OutOfSync', opRev: OLD, phase: 'Succeeded' }))).toMatchObject({ kind: 'waiting', reason: 'sync status OutOfSync' });
  });
  it('operation requested or running: waiting', () => {
    expect(ev(app({ sync: 'OutOfSync', op: true }))).toMatchObject({ kind: 'waiting', reason: 'an operation is requested' });
    expect(ev(app({ phase: 'Running', finishedAt: null }))).toMatchObject({ kind: 'waiting', reason: 'operation Running' });
  });
  it('Succeeded but not reconciled after it: the health may be the old one, waiting', () => {
    expect(ev(app({ phase: 'Succeeded', finishedAt: T2, reconciledAt: T1 }))).toMatchObject({ kind: 'waiting', reason: 'waiting for the reconcile after the operation' });
  });
  it('reconciled, Synced, Progressing: waiting; Healthy: done', () => {
    expect(ev(app({ phase: 'Succeeded', health: 'Progressing' }))).toMatchObject({ kind: 'waiting', reason: 'health Progressing' });
    expect(ev(app({ phase: 'Succeeded' }))).toEqual({ kind: 'done', revision: C, superseded: false });
  });
  it('C changed nothing for this app: Synced at C after an older successful op is done', () => {
    expect(ev(app({ phase: 'Succeeded', opRev: OLD }))).toMatchObject({ kind: 'done' });
  });
  it('multi-source: C among status.sync.revisions', () => {
    const a = app({ phase: 'Succeeded' });
    a.status!.sync = { status: 'Synced', revisions: ['e'.repeat(40), C] };
    expect(ev(a)).toMatchObject({ kind: 'done' });
  });
  it('failed op on C: failed; on an older revision: not held against C', () => {
    expect(ev(app({ sync: 'OutOfSync', phase: 'Failed' }))).toMatchObject({ kind: 'failed', code: 'EARGOCD_SYNC_FAILED' });
    expect(ev(app({ sync: 'OutOfSync', phase: 'Failed', opRev: OLD }))).toMatchObject({ kind: 'waiting' });
  });
  it('Degraded at C after the reconcile: failed; Degraded at the old commit: waiting', () => {
    expect(ev(app({ phase: 'Succeeded', health: 'Degraded' }))).toMatchObject({ kind: 'failed', code: 'EARGOCD_DEGRADED' });
    expect(ev(app({ rev: OLD, opRev: OLD, phase: 'Succeeded', health: 'Degraded' }))).toMatchObject({ kind: 'waiting' });
  });
  it('ComparisonError at C or from a reconcile after the start: failed; an old one before the start: waiting', () => {
    const cond = [{ type: 'ComparisonError', message: 'kustomize build failed' }];
    expect(ev(app({ sync: 'Unknown', conditions: cond }))).toMatchObject({ kind: 'failed', code: 'EARGOCD_COMPARISON_ERROR' });
    expect(ev(app({ rev: OLD, sync: 'Unknown', conditions: cond, reconciledAt: '2026-01-02T03:00:00Z' }))).toMatchObject({ kind: 'waiting' });
    expect(ev(app({ rev: OLD, sync: 'Unknown', conditions: [{ type: 'InvalidSpecError', message: 'no destination' }] }))).toMatchObject({ kind: 'failed', code: 'EARGOCD_INVALID_SPEC' });
  });
  it('a descendant is accepted only when git says so', () => {
    const a = app({ rev: NEW, opRev: NEW, phase: 'Succeeded' });
    expect(ev(a)).toMatchObject({ kind: 'waiting' });
    expect(ev(a, { accepts: () => 'unknown' })).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('descends') });
    expect(ev(a, { accepts: () => 'no' })).toMatchObject({ kind: 'waiting' });
    expect(ev(a, { accepts: () => 'yes' })).toEqual({ kind: 'done', revision: NEW, superseded: true });
  });
});

describe('configuration parsing', () => {
  it('durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(() => parseDuration('10 minutes')).toThrow(/not a duration/);
    expect(() => parseDuration('')).toThrow(/not a duration/);
  });
  it('ARGOCD_SERVER forms', () => {
    expect(normalizeServer('argocd.example.com', false)).toBe('https://argocd.example.com');
    expect(normalizeServer('argocd.example.com:8443', false)).toBe('https://argocd.example.com:8443');
    expect(normalizeServer('127.0.0.1:8080', true)).toBe('http://127.0.0.1:8080');
    expect(normalizeServer('https://example.com/argocd/', false)).toBe('https://example.com/argocd');
    expect(() => normalizeServer('https://u:p@example.com', false)).toThrow(/credentials/);
    expect(() => normalizeServer('https://example.com', true)).toThrow(/--plaintext/);
  });
  it('ARGOCD_OPTS as the argocd CLI reads it; flags and ARGOCD_* win', () => {
    expect(parseArgocdOpts('--grpc-web --insecure --server-crt /ca.pem --grpc-web-root-path /argocd')).toEqual({ insecure: true, caFile: '/ca.pem', rootPath: '/argocd' });
    expect(parseArgocdOpts('--plaintext --server=argocd:8080')).toEqual({ plaintext: true, server: 'argocd:8080' });
    const c = resolveConnection({}, { ARGOCD_OPTS: '--plaintext --grpc-web-root-path argocd', ARGOCD_SERVER: 'argocd-server:80', ARGOCD_AUTH_TOKEN: 'a.b.c' });
    expect(c.baseUrl).toBe('http://argocd-server:80/argocd');
    expect(resolveConnection({ server: 'https://x.example' }, { ARGOCD_OPTS: '--server y:1', ARGOCD_AUTH_TOKEN: 'a.b.c' }).baseUrl).toBe('https://x.example');
    expect(resolveConnection({}, { ARGOCD_OPTS: '--server y:1 --insecure', ARGOCD_AUTH_TOKEN: 'a.b.c' })).toMatchObject({ baseUrl: 'https://y:1', insecure: true });
  });
  it('app names', () => {
    expect(parseAppRef('web', undefined, undefined)).toEqual({ name: 'web', namespace: undefined, project: undefined });
    expect(parseAppRef('team-a/web', 'other', 'p')).toEqual({ name: 'web', namespace: 'team-a', project: 'p' });
    expect(parseAppRef('web', 'team-b', undefined)).toMatchObject({ namespace: 'team-b' });
    expect(() => parseAppRef('a/b/c', undefined, undefined)).toThrow();
  });
});

describe('contract validator', () => {
  const rec = (schema: string, body: unknown, status = 200) => validateResponse({ method: 'GET', path: '/x', status, schema, body });
  it('accepts wire-shaped bodies and rejects wrong types, unknown fields and bad times', () => {
    expect(rec('v1alpha1Application', { metadata: { name: 'a', resourceVersion: '1' }, status: { reconciledAt: T1 } })).toEqual([]);
    expect(rec('v1alpha1Application', { metadata: { name: 1 } })).not.toEqual([]);
    expect(rec('v1alpha1Application', { status: { reconciledat: T1 } }).join()).toContain('reconciledat');
    expect(rec('v1alpha1Application', { status: { reconciledAt: 'yesterday' } })).not.toEqual([]);
    expect(rec('runtimeError', { error: 'permission denied', code: 7, message: 'permission denied' }, 403)).toEqual([]);
    expect(rec('runtimeError', { error: { message: 'x' }, code: '7' }, 403)).not.toEqual([]);
    expect(rec('v1alpha1Application', { metadata: {} }, 403).join()).toContain('error body');
    expect(rec('streamResult', { result: { type: 'ADDED', application: { metadata: { name: 'a' } } } })).toEqual([]);
    expect(rec('streamResult', { error: { grpc_code: 16, http_code: 401, message: 'no session information', http_status: 'Unauthorized' } }, 401)).toEqual([]);
    expect(rec('v1alpha1ApplicationTree', { nodes: [{ kind: 'Pod', name: 'p', images: ['x'], health: { status: 'Healthy' } }] })).toEqual([]);
    expect(rec('v1alpha1ApplicationTree', { nodes: [{ kind: 'Pod', image: 'x' }] })).not.toEqual([]);
  });
});
