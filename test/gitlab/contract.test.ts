/**
 * The contract file and its checker, and the double's own edges: every route the double answers is in
 * test/contracts/gitlab-api.json; the checker rejects what GitLab would not send (a misspelt field, a wrong
 * type, an unlisted status, a non-GitLab error body); job tokens are refused where GitLab refuses them;
 * project ids and URL-encoded paths address the same project.
 */
import { describe, expect, it } from 'vitest';
import { contract, validateResponse } from './contract.js';
import { PROJECT, useGitlab } from './fixture.js';

const fx = useGitlab();

const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) => {
  const r = await fetch(`${fx.gl.apiUrl}${path}`, { method, headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers }, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, body: (await r.json()) as any };
};

describe('the contract', () => {
  it('covers every route of the double and names its sources', () => {
    expect(fx.gl.routes.length).toBeGreaterThan(15);
    expect(fx.gl.routes.filter((r) => !contract.endpoints[r])).toEqual([]);
    expect(JSON.stringify(contract)).toMatch(/openapi_v2\.yaml[\s\S]*lib\/api\/merge_requests\.rb/);
  });

  it('rejects a misspelt field, a wrong type, a missing field, an unlisted status and a non-GitLab error body', () => {
    const user = { id: 1, username: 'a', name: 'A', state: 'active', avatar_url: null, web_url: 'http://x/a' };
    const ok = { method: 'GET', route: 'GET /projects/:id/merge_requests/:iid/approvals', path: '/x', status: 200, body: { user_has_approved: false, user_can_approve: true, approved: true, approved_by: [{ user, approved_at: '2026-01-01T00:00:00.000Z' }] } };
    expect(validateResponse(ok)).toEqual([]);
    expect(validateResponse({ ...ok, body: { ...ok.body, aproved: true } }).join()).toMatch(/no field aproved/);
    expect(validateResponse({ ...ok, body: { ...ok.body, approved: 'yes' } }).join()).toMatch(/approved: not a boolean/);
    expect(validateResponse({ ...ok, body: { approved: true } }).join()).toMatch(/lacks required field approved_by/);
    expect(validateResponse({ ...ok, body: { ...ok.body, approved_by: [{ user, approved_at: 'yesterday' }] } }).join()).toMatch(/ISO 8601/);
    expect(validateResponse({ ...ok, status: 409, body: { message: 'x' } }).join()).toMatch(/status 409 is not listed/);
    expect(validateResponse({ ...ok, status: 404, body: { msg: 'x' } }).join()).toMatch(/neither message nor error/);
    expect(validateResponse({ ...ok, status: 503, body: { message: '503 Service Unavailable' } })).toEqual([]);
    expect(validateResponse({ ...ok, route: 'GET /projects/:id/nope' }).join()).toMatch(/not an endpoint/);
  });
});

describe('the double', () => {
  it('addresses a project by id and by URL-encoded path; an unknown one is GitLab\'s 404', async () => {
    const h = { 'PRIVATE-TOKEN': fx.gl.token };
    const byId = await call('GET', '/projects/42', h);
    const byPath = await call('GET', `/projects/${encodeURIComponent(PROJECT)}`, h);
    expect(byId.status).toBe(200);
    expect(byPath.body).toEqual(byId.body);
    expect(byId.body.path_with_namespace).toBe(PROJECT);
    expect(await call('GET', '/projects/group%2Fnope', h)).toEqual({ status: 404, body: { message: '404 Project Not Found' } });
    expect((await call('GET', '/nope', h)).body).toEqual({ error: '404 Not Found' });
  });

  it('takes PRIVATE-TOKEN and Bearer; refuses a job token on approvals, MR writes and notes writes, but lets it list MRs', async () => {
    expect((await call('GET', '/user', { Authorization: `Bearer ${fx.gl.token}` })).body.username).toBe('gitops-bot');
    expect(await call('GET', '/user', { 'PRIVATE-TOKEN': 'glpat-nope' })).toEqual({ status: 401, body: { message: '401 Unauthorized' } });
    const job = { 'JOB-TOKEN': fx.gl.jobToken };
    expect((await call('GET', `/projects/42/merge_requests?state=opened`, job)).status).toBe(200);
    expect((await call('GET', `/projects/42/merge_requests/1/approvals`, job)).status).toBe(401);
    expect((await call('POST', `/projects/42/merge_requests`, job, { source_branch: 'a', target_branch: 'main', title: 't' })).status).toBe(401);
    const ro = await call('POST', `/projects/42/merge_requests`, { 'PRIVATE-TOKEN': fx.gl.readApiToken }, { source_branch: 'a', target_branch: 'main', title: 't' });
    expect(ro.status).toBe(403);
    expect(ro.body.error).toBe('insufficient_scope');
  });

  it('validates MR creation like GitLab: missing title (400 error), unknown branch (422), same branch (409)', async () => {
    const h = { 'PRIVATE-TOKEN': fx.gl.token };
    expect(await call('POST', '/projects/42/merge_requests', h, { source_branch: 'main', target_branch: 'main' })).toEqual({ status: 400, body: { error: 'title is missing' } });
    expect((await call('POST', '/projects/42/merge_requests', h, { source_branch: 'no-such', target_branch: 'main', title: 't' })).status).toBe(422);
    expect((await call('POST', '/projects/42/merge_requests', h, { source_branch: 'main', target_branch: 'main', title: 't' })).status).toBe(409);
  });

  it('records deployments like GitLab: all five fields required, unknown ref 400, status updated in place', async () => {
    const gl = fx.client();
    const sha = fx.gl.hooks.branchSha(PROJECT, 'main')!;
    const d = await gl.createDeployment(PROJECT, { environment: 'production', sha, ref: 'main', status: 'running' });
    expect(d).toMatchObject({ sha, ref: 'main', status: 'running', environment: 'production' });
    expect((await gl.updateDeployment(PROJECT, d.id, 'success')).status).toBe('success');
    expect(fx.gl.hooks.deployments(PROJECT)).toHaveLength(1);
    const h = { 'PRIVATE-TOKEN': fx.gl.token };
    expect(await call('POST', '/projects/42/deployments', h, { environment: 'production', sha, ref: 'main', tag: false })).toEqual({ status: 400, body: { error: 'status is missing' } });
    expect(await call('POST', '/projects/42/deployments', h, { environment: 'production', sha, ref: 'nope', tag: false, status: 'success' })).toEqual({ status: 400, body: { message: { ref: ['The branch or tag does not exist'] } } });
    expect((await call('POST', '/projects/42/deployments', { 'JOB-TOKEN': fx.gl.jobToken }, { environment: 'staging', sha, ref: 'main', tag: false, status: 'success' })).status).toBe(201);
  });

  it('paginates like GitLab (x-total, link rel=next), and the client follows every page', async () => {
    fx.gl.hooks.push(PROJECT, 'feature/chatty', { files: { 'c.txt': 'c\n' } });
    const gl = fx.client('carol');
    const mr = await gl.createMergeRequest(PROJECT, { sourceBranch: 'feature/chatty', targetBranch: 'main', title: 'chatty' });
    for (let i = 0; i < 105; i++) await gl.createNote(PROJECT, mr.iid, `comment ${i}`);
    const page = await fetch(`${fx.gl.apiUrl}/projects/42/merge_requests/${mr.iid}/notes?per_page=100`, { headers: { 'PRIVATE-TOKEN': fx.gl.token } });
    expect(page.headers.get('x-total')).toBe('105');
    expect(page.headers.get('link')).toMatch(/page=2[^>]*>; rel="next"/);
    const all = await gl.listNotes(PROJECT, mr.iid);
    expect(all).toHaveLength(105);
    expect(all[0].body).toBe('comment 0');
    expect(all[104].body).toBe('comment 104');
  });

  it('approve pins the head: a stale sha is 409; approving twice is 401', async () => {
    const sha = fx.gl.hooks.push(PROJECT, 'feature/pin', { files: { 'p.txt': 'p\n' } });
    const mr = await fx.client('alice').createMergeRequest(PROJECT, { sourceBranch: 'feature/pin', targetBranch: 'main', title: 'pin' });
    const h = { 'PRIVATE-TOKEN': fx.gl.tokenOf('bob') };
    expect((await call('POST', `/projects/42/merge_requests/${mr.iid}/approve`, h, { sha: '0'.repeat(40) })).status).toBe(409);
    const ok = await call('POST', `/projects/42/merge_requests/${mr.iid}/approve`, h, { sha });
    expect(ok.status).toBe(201);
    expect(ok.body.approved_by.map((a: any) => a.user.username)).toEqual(['bob']);
    expect((await call('POST', `/projects/42/merge_requests/${mr.iid}/approve`, h, { sha })).status).toBe(401);
    const versions = await call('GET', `/projects/42/merge_requests/${mr.iid}/versions`, h);
    expect(versions.body[0].head_commit_sha).toBe(sha);
  });
});
