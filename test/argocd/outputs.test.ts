/** argocd wait's outputs: ARGOCD_URL, the dynamic environment URL the deploy components hand GitLab. */
import { describe, expect, it } from 'vitest';
import { outputsOf } from '../../src/commands/argocd-wait.js';
import type { AppOutcome } from '../../src/argocd/wait.js';

const outcome = (externalURLs?: string[]): AppOutcome =>
  ({ ref: { name: 'shovel-staging' }, app: { status: { sync: { status: 'Synced' }, health: { status: 'Healthy' }, summary: { externalURLs } } }, revision: 'abc', superseded: false, durationMs: 1000 }) as unknown as AppOutcome;

describe('argocd wait outputs', () => {
  it('ARGOCD_URL is the first http(s) external URL Argo CD reports, empty when there is none', () => {
    expect(outputsOf([outcome(['grpc://x', 'https://shovel.staging.example.com', 'http://b'])]).ARGOCD_URL).toBe('https://shovel.staging.example.com');
    expect(outputsOf([outcome()]).ARGOCD_URL).toBe('');
    // nothing that would break a dotenv line or an environment URL
    expect(outputsOf([outcome(['https://a.example.com\nX=1', 'https://a b'])]).ARGOCD_URL).toBe('');
  });
});
