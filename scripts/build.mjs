// Bundles the CLI into one file, dist/gitops-ci.cjs. Commands are loaded lazily inside the bundle, so
// `gitops-ci --version` evaluates almost nothing. CommonJS, not ESM: esbuild then turns every import of a
// lazily loaded module (node:http, dockerode, ...) into a require() inside that module's lazy initialiser,
// while an ESM bundle hoists all of them to the top and loads them at start-up (110 ms against 80 ms here).
import { build } from 'esbuild';
import { readFile, chmod } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('../dist/gitops-ci.cjs', import.meta.url).pathname;
await build({
  entryPoints: [new URL('../src/cli.ts', import.meta.url).pathname],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile,
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  // optional native extras of docker-modem (ssh:// DOCKER_HOST only) and cpu-features
  external: ['ssh2', 'cpu-features'],
  define: { __VERSION__: JSON.stringify(pkg.version) },
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
