/**
 * The clients' keep-alive connections (src/core/http.ts KEEP_ALIVE): reused while busy, closed by us after 2 s
 * idle, before any server closes them (Node's http server after 5 s, nginx after 75 s). A request sent on a
 * connection the server is closing at that moment fails with ECONNRESET, which a POST cannot safely retry.
 * A real Node http server with its own keep-alive counts the connections the GitLab client opens.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gitlabClient } from '../../src/gitlab/client.js';
import { resolveGitlabConfig } from '../../src/gitlab/config.js';
import { validateResponse } from './contract.js';

let server: http.Server;
let url: string;
let connections = 0;
const closedByServer: number[] = [];

// the one answer this server gives, GitLab's GET /user as the project's contract describes it (checked below)
const USER = { id: 1, username: 'gitops-bot', name: 'GitOps Bot', state: 'active', web_url: 'https://gitlab.example.com/gitops-bot' };

beforeAll(async () => {
  // a plain server, not the GitLab double: this test counts TCP connections, which the double does not expose
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(USER));
  });
  // a server that would keep an idle connection for 30 s: any close before that is the client's
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    connections++;
    const opened = Date.now();
    s.on('close', () => closedByServer.push(Date.now() - opened));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v4`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

it('its answer is GitLab\'s GET /user by the contract', () => {
  expect(validateResponse({ method: 'GET', route: 'GET /user', path: '/api/v4/user', status: 200, body: USER })).toEqual([]);
});

it('requests in a row share one connection; after 2.5 s idle the client has closed it and opens another', async () => {
  const gl = gitlabClient(resolveGitlabConfig({ CI_API_V4_URL: url, GITOPS_GITLAB_TOKEN: 'glpat-keepalive-test-0000', CI_PROJECT_ID: '1' }, {}), { attempts: 1 });
  try {
    for (let i = 0; i < 3; i++) expect((await gl.currentUser()).username).toBe('gitops-bot');
    expect(connections).toBe(1);
    await new Promise((r) => setTimeout(r, 2_500));
    // closed from our side (the server would have kept it 30 s)
    expect(closedByServer).toHaveLength(1);
    expect((await gl.currentUser()).username).toBe('gitops-bot');
    expect(connections).toBe(2);
  } finally {
    gl.close();
  }
});
