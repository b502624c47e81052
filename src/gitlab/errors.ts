/**
 * Error codes of the GitLab area (the connection, merge requests, notes, approvals, `gitops-ci gate`).
 * Each is listed in docs/errors.md (EGITLAB_* section) and docs/commands/gate.md with its exit code.
 */
export const GitlabErrors = {
  /** flags/env: no server, no project, malformed URL, unreadable CA file, bad --mr/--approvals (exit 2) */
  CONFIG: 'EGITLAB_CONFIG',
  /** only CI_JOB_TOKEN is available: it cannot create MRs or read approvals (exit 3) */
  JOB_TOKEN: 'EGITLAB_JOB_TOKEN',
  /** 401/403: bad, expired or revoked token, token without scope `api`, or a role that may not do it (exit 3) */
  AUTH: 'EGITLAB_AUTH',
  /** 404: the project, merge request, group or user does not exist or the token's user cannot see it (exit 1) */
  NOT_FOUND: 'EGITLAB_NOT_FOUND',
  /** 409 from GitLab: another open MR exists, the MR head moved (sha mismatch) (exit 1) */
  CONFLICT: 'EGITLAB_CONFLICT',
  /** another 4xx (400, 405, 406, 422): GitLab refused the request (exit 1) */
  REJECTED: 'EGITLAB_REJECTED',
  /** 5xx, 429, network error, request timeout after bounded retries (exit 75) */
  UNAVAILABLE: 'EGITLAB_UNAVAILABLE',
  /** TLS verification of the GitLab server failed (exit 2) */
  TLS: 'EGITLAB_TLS',
  /** a request did not complete (answer and body) within its deadline, however slowly data came (exit 4) */
  TIMEOUT: 'EGITLAB_TIMEOUT',
  /** an answer larger than the client accepts (exit 1) */
  TOO_LARGE: 'EGITLAB_TOO_LARGE',
  /** a listing that kept announcing a next page past the page bound (GITOPS_GITLAB_MAX_PAGES pages of 100 for our listings) (exit 1) */
  TOO_MANY_PAGES: 'EGITLAB_TOO_MANY_PAGES',
  /** auto-merge: the MR cannot be merged (conflict, closed, not open, merge error) (exit 1) */
  MERGE_BLOCKED: 'EGITLAB_MERGE_BLOCKED',
  /** auto-merge: the MR did not become mergeable within the time allowed (exit 4) */
  MERGE_TIMEOUT: 'EGITLAB_MERGE_TIMEOUT',
  /** gate: fewer qualifying approvals than --approvals (exit 1) */
  NOT_APPROVED: 'EGITLAB_NOT_APPROVED',
  /** gate --mr on a closed merge request (exit 1) */
  NOT_OPEN: 'EGITLAB_NOT_OPEN',
  /** gate --commit: no merged MR brought the commit to the branch (exit 1) */
  NO_MERGE_REQUEST: 'EGITLAB_NO_MERGE_REQUEST',
  /** gate: an --approver user or @group does not exist (exit 2) */
  UNKNOWN_APPROVER: 'EGITLAB_UNKNOWN_APPROVER',
  /** a GitLab answer the gate cannot judge: a user null or a string, an MR without author or id, a bad sha (exit 1) */
  BAD_ANSWER: 'EGITLAB_BAD_ANSWER',
  /** gate --mr: the MR's head is no longer the pipeline's commit; the newer pipeline decides (exit 1) */
  HEAD_MOVED: 'EGITLAB_HEAD_MOVED',
  /** gate: a fork MR pipeline without a GitLab token (exit 3) */
  FORK_NO_TOKEN: 'EGITLAB_FORK_NO_TOKEN',
  /** gate: the protected settings (GITOPS_GATE_* variables, the target branch's settings file) are malformed (exit 2) */
  SETTINGS: 'EGITLAB_GATE_SETTINGS',
} as const;
