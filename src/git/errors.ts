/**
 * The git area's error catalogue, and the reading of git's stderr into those errors.
 *
 * git reports everything as exit 128 or 1 with English text on stderr (we run it with LC_ALL=C), so the
 * kind of a failure is read from that text. Each pattern below comes from a real message: git 2.39 over
 * smart HTTP and ssh, and GitLab's wording where it differs (notes/machine-recipes.md §4, notes/gitlab.md §4.6).
 */
import { fail, type GitopsError } from '../core/errors.js';
import { mask } from '../core/mask.js';

export const GIT_ERRORS = {
  EGIT_URL: 'the config repo URL is malformed or of an unsupported scheme (2)',
  EGIT_AUTH: 'authentication or permission failed (3)',
  EGIT_HOST_KEY: 'the ssh host key is unknown or does not match (3)',
  EGIT_REPO_NOT_FOUND: 'the config repo does not exist or is not visible to these credentials (2)',
  EGIT_BRANCH_NOT_FOUND: 'the branch does not exist in the config repo (2)',
  EGIT_UNREACHABLE: 'the remote could not be reached, or answered with a server error (75)',
  EGIT_PUSH_REJECTED: 'the push was refused by a protected branch, a push rule or a pre-receive hook (1)',
  EGIT_PUSH_OPTIONS: 'the server does not accept push options (`--skip-ci push-option`) (1)',
  EGIT_TIMEOUT: 'a git operation ran past the time limit (4)',
  EGIT_FAILED: 'git failed in another way; its message is shown (1)',
  EGIT_SSH_KEY: 'the deploy key in SSH_PRIVATE_KEY is unusable (2)',
} as const;

export type GitOp = 'clone' | 'fetch' | 'push' | 'ls-remote' | 'local';

/** The last lines of git's stderr, masked, without progress noise: shown under an error. */
export function tailLines(stderr: string, n = 12): string[] {
  return mask(stderr)
    .split(/\r?\n|\r/)
    .map((l) => l.trimEnd())
    .filter((l) => l && !/^(hint: |Cloning into|remote: (Enumerating|Counting|Compressing|Total)|Receiving objects|Resolving deltas)/.test(l))
    .slice(-n);
}

/** `remote:` lines, which carry a hook's or GitLab's own explanation of a refusal. */
export function remoteLines(text: string): string[] {
  return mask(text)
    .split(/\r?\n/)
    .filter((l) => /^remote: /.test(l) && !/^remote: (Enumerating|Counting|Compressing|Total|Resolving)/.test(l))
    .map((l) => l.replace(/\s+$/, ''))
    .filter((l) => l.replace(/^remote:\s*/, '').length > 0);
}

/** A push refused because the branch moved under us: fetch, re-apply and push again. */
export function isPushRace(text: string): boolean {
  return /\b(fetch first|non-fast-forward|cannot lock ref|failed to update ref|incorrect old value provided|stale info)\b/i.test(text);
}

const AUTH = [
  /Authentication failed/i,
  /could not read (Username|Password)/i,
  /HTTP Basic: Access denied/i,
  /returned error: (401|403)/i,
  /Permission denied \((publickey|keyboard|password)/i,
  /You are not allowed to (push|download) code/i,
  /Write access to repository not granted/i,
  /The project you were looking for could not be found or you don't have permission/i,
  /permission to .* denied/i,
  /DENIED by fallthru/i,
];
const HOST_KEY = [/Host key verification failed/i, /REMOTE HOST IDENTIFICATION HAS CHANGED/i, /No (ED25519|RSA|ECDSA) host key is known/i];
const NOT_FOUND = [/repository '.*' not found/i, /does not appear to be a git repository/i, /returned error: 404/i, /not a git repository/i, /No such file or directory/i];
const TRANSIENT = [
  /Could not resolve host/i,
  /Could not resolve hostname/i,
  /Failed to connect to/i,
  /Couldn't connect to server/i,
  /Connection (refused|reset|timed out|closed)/i,
  /Operation timed out/i,
  /returned error: 5\d\d/i,
  /\b50[0-4]\b.*(Gateway|Server Error|Unavailable)/i,
  /RPC failed/i,
  /early EOF/i,
  /unexpected disconnect/i,
  /the remote end hung up unexpectedly/i,
  /remote end hung up/i,
  /Network is unreachable/i,
  /No route to host/i,
  /gnutls_handshake\(\) failed/i,
  /SSL_(read|connect|ERROR)/i,
  /TLS connection was non-properly terminated/i,
  /Temporary failure in name resolution/i,
  /kex_exchange_identification/i,
];

export interface ClassifyInput {
  op: GitOp;
  stderr: string;
  stdout?: string;
  /** redacted remote, for `where` */
  where: string;
  branch?: string;
}

/**
 * Turn a failed git run into a GitopsError with a kind (exit code), a message and a hint.
 * Push races are not errors here; callers test isPushRace first.
 */
export function classifyGitFailure(i: ClassifyInput): GitopsError {
  const text = `${i.stderr}\n${i.stdout ?? ''}`;
  const details = tailLines(text);
  const where = i.where;
  if (i.op === 'push') {
    if (/does not support push options/i.test(text)) {
      return fail.failed('EGIT_PUSH_OPTIONS', 'the server does not accept push options, so `-o ci.skip` cannot be sent', {
        where,
        details,
        hint: 'use --skip-ci message (a [skip ci] subject), or enable receive.advertisePushOptions on the server',
      });
    }
    const remote = remoteLines(text);
    if (/pre-receive hook declined|\[remote rejected\]|protected branch|push rule|You are not allowed to force push/i.test(text) && !/You are not allowed to push code to this project/i.test(text)) {
      return fail.failed('EGIT_PUSH_REJECTED', `the push to ${i.branch ?? 'the branch'} was refused by the server${/protected/i.test(text) ? ' (protected branch)' : /hook/i.test(text) ? ' (pre-receive hook)' : ''}`, {
        where,
        details: remote.length ? remote : details,
        hint: 'read the server message above: allow this identity to push to the branch (Settings → Repository → Protected branches), or satisfy the push rule; nothing was changed on the remote',
      });
    }
  }
  if (HOST_KEY.some((r) => r.test(text))) {
    return fail.auth('EGIT_HOST_KEY', 'the ssh host key of the config repo server is not trusted', {
      where,
      details,
      hint: 'set SSH_KNOWN_HOSTS to the server\'s known_hosts line(s) (ssh-keyscan from a trusted network, then verify the fingerprint); --ssh-accept-new trusts a first-seen key, which is not safe',
    });
  }
  if (AUTH.some((r) => r.test(text))) {
    const push = i.op === 'push';
    // git followed a redirect to another host and asked for credentials there: ours are not given out
    const asked = /(?:Username for|Password for|failed for) '(https?:\/\/[^/']+)/i.exec(text)?.[1];
    let elsewhere: string | undefined;
    try {
      if (asked && where && /^https?:\/\//i.test(where) && new URL(asked).host !== new URL(where).host) elsewhere = new URL(asked).host;
    } catch {
      elsewhere = undefined;
    }
    if (elsewhere) {
      return fail.auth('EGIT_AUTH', `the config repo server redirected to ${elsewhere}, which asked for credentials: they are only given to ${new URL(where!).host}`, {
        where,
        details,
        hint: `if ${elsewhere} is where the config repo now lives, pass that URL as --repo (GITOPS_CONFIG_REPO); otherwise check the server's redirect`,
      });
    }
    return fail.auth('EGIT_AUTH', push ? 'not allowed to push to the config repo' : 'authentication to the config repo failed', {
      where,
      details,
      hint: push
        ? 'give the token write access: a project access token with write_repository, or CI_JOB_TOKEN with "Allow Git push requests to the repository" (GitLab ≥ 18.4, Settings → CI/CD → Job token permissions), or a deploy key with write access'
        : 'set GITOPS_GIT_TOKEN (user GITOPS_GIT_USER, default oauth2) to a token with read_repository/write_repository, use CI_JOB_TOKEN on the same GitLab, or SSH_PRIVATE_KEY with an ssh URL',
    });
  }
  if (i.op !== 'local' && /Remote branch .* not found|couldn't find remote ref|not our ref|no such ref/i.test(text)) {
    return fail.usage('EGIT_BRANCH_NOT_FOUND', `branch ${JSON.stringify(i.branch ?? '?')} does not exist in the config repo`, {
      where,
      details,
      hint: 'check --branch (default: GITOPS_CONFIG_BRANCH, then CI_DEFAULT_BRANCH); bump does not create branches',
    });
  }
  if (TRANSIENT.some((r) => r.test(text))) {
    return fail.transient('EGIT_UNREACHABLE', `the config repo could not be reached (${i.op})`, {
      where,
      details,
      hint: 'a network problem or a server error: retry the job (exit 75 is retryable); check the URL and that the server is up',
    });
  }
  if (i.op !== 'local' && NOT_FOUND.some((r) => r.test(text))) {
    return fail.usage('EGIT_REPO_NOT_FOUND', 'the config repo was not found', {
      where,
      details,
      hint: 'check --repo (default: GITOPS_CONFIG_REPO, then CI_REPOSITORY_URL); a private repo also looks missing to a token that cannot read it',
    });
  }
  return fail.failed('EGIT_FAILED', `git ${i.op} failed`, { where, details });
}
