// Smart-HTTP git server: Node http + `git http-backend` as CGI, with Basic auth. Runs as its own process
// (tests call git synchronously, which would block an in-process server).
// usage: node git-http-server.mjs <projectRoot> <usersJsonFile> <requestLogFile> [readOnlyUsersJsonFile]
// prints `listening <port>` on stdout when ready.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { lfsLocks } from './lfs-locks.mjs';

const [root, usersFile, logFile, readOnlyFile] = process.argv.slice(2);
const users = new Map(Object.entries(JSON.parse(readFileSync(usersFile, 'utf8'))));
// users who may clone and fetch but not push: GitLab answers their receive-pack with 403 and this text
const readOnly = new Set(readOnlyFile ? JSON.parse(readFileSync(readOnlyFile, 'utf8')) : []);
// GitLab's Git LFS locking API beside each repo (test/helpers/lfs-locks.mjs)
const lfs = lfsLocks(root);
const server = http.createServer((req, res) => {
  const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
  const [user, ...rest] = m ? Buffer.from(m[1], 'base64').toString().split(':') : [];
  if (!m || !user || users.get(user) !== rest.join(':')) {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
    return res.end('HTTP Basic: Access denied\n');
  }
  const url = new URL(req.url ?? '/', 'http://x');
  if (lfs.matches(url)) {
    // logged with the answer (before it is sent), which tests check against test/contracts/git-lfs-locks.json
    void lfs.handle(req, res, url, user, readOnly.has(user), (r) => {
      if (logFile) appendFileSync(logFile, JSON.stringify({ method: req.method, path: url.pathname, query: url.search, user, status: r.status, response: r.body }) + '\n');
    });
    return;
  }
  if (readOnly.has(user) && (url.pathname.endsWith('/git-receive-pack') || url.searchParams.get('service') === 'git-receive-pack')) {
    res.writeHead(403, { 'Content-Type': 'text/plain' });
    return res.end('You are not allowed to push code to this project.\n');
  }
  if (logFile) appendFileSync(logFile, JSON.stringify({ method: req.method, path: url.pathname, query: url.search, user }) + '\n');
  const env = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    REQUEST_METHOD: req.method,
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_USER: user,
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    GIT_HTTP_MAX_REQUEST_BUFFER: '100M',
  };
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = req.headers['git-protocol'];
  const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'inherit'] }); // its stderr: this server's log
  req.pipe(cgi.stdin);
  cgi.stdin.on('error', () => undefined);
  let head = Buffer.alloc(0);
  let done = false;
  cgi.stdout.on('data', (chunk) => {
    if (done) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const i = head.indexOf('\r\n\r\n');
    if (i < 0) return;
    done = true;
    let status = 200;
    const headers = {};
    for (const line of head.subarray(0, i).toString().split('\r\n')) {
      const j = line.indexOf(':');
      const k = line.slice(0, j).trim();
      const v = line.slice(j + 1).trim();
      if (k.toLowerCase() === 'status') status = parseInt(v, 10);
      else headers[k] = v;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(i + 4));
  });
  cgi.stdout.on('end', () => res.end());
  cgi.on('error', (e) => {
    res.writeHead(500);
    res.end(String(e));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
// the parent holds our stdin: when it dies without stopping us, stdin closes and we go too
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
