/**
 * Error codes of the registry and image area (also listed in docs/commands/image.md).
 *
 * EREGISTRY_BAD_REF        2  the image reference cannot be parsed
 * EREGISTRY_AUTH_CONFIG    2  DOCKER_AUTH_CONFIG is not JSON
 * EREGISTRY_NO_USER        2  --registry-password-stdin without a user
 * EREGISTRY_NO_PASSWORD    2  a user without a password
 * EREGISTRY_CA_FILE        2  --ca-file cannot be read
 * EREGISTRY_AUTH           3  401: credentials missing or wrong
 * EREGISTRY_DENIED         3  403: the credentials may not do this
 * EREGISTRY_NOT_FOUND      1  tag, manifest or repository not found
 * EREGISTRY_TLS            1  the registry's certificate cannot be verified
 * EREGISTRY_PROTOCOL       1  an answer the distribution spec does not allow
 * EREGISTRY_DIGEST         1  the registry stored other bytes than were sent
 * EREGISTRY_NOT_STORED     1  the destination does not serve back what was written
 * EREGISTRY_UNAVAILABLE   75  5xx or 429 after retries
 * EREGISTRY_NETWORK       75  connection refused/reset/timeout after retries
 * EREGISTRY_TIMEOUT         4  image resolve: no answer within --timeout
 * EREGISTRY_TIMEOUT_FLAG    2  image resolve: --timeout is not a duration from 100ms to 24h
 * EIMAGE_NO_TAG            2  no --tag and no CI_REGISTRY_IMAGE/CI_COMMIT_SHA
 * EIMAGE_BAD_FLAG          2  --build-arg or --label not K=V
 * EIMAGE_CONTEXT           2  context directory or Dockerfile missing
 * EIMAGE_DOCKER_HOST       2  DOCKER_HOST or its TLS files unusable
 * EIMAGE_NO_ENGINE         2  no usable Docker engine for the runner kind (GITOPS_ENGINE / the `engine` input)
 * EIMAGE_ENGINE           75  the Docker engine cannot be reached
 * EIMAGE_ENGINE_FAULT     75  the engine closed the connection, died or restarted during a build, push or pull
 * EIMAGE_BUILD_STEP        1  a Dockerfile step failed
 * EIMAGE_BUILD             1  the build failed otherwise (syntax, missing file…)
 * EIMAGE_BASE_NOT_FOUND    1  a FROM image does not exist
 * EIMAGE_BASE_AUTH         3  a FROM image needs credentials that are missing or wrong
 * EIMAGE_PUSH              1  the engine failed to push
 * EIMAGE_PUSH_AUTH         3  the engine's push was refused (401/403)
 * EIMAGE_PUSH_TRANSIENT   75  the engine's push failed on a network error or 5xx
 */
export const REGISTRY_ERROR_CODES = [
  'EREGISTRY_BAD_REF',
  'EREGISTRY_AUTH_CONFIG',
  'EREGISTRY_NO_USER',
  'EREGISTRY_NO_PASSWORD',
  'EREGISTRY_CA_FILE',
  'EREGISTRY_AUTH',
  'EREGISTRY_DENIED',
  'EREGISTRY_NOT_FOUND',
  'EREGISTRY_TLS',
  'EREGISTRY_PROTOCOL',
  'EREGISTRY_DIGEST',
  'EREGISTRY_NOT_STORED',
  'EREGISTRY_UNAVAILABLE',
  'EREGISTRY_NETWORK',
  'EREGISTRY_TIMEOUT',
  'EREGISTRY_TIMEOUT_FLAG',
  'EIMAGE_NO_TAG',
  'EIMAGE_BAD_FLAG',
  'EIMAGE_CONTEXT',
  'EIMAGE_DOCKER_HOST',
  'EIMAGE_NO_ENGINE',
  'EIMAGE_ENGINE',
  'EIMAGE_BUILD_STEP',
  'EIMAGE_BUILD',
  'EIMAGE_BASE_NOT_FOUND',
  'EIMAGE_BASE_AUTH',
  'EIMAGE_PUSH',
  'EIMAGE_PUSH_AUTH',
  'EIMAGE_PUSH_TRANSIENT',
] as const;
