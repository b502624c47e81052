// Bundles the CLI into two files of one build, dist/gitops-ci.cjs and dist/gitops-ci.chunks, so that
// `gitops-ci --version` and `--help` start about as fast as `node -e 0`.
//
// gitops-ci.cjs (~55 KB) is the CLI: argv, help, the command registry and the shared mechanisms of src/core/.
// Each command (src/commands/<name>.ts, with everything it imports) is bundled on its own into a chunk; the
// chunks are in gitops-ci.chunks, read beside the real path of gitops-ci.cjs (symlinks resolved: the runner
// image's /usr/local/bin/gitops-ci and npm's node_modules/.bin/gitops-ci are links), and a chunk is read and
// compiled only when its command runs. So `--version` and `--help` parse a few kilobytes of code instead of the
// ~2.9 MB that dockerode, yaml, gitbeaker and the commands weigh.
// The shared mechanisms in src/core/ (errors, masking, logging, ...) are not copied into the chunks: a chunk's
// imports of src/core resolve to the main bundle's modules, so that `instanceof GitopsError` and the set of
// secrets to mask are one and the same across the CLI and the command.
//
// CommonJS, not ESM: an ESM bundle hoists every node builtin import to the top and loads them at start-up.
import { build, transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { chmod, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
// `node scripts/build.mjs [OUTFILE]` (default dist/gitops-ci.cjs; the chunks go beside it, OUTFILE's name with
// .chunks for .cjs). Both are written to temp files and renamed (see the end), so that a CLI started meanwhile
// never reads a half-written file.
const outfile = resolve(process.argv[2] ?? join(root, 'dist/gitops-ci.cjs'));
const chunksFile = join(dirname(outfile), `${basename(outfile).replace(/\.c?js$/, '')}.chunks`);
const tmpfile = `${outfile}.${process.pid}.tmp`;
const tmpChunks = `${chunksFile}.${process.pid}.tmp`;
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

// The chunks file: one header line, then every chunk's code, as it is (no compression), one after the other:
//   gitops-ci-chunks <build id>\n<chunk><chunk>...
// The bundle holds the index (name -> [offset after the header, length]) and the header it was built with; the
// build id is a hash of the index and the code, so a file of another build (or a build of other sources) has
// another header, and the runtime refuses it rather than run the wrong code (EBUNDLE_CHUNKS_MISMATCH).
// Why a file of its own, and raw:
// - every byte of gitops-ci.cjs is read and scanned at each start, --version included: with the chunks in a
//   trailing comment of the bundle (0.66 MB of brotli+base64, the layout before), --version cost 1.16x
//   `node -e 0`; without them, about 1.05x. Node reads a file it is not asked to load not at all;
// - not compressed: a command reads its own chunk and the shared ones it imports with a few pread()s, where
//   brotli cost node:zlib's load, base64 and ~5-8 ms of decoding for bump or set-image. The npm tarball and
//   the image layers are compressed on the way anyway; on disk it is 2.9 MB instead of 0.66.
// The runtime (scripts/chunk-runtime.cjs) opens the file once, when the first command chunk is loaded.
const payload = (() => {
  const index = {};
  const parts = [];
  let at = 0;
  for (const n of Object.keys(chunks).sort()) {
    const raw = Buffer.from(chunks[n], 'utf8');
    index[n] = [at, raw.length];
    parts.push(raw);
    at += raw.length;
  }
  const data = Buffer.concat(parts);
  const id = createHash('sha256').update(pkg.version).update('\0').update(JSON.stringify(index)).update('\0').update(data).digest('hex').slice(0, 24);
  const header = `gitops-ci-chunks ${pkg.version} ${id}\n`;
  return { index, header, file: Buffer.concat([Buffer.from(header, 'latin1'), data]) };
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
    b.onLoad({ filter: /.*/, namespace: 'gitops-chunks' }, () => ({ contents: `module.exports = { index: ${JSON.stringify(payload.index)}, header: ${JSON.stringify(payload.header)}, file: ${JSON.stringify(basename(chunksFile))} };`, loader: 'js' }));
    b.onResolve({ filter: /^gitops-core-modules$/ }, () => ({ path: 'core', namespace: 'gitops-core-modules' }));
    b.onLoad({ filter: /.*/, namespace: 'gitops-core-modules' }, () => ({
      contents: `module.exports = {\n${coreFiles.map((f) => `  ${JSON.stringify(basename(f, '.ts'))}: () => require(${JSON.stringify(join(coreDir, f))}),`).join('\n')}\n};`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

try {
  await build({ ...common, entryPoints: [join(root, 'src/cli.ts')], outfile: tmpfile, banner: { js: '#!/usr/bin/env node' }, plugins: [chunkLoader] });
  await chmod(tmpfile, 0o755);
  await writeFile(tmpChunks, payload.file);
  // The bundle first, then its chunks. Two renames are not one atomic step: a CLI started between them has the
  // new bundle and the old chunks, and sees another build's header; the runtime then waits for the second rename
  // a moment before it refuses (scripts/chunk-runtime.cjs). In the other order, a CLI started between them
  // would have the old bundle and the new chunks, which no wait can mend.
  await rename(tmpfile, outfile);
  await rename(tmpChunks, chunksFile);
} finally {
  await rm(tmpfile, { force: true });
  await rm(tmpChunks, { force: true });
}
