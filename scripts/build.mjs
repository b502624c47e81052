// Bundles the CLI into one file, dist/gitops-ci.mjs. Commands are loaded lazily inside the bundle, so
// `gitops-ci --version` evaluates almost nothing.
import { build } from 'esbuild';
import { readFile, chmod } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('../dist/gitops-ci.mjs', import.meta.url).pathname;
await build({
  entryPoints: [new URL('../src/cli.ts', import.meta.url).pathname],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  // optional native extras of docker-modem (ssh:// DOCKER_HOST only) and cpu-features
  external: ['ssh2', 'cpu-features'],
  define: { __VERSION__: JSON.stringify(pkg.version) },
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
