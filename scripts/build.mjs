// Bundles the CLI into two files of one build, dist/gitops-ci.cjs and dist/gitops-ci.chunks, so that
// `gitops-ci --version` and `--help` start about as fast as `node -e 0`.
//
// gitops-ci.cjs (~60 KB) is the CLI: argv, help, the command registry and the shared mechanisms of src/core/.
// Each command (src/commands/<name>.ts, with everything it imports) is bundled on its own into a chunk; the
// chunks are in gitops-ci.chunks, read beside the real path of gitops-ci.cjs (symlinks resolved: the runner
// image's /usr/local/bin/gitops-ci and npm's node_modules/.bin/gitops-ci are links), and a chunk is read and
// compiled only when its command runs and first uses it (lazyImports below). So `--version` and `--help` parse a few kilobytes of code instead of the
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
  // ssh2's optional native extra (ssh2 itself: noSsh2 below)
  external: ['cpu-features'],
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

/**
 * docker-modem requires `ssh2` as it loads (for an ssh:// DOCKER_HOST), and ssh2 is not bundled (native extras).
 * Left as an external require, it was looked up in node_modules beside the bundle, which the runner image does
 * not have: every command that loads dockerode (image build) failed there with "Cannot find module 'ssh2'",
 * while it passed in the checkout, whose node_modules has it. gitops-ci refuses an ssh:// DOCKER_HOST before it
 * reaches dockerode (EIMAGE_DOCKER_HOST, src/docker/engine.ts), so ssh2 is a stand-in that is never constructed.
 */
const noSsh2 = {
  name: 'no-ssh2',
  setup(b) {
    b.onResolve({ filter: /^ssh2$/ }, () => ({ path: 'ssh2', namespace: 'no-ssh2' }));
    b.onLoad({ filter: /.*/, namespace: 'no-ssh2' }, () => ({
      contents: `module.exports = { Client: class Client { constructor() { throw new Error('gitops-ci has no ssh transport to the Docker engine (ssh2 is not bundled): use a unix:// or tcp:// DOCKER_HOST'); } } };`,
      loader: 'js',
    }));
  },
};

const commandFiles = (await readdir(commandsDir)).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
// All commands in one build with code splitting: what several commands share (yaml, gitbeaker, src/ areas) is
// a chunk of its own (`shared-<hash>`), stored once and loaded by the commands that import it. esbuild splits
// ESM only; each output is then turned into CommonJS (its `import './shared-x.js'` becomes a require the
// runtime answers from the embedded chunks).
const split = await build({ ...common, format: 'esm', splitting: true, entryPoints: commandFiles.map((f) => join(commandsDir, f)), write: false, outdir: '/chunk', entryNames: '[name]', chunkNames: 'shared-[hash]', plugins: [coreExternal, noSsh2] });
/**
 * A chunk's imports are loaded when first used, not when the chunk is: esbuild's CommonJS form of
 * `import { f } from './shared-x.js'` is `var import_shared_x = require("./shared-x.js");` at the top and
 * `(0, import_shared_x.f)(...)` where it is used; each use becomes `(import_shared_x || (import_shared_x =
 * require(...))).f`. So a command loads what its path through the code touches, node builtins included:
 * `set-image --help`, which reads only the command's `spec`, no longer loads node:crypto, fs/promises and the
 * streams behind them. Instructions over `node -e 0` (callgrind, node 20): set-image --help +14% (+23% with every
 * import loaded up front), bump --help +21% (+33%). A module's code then runs at its first use rather than before
 * its importer's: what it does at the top is defining things (src/ has no other top-level statements outside
 * src/core, which is in the main bundle and loaded as before). An import whose bindings are never used stays
 * eager: esbuild's split chunks import the chunks that must run before them that way (`import './shared-x.js'`),
 * and so would a module imported for its side effects; `export * from` and namespace imports stay eager too.
 */
function lazyImports(code) {
  if (code.includes('\0')) throw new Error('build: a chunk holds a NUL character, which lazyImports uses as its mark');
  for (const [line, id, init] of [...code.matchAll(/^var (import_[\w$]+) = ((?:__toESM\()?require\("[^"]+"\)\)?);$/gm)]) {
    const decl = code.indexOf(line);
    const rest = `${code.slice(0, decl)}\0${code.slice(decl + line.length)}`;
    const uses = new RegExp(`(?<![\\w$])${id.replace(/\$/g, '\\$')}(?![\\w$])`, 'g');
    // `x.import_y` is a property, not the binding; `...import_y` is a spread of it
    const isBinding = (at, all) => all[at - 1] !== '.' || all.slice(at - 3, at) === '...';
    if (![...rest.matchAll(uses)].some((m) => isBinding(m.index, rest))) continue;
    const lazy = rest.replace(uses, (m, at, all) => (isBinding(at, all) ? `(${id} || (${id} = ${init}))` : m));
    code = lazy.replace('\0', () => `var ${id};`);
  }
  return code;
}
const chunks = {};
for (const o of split.outputFiles) {
  // a dynamic import() of a shared chunk becomes a require() too (vm.compileFunction has no import() of its own)
  const cjs = await transform(o.text, { format: 'cjs', loader: 'js', target: common.target, supported: { 'dynamic-import': false }, legalComments: 'none', logLevel: 'warning' });
  chunks[basename(o.path, '.js')] = lazyImports(cjs.code);
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
    b.onLoad({ filter: /.*/, namespace: 'gitops-chunks' }, () => ({ contents: `module.exports = { index: ${JSON.stringify(payload.index)}, header: ${JSON.stringify(payload.header)}, size: ${payload.file.length}, file: ${JSON.stringify(basename(chunksFile))} };`, loader: 'js' }));
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
