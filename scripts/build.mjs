// Bundles the CLI into one file, dist/gitops-ci.cjs, that starts about as fast as `node -e 0`.
//
// Each command (src/commands/<name>.ts, with everything it imports) is bundled on its own and embedded in
// the file, all chunks in one brotli stream (see below); a chunk is compiled only when that command runs. So `gitops-ci --version` and `--help`
// parse a few kilobytes of code instead of the ~2 MB that dockerode, yaml and the commands weigh.
// The shared mechanisms in src/core/ (errors, masking, logging, ...) are not copied into the chunks: a chunk's
// imports of src/core resolve to the main bundle's modules, so that `instanceof GitopsError` and the set of
// secrets to mask are one and the same across the CLI and the command.
//
// CommonJS, not ESM: an ESM bundle hoists every node builtin import to the top and loads them at start-up.
import { build } from 'esbuild';
import { readFile, chmod, readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zc } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const outfile = join(root, 'dist/gitops-ci.cjs');
const coreDir = join(root, 'src/core');
const commandsDir = join(root, 'src/commands');

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  legalComments: 'none',
  // optional native extras of docker-modem (ssh:// DOCKER_HOST only) and cpu-features
  external: ['ssh2', 'cpu-features'],
  define: { __VERSION__: JSON.stringify(pkg.version) },
  logLevel: 'warning',
};

/** in a chunk, src/core/<x>.ts becomes the external module `gitops-core:<x>` */
const coreExternal = {
  name: 'core-external',
  setup(b) {
    b.onResolve({ filter: /^\.{1,2}\/.*\.js$/ }, (args) => {
      const abs = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
      if (dirname(abs) === coreDir) return { path: `gitops-core:${basename(abs, '.ts')}`, external: true };
      return undefined;
    });
  },
};

const commandFiles = (await readdir(commandsDir)).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
const chunks = {};
for (const f of commandFiles) {
  const r = await build({ ...common, entryPoints: [join(commandsDir, f)], write: false, outfile: `/chunk/${f}.cjs`, plugins: [coreExternal] });
  chunks[basename(f, '.ts')] = r.outputFiles[0].text;
}
const coreFiles = (await readdir(coreDir)).filter((f) => f.endsWith('.ts'));

/** in the main bundle, `import('./<command>.js')` from the registry loads the embedded chunk */
const chunkLoader = {
  name: 'chunk-loader',
  setup(b) {
    b.onResolve({ filter: /^\.\/[a-z0-9-]+\.js$/ }, (args) => {
      if (args.importer !== join(commandsDir, 'index.ts')) return undefined;
      return { path: basename(args.path, '.js'), namespace: 'gitops-chunk' };
    });
    b.onLoad({ filter: /.*/, namespace: 'gitops-chunk' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(join(root, 'scripts/chunk-runtime.cjs'))}).loadChunk(${JSON.stringify(args.path)});`,
      resolveDir: root,
      loader: 'js',
    }));
    b.onResolve({ filter: /^gitops-chunks$/ }, () => ({ path: 'chunks', namespace: 'gitops-chunks' }));
    b.onLoad({ filter: /.*/, namespace: 'gitops-chunks' }, () => {
      // Every chunk in ONE brotli stream. The chunks share most of their code (yaml, gitbeaker, src/ areas), which
      // a per-chunk compression stores once per chunk: one stream is 2.2x smaller (measured: 1.30 MB of
      // gzip+base64 against 0.58 MB at quality 9; quality 11 saves 10% more but takes 6 s per build, not 0.35 s).
      // Start-up reads and scans the whole file, so `--version` pays for every byte of it; a command pays once
      // for decompressing the stream (a few ms per MB).
      const names = Object.keys(chunks).sort();
      const bufs = names.map((n) => Buffer.from(chunks[n], 'utf8'));
      const index = {};
      let at = 0;
      names.forEach((n, i) => ((index[n] = [at, bufs[i].length]), (at += bufs[i].length)));
      const all = Buffer.concat(bufs);
      const packed = brotliCompressSync(all, { params: { [zc.BROTLI_PARAM_QUALITY]: 9, [zc.BROTLI_PARAM_LGWIN]: 24, [zc.BROTLI_PARAM_SIZE_HINT]: all.length } });
      return { contents: `module.exports = { index: ${JSON.stringify(index)}, packed: ${JSON.stringify(packed.toString('base64'))} };`, loader: 'js' };
    });
    b.onResolve({ filter: /^gitops-core-modules$/ }, () => ({ path: 'core', namespace: 'gitops-core-modules' }));
    b.onLoad({ filter: /.*/, namespace: 'gitops-core-modules' }, () => ({
      contents: `module.exports = {\n${coreFiles.map((f) => `  ${JSON.stringify(basename(f, '.ts'))}: () => require(${JSON.stringify(join(coreDir, f))}),`).join('\n')}\n};`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

await build({ ...common, entryPoints: [join(root, 'src/cli.ts')], outfile, banner: { js: '#!/usr/bin/env node' }, plugins: [chunkLoader] });
await chmod(outfile, 0o755);
