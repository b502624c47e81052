/**
 * Running git for one remote, with credentials that never reach a command line, the output or the disk
 * of the clone.
 *
 * Why child_process and not simple-git: we need the whole child environment in our hands (credential
 * helper through GIT_CONFIG_COUNT/KEY/VALUE, GIT_SSH_COMMAND, LC_ALL=C, scrubbing GIT_TRACE*), which
 * simple-git refuses without its "unsafe" switches, and we need git's raw stderr to classify failures
 * and to mask it before anyone sees it. A 100-line runner does both plainly.
 *
 * - HTTPS: a credential helper whose text names only environment variables
 *   (`!f() { ... "$GITOPS_CI_GIT_PASSWORD" ...}`); the token lives in the child's environment. Any
 *   helper from the user's git config is reset first, so no `store` helper writes the token to disk.
 * - SSH: the deploy key goes to a 0600 file in a 0700 temp dir, removed by close(); host keys come from
 *   SSH_KNOWN_HOSTS; StrictHostKeyChecking=yes unless accept-new was asked for.
 * - Always: GIT_TERMINAL_PROMPT=0, no askpass, LC_ALL=C (stable messages to classify), GIT_TRACE* and
 *   GIT_CURL_VERBOSE removed (they would print Authorization headers), secret variables removed.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail } from '../core/errors.js';
import { killGroup, removeTempDir, trackChild, trackTempDir } from '../core/cleanup.js';
import { addSecret, mask } from '../core/mask.js';
import { SECRET_VARS } from '../core/secrets.js';
import type { Logger } from '../core/log.js';
import { classifyGitFailure, type GitOp } from './errors.js';
import type { Remote } from './url.js';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SessionOptions {
  env: NodeJS.ProcessEnv;
  log?: Logger;
  /** trust an unknown ssh host key on first use (StrictHostKeyChecking=accept-new) */
  sshAcceptNew?: boolean;
  /** absolute deadline (Date.now() ms) after which git is stopped and a timeout error thrown */
  deadline?: number;
  /** extra git config for every command (key, value) */
  config?: Array<[string, string]>;
  /**
   * the URL came from a server's answer (an Argo CD app's repoURL), not from the pipeline: GITOPS_GIT_TOKEN and
   * CI_JOB_TOKEN are given only when it is on the config repo's host (isConfigRepoHost)
   */
  fromServer?: boolean;
}

export interface Credentials {
  user: string;
  password: string;
  /** where they came from, for messages: never the value */
  source: string;
}

/**
 * The credential helper: answers `get` only for the remote's own host (with its port) and scheme, or the
 * same host upgraded from http to https. git asks again after following a redirect (http.followRedirects
 * is `initial` by default), with the new host: a config repo URL that redirects elsewhere must not hand
 * the token to whoever it points at. Everything it compares comes from the environment, nothing from argv.
 */
const HELPER =
  '!f() { test "$1" = get || exit 0; p=; h=; while IFS= read -r l; do case "$l" in protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; esac; done; ' +
  'test "$h" = "$GITOPS_CI_GIT_HOST" || exit 0; test "$p" = "$GITOPS_CI_GIT_PROTOCOL" || test "$p" = https || exit 0; ' +
  'printf "username=%s\\npassword=%s\\n" "$GITOPS_CI_GIT_USERNAME" "$GITOPS_CI_GIT_PASSWORD"; }; f';
const DROP = /^(GIT_TRACE.*|GIT_CURL_VERBOSE|GIT_ASKPASS|SSH_ASKPASS|GIT_DIR|GIT_WORK_TREE|GIT_INDEX_FILE|GIT_OBJECT_DIRECTORY|GIT_ALTERNATE_OBJECT_DIRECTORIES|GIT_NAMESPACE|GIT_PREFIX|GIT_COMMON_DIR|GIT_CONFIG_COUNT|GIT_CONFIG_KEY_\d+|GIT_CONFIG_VALUE_\d+|GIT_CONFIG_PARAMETERS|GITOPS_CI_GIT_USERNAME|GITOPS_CI_GIT_PASSWORD|GITOPS_CI_GIT_HOST|GITOPS_CI_GIT_PROTOCOL)$/;

/**
 * Which credentials go with an https remote. Order: credentials in the URL, GITOPS_GIT_TOKEN (user
 * GITOPS_GIT_USER, else the URL's user, else oauth2), CI_JOB_TOKEN (user gitlab-ci-token; only sent to
 * the GitLab that issued it, CI_SERVER_HOST, when that is known).
 */
export function httpCredentials(remote: Remote, env: NodeJS.ProcessEnv, o: { fromServer?: boolean } = {}): Credentials | undefined {
  if (remote.kind !== 'http') return undefined;
  if (remote.password) return { user: remote.user ?? 'oauth2', password: remote.password, source: 'the URL' };
  if (o.fromServer && !isConfigRepoHost(remote, env)) return undefined;
  if (env.GITOPS_GIT_TOKEN) {
    const user = env.GITOPS_GIT_USER || remote.user || 'oauth2';
    addSecret(env.GITOPS_GIT_TOKEN, { users: [user] });
    return { user, password: env.GITOPS_GIT_TOKEN, source: 'GITOPS_GIT_TOKEN' };
  }
  if (env.CI_JOB_TOKEN) {
    const host = (remote.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const issuer = (env.CI_SERVER_HOST ?? '').toLowerCase();
    if (!issuer || issuer === host) {
      addSecret(env.CI_JOB_TOKEN, { users: ['gitlab-ci-token'] });
      return { user: 'gitlab-ci-token', password: env.CI_JOB_TOKEN, source: 'CI_JOB_TOKEN' };
    }
  }
  return undefined;
}

/**
 * Whether an http remote is on the host the pipeline named for its config repo: the host (with its port) of
 * GITOPS_CONFIG_REPO or CI_REPOSITORY_URL, or CI_SERVER_HOST (the GitLab of the job). For a URL that came from a
 * server's answer (an Argo CD app's repoURL) rather than from the pipeline: our tokens go there only when it is
 * one of these, never to whatever host the answer names.
 */
export function isConfigRepoHost(remote: Remote, env: NodeJS.ProcessEnv): boolean {
  if (remote.kind !== 'http' || !remote.host) return false;
  const host = remote.host.toLowerCase();
  for (const v of [env.GITOPS_CONFIG_REPO, env.CI_REPOSITORY_URL]) {
    try {
      if (v && /^https?:\/\//i.test(v.trim()) && new URL(v.trim()).host.toLowerCase() === host) return true;
    } catch {
      /* not a URL: names no host */
    }
  }
  const server = (env.CI_SERVER_HOST ?? '').toLowerCase();
  return !!server && server === host.replace(/:\d+$/, '');
}

/** A value that is either the content itself or (GitLab "file" variables) the path of a file holding it. */
function contentOrFile(v: string, looksLikeContent: (s: string) => boolean): string {
  if (looksLikeContent(v)) return v;
  if (!v.includes('\n') && v.length < 4096 && existsSync(v)) return readFileSync(v, 'utf8');
  return v;
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export class GitSession {
  readonly remote: Remote;
  readonly credentials?: Credentials;
  private readonly env: NodeJS.ProcessEnv;
  private readonly log?: Logger;
  private readonly tmpDir?: string;
  deadline?: number;

  private constructor(remote: Remote, env: NodeJS.ProcessEnv, o: { log?: Logger; tmpDir?: string; credentials?: Credentials; deadline?: number }) {
    this.remote = remote;
    this.env = env;
    this.log = o.log;
    this.tmpDir = o.tmpDir;
    this.credentials = o.credentials;
    this.deadline = o.deadline;
  }

  static async open(remote: Remote, o: SessionOptions): Promise<GitSession> {
    const env: NodeJS.ProcessEnv = {};
    const secretNames = new Set(SECRET_VARS);
    for (const [k, v] of Object.entries(o.env)) if (v !== undefined && !DROP.test(k) && !secretNames.has(k)) env[k] = v;
    Object.assign(env, { GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', LC_ALL: 'C', LANG: 'C', LANGUAGE: 'C', GIT_HTTP_LOW_SPEED_LIMIT: env.GIT_HTTP_LOW_SPEED_LIMIT ?? '1000', GIT_HTTP_LOW_SPEED_TIME: env.GIT_HTTP_LOW_SPEED_TIME ?? '60' });
    const config: Array<[string, string]> = [
      // no helper from the user's config may answer for us, nor store our token
      ['credential.helper', ''],
      // local (file://) remotes: let upload-pack honour --filter, as GitLab does
      ['uploadpack.allowFilter', 'true'],
      ['advice.detachedHead', 'false'],
      ...(o.config ?? []),
    ];
    const credentials = httpCredentials(remote, o.env, { fromServer: o.fromServer });
    if (credentials) {
      addSecret(credentials.password, { users: [credentials.user] });
      config.push(['credential.helper', HELPER]);
      env.GITOPS_CI_GIT_USERNAME = credentials.user;
      env.GITOPS_CI_GIT_PASSWORD = credentials.password;
      // what git will name in its request: host[:port] as in the URL git is given (no default port)
      const u = new URL(remote.url);
      env.GITOPS_CI_GIT_HOST = u.host;
      env.GITOPS_CI_GIT_PROTOCOL = u.protocol.replace(/:$/, '');
    }
    let tmpDir: string | undefined;
    if (remote.kind === 'ssh') {
      tmpDir = await mkdtemp(join(tmpdir(), 'gitops-ci-ssh-'));
      trackTempDir(tmpDir); // removed on SIGTERM/SIGINT too: the deploy key never outlives a cancelled job
      await chmod(tmpDir, 0o700);
      const keyVar = o.env.GITOPS_SSH_PRIVATE_KEY ? 'GITOPS_SSH_PRIVATE_KEY' : 'SSH_PRIVATE_KEY';
      const keyRaw = o.env[keyVar];
      const parts = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4'];
      try {
        if (keyRaw) {
          addSecret(keyRaw);
          let key = contentOrFile(keyRaw, (s) => s.includes('-----BEGIN'));
          addSecret(key);
          key = key.replace(/\r\n/g, '\n').trim() + '\n';
          if (!key.includes('-----BEGIN') || !key.includes('PRIVATE KEY-----')) {
            throw fail.usage('EGIT_SSH_KEY', `${keyVar} does not hold an OpenSSH/PEM private key`, { hint: `put the private key text (or, as a GitLab file variable, its path) in ${keyVar}` });
          }
          const keyFile = join(tmpDir, 'deploy_key');
          await writeFile(keyFile, key, { mode: 0o600 });
          parts.push('-i', shq(keyFile), '-o', 'IdentitiesOnly=yes');
        }
        const khVar = o.env.GITOPS_SSH_KNOWN_HOSTS ? 'GITOPS_SSH_KNOWN_HOSTS' : 'SSH_KNOWN_HOSTS';
        const kh = o.env[khVar];
        const khFile = join(tmpDir, 'known_hosts');
        await writeFile(khFile, kh ? contentOrFile(kh, (s) => /\s(ssh-|ecdsa-|sk-)/.test(s)).replace(/\r\n/g, '\n').trim() + '\n' : '', { mode: 0o600 });
        // with SSH_KNOWN_HOSTS: only those keys. Without: ours first (accept-new writes there, never into
        // the user's file), then the user's own known_hosts.
        // one shell word (single-quoted: HOME and TMPDIR are never expanded by the shell that runs
        // GIT_SSH_COMMAND), each file double-quoted for ssh, which splits the option's value itself
        const files = (kh ? [khFile] : [khFile, join(o.env.HOME ?? '/root', '.ssh', 'known_hosts')]).map((f) => `"${f}"`).join(' ');
        parts.push('-o', shq(`UserKnownHostsFile=${files}`), '-o', `StrictHostKeyChecking=${o.sshAcceptNew ? 'accept-new' : 'yes'}`);
      } catch (e) {
        removeTempDir(tmpDir);
        throw e;
      }
      env.GIT_SSH_COMMAND = parts.join(' ');
      env.GIT_SSH_VARIANT = 'ssh';
      delete env.GIT_SSH;
    }
    env.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    return new GitSession(remote, env, { log: o.log, tmpDir, credentials, deadline: o.deadline });
  }

  /** remove the key file and anything else the session wrote */
  async close(): Promise<void> {
    if (this.tmpDir) removeTempDir(this.tmpDir);
  }

  /**
   * run git; resolves with its result whatever the exit code (unless the deadline passes).
   *
   * Each git runs in its own process group. At the deadline the whole group is stopped: git's helpers
   * (git-remote-http, send-pack, ssh) are not git's to stop, and an orphaned send-pack may still deliver a
   * push we then report as not made. `deadline` overrides the session's for this one call (a short look
   * at the remote after the session's time is up).
   */
  run(args: string[], o: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; deadline?: number } = {}): Promise<GitResult> {
    this.log?.debug(`git ${args.join(' ')}`);
    return new Promise((resolve, reject) => {
      // its own process group: on a timeout or a cancel, git and what it started (ssh, git-remote-http, which
      // holds the password in its environment) are stopped together (src/core/cleanup.ts)
      const p = spawn('git', args, { cwd: o.cwd, env: { ...this.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      trackChild(p);
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const deadline = o.deadline ?? this.deadline;
      const left = deadline ? deadline - Date.now() : undefined;
      const t =
        left !== undefined
          ? setTimeout(
              () => {
                timedOut = true;
                // the whole group: git and its helpers (git-remote-http, ssh, an orphaned send-pack), which
                // may otherwise hold our pipes open and the password in their environment after git is gone
                killGroup(p, 'SIGTERM');
                setTimeout(() => killGroup(p, 'SIGKILL'), 2000).unref();
                p.stdout.destroy();
                p.stderr.destroy();
                finish(null);
              },
              Math.max(left, 1),
            )
          : undefined;
      p.on('error', (e) => {
        if (t) clearTimeout(t);
        reject(fail.failed('EGIT_FAILED', `cannot run git: ${e.message}`, { hint: 'install git ≥ 2.25 in the job image' }));
      });
      let done = false;
      const finish = (code: number | null) => {
        if (done) return;
        done = true;
        if (t) clearTimeout(t);
        if (stderr.trim()) this.log?.debug(mask(stderr.trimEnd()));
        if (timedOut) {
          return reject(fail.timeout('EGIT_TIMEOUT', `git ${args[0]} did not finish in time`, { where: this.remote.display, hint: 'raise --timeout, or check the network to the git server' }));
        }
        resolve({ code: code ?? 1, stdout, stderr });
      };
      p.on('close', (code) => {
        // git is done; a helper it left behind (it should not) goes with the group
        if (p.pid && !timedOut) {
          try {
            process.kill(-p.pid, 'SIGKILL');
          } catch {
            /* the group is gone, as it should be */
          }
        }
        finish(code);
      });
      p.stdin.on('error', () => undefined);
      p.stdin.end(o.input ?? '');
    });
  }

  /** run git and throw a classified error on failure */
  async must(op: GitOp, args: string[], o: { cwd?: string; input?: string; branch?: string; env?: NodeJS.ProcessEnv; deadline?: number } = {}): Promise<string> {
    const r = await this.run(args, o);
    if (r.code !== 0) throw classifyGitFailure({ op, stderr: r.stderr, stdout: r.stdout, where: this.remote.display, branch: o.branch });
    return r.stdout;
  }
}
