// Bundles the CLI into one file, dist/gitops-ci.cjs, that starts about as fast as `node -e 0`.
//
// Each command (src/commands/<name>.ts, with everything it imports) is bundled on its own and embedded in
// the file as a brotli stream of its own in a trailing comment (see below); a chunk is decompressed and
// compiled only when that command runs. So `gitops-ci --version` and `--help`
// parse a few kilobytes of code instead of the ~2 MB that dockerode, yaml and the commands weigh.
// The shared mechanisms in src/core/ (errors, masking, logging, ...) are not copied into the chunks: a chunk's
// imports of src/core resolve to the main bundle's modules, so that `instanceof GitopsError` and the set of
// secrets to mask are one and the same across the CLI and the command.
//
// CommonJS, not ESM: an ESM bundle hoists every node builtin import to the top and loads them at start-up.
import { build, transform } from 'esbuild';
import { appendFile, readFile, chmod, readdir, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zc } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
// `node scripts/build.mjs [OUTFILE]` (default dist/gitops-ci.cjs); written to a temp file and renamed, so that a
// CLI started meanwhile never reads a half-written bundle
const outfile = resolve(process.argv[2] ?? join(root, 'dist/gitops-ci.cjs'));
const tmpfile = `${outfile}.${process.pid}.tmp`;
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
// All commands in one build with code splitting: what several commands share (yaml, gitbeaker, src/ areas) is
// a chunk of its own (`shared-<hash>`), stored once and loaded by the commands that import it. esbuild splits
// ESM only; each output is then turned into CommonJS (its `import './shared-x.js'` becomes a require the
// runtime answers from the embedded chunks).
const split = await build({ ...common, format: 'esm', splitting: true, entryPoints: commandFiles.map((f) => join(commandsDir, f)), write: false, outdir: '/chunk', entryNames: '[name]', chunkNames: 'shared-[hash]', plugins: [coreExternal] });
const chunks = {};
for (const o of split.outputFiles) {
  // a dynamic import() of a shared chunk becomes a require() too (vm.compileFunction has no import() of its own)
  const cjs = await transform(o.text, { format: 'cjs', loader: 'js', target: common.target, supported: { 'dynamic-import': false }, legalComments: 'none', logLevel: 'warning' });
  chunks[basename(o.path, '.js')] = cjs.code;
}
const coreFiles = (await readdir(coreDir)).filter((f) => f.endsWith('.ts'));

// Each chunk is its own brotli stream, base64, in one comment at the end of the file (after MARKER). Why:
// - in a comment, not a string literal: V8 scans a comment for its end and nothing more, while a string
//   literal is scanned, copied and kept (callgrind, instructions of `--version` over `node -e 0`: 37-45 M
//   with the one stream in a string; 30 M with these streams in a comment, of which the comment is 4 M);
// - one stream per chunk, not one for all: a command decompresses its own chunk and the shared ones it
//   imports, not the 8 MB of every command's code (~90 ms before); the shared chunks keep the file small
//   (a comment is not free, below);
// - brotli quality 11 (8% smaller than 9, about 3 s more per build): every byte of the file is read and
//   scanned at each start, --version included (a 755 KB file costs ~4 ms to read as UTF-8 and ~4 ms more to
//   compile than a 53 KB one on this machine).
// The runtime (scripts/chunk-runtime.cjs) reads the file once, from the marker on, when a command is loaded.
const MARKER = '/*gitops-ci-chunks:';
const payload = (() => {
  const index = {};
  const parts = [];
  let at = 0;
  for (const n of Object.keys(chunks).sort()) {
    const raw = Buffer.from(chunks[n], 'utf8');
    const b64 = brotliCompressSync(raw, { params: { [zc.BROTLI_PARAM_QUALITY]: 11, [zc.BROTLI_PARAM_LGWIN]: 24, [zc.BROTLI_PARAM_SIZE_HINT]: raw.length } }).toString('base64');
    // offsets in characters after the marker (base64 is ASCII: characters are bytes)
    index[n] = [at, b64.length];
    parts.push(b64);
    at += b64.length;
  }
  return { index, text: `\n${MARKER}${parts.join('')}*/\n` };
})();

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
    b.onLoad({ filter: /.*/, namespace: 'gitops-chunks' }, () => ({ contents: `module.exports = { index: ${JSON.stringify(payload.index)}, marker: ${JSON.stringify(MARKER)} };`, loader: 'js' }));
    b.onResolve({ filter: /^gitops-core-modules$/ }, () => ({ path: 'core', namespace: 'gitops-core-modules' }));
    b.onLoad({ filter: /.*/, namespace: 'gitops-core-modules' }, () => ({
      contents: `module.exports = {\n${coreFiles.map((f) => `  ${JSON.stringify(basename(f, '.ts'))}: () => require(${JSON.stringify(join(coreDir, f))}),`).join('\n')}\n};`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

await build({ ...common, entryPoints: [join(root, 'src/cli.ts')], outfile: tmpfile, banner: { js: '#!/usr/bin/env node' }, plugins: [chunkLoader] });
// base64 holds no `*`: the comment cannot end early
await appendFile(tmpfile, payload.text);
await chmod(tmpfile, 0o755);
await rename(tmpfile, outfile);
