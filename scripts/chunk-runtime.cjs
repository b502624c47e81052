// Part of the bundle (see scripts/build.mjs): reads and compiles a command chunk from gitops-ci.chunks on first use.
// A chunk's `require('gitops-core:<x>')` gets the main bundle's src/core/<x> module; anything else is Node's require.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { index, header, size, file } = require('gitops-chunks');
const core = require('gitops-core-modules');

/** name -> its module, entered before its code runs (as Node's require does: a cycle gets the exports so far) */
const loaded = new Map();
/** the chunks file, opened once: the same file for the whole run, even if a build replaces it meanwhile */
let chunks;

/** the bundle's own path with symlinks resolved: /usr/local/bin/gitops-ci and node_modules/.bin/gitops-ci are links */
function bundlePath() {
  try {
    return fs.realpathSync(__filename);
  } catch {
    return __filename;
  }
}

function readAt(fd, length, position) {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** opens gitops-ci.chunks beside the bundle and checks that its header is this build's */
function openChunks() {
  if (chunks) return chunks;
  const bundle = bundlePath();
  const where = path.join(path.dirname(bundle), file);
  const errors = core.bundle();
  // a build renames the bundle, then the chunks (scripts/build.mjs): a CLI started between the two sees the old
  // chunks for a moment
  for (let attempt = 0; ; attempt++) {
    let fd;
    try {
      fd = fs.openSync(where, 'r');
    } catch (e) {
      throw errors.chunksMissing(where, bundle, e);
    }
    let head;
    try {
      head = readAt(fd, header.length, 0).toString('latin1');
    } catch (e) {
      fs.closeSync(fd);
      throw errors.chunksMissing(where, bundle, e);
    }
    // the whole file is checked here, once: a command loads the code it imports as it first uses it (see
    // lazyImports in scripts/build.mjs), so a file cut short must be refused before the command starts
    const actual = head === header ? fs.fstatSync(fd).size : -1;
    if (actual === size) return (chunks = { fd, where, bundle });
    fs.closeSync(fd);
    if (attempt === 10) {
      const firstLine = head.split('\n')[0].replace(/[^\x20-\x7e]/g, '?');
      if (head === header) throw errors.chunksMismatch(where, bundle, `it holds ${actual} bytes, the build wrote ${size} (cut short or changed since)`);
      throw errors.chunksMismatch(where, bundle, head.startsWith('gitops-ci-chunks ') ? `it starts "${firstLine}", the bundle wants "${header.trim()}"` : `it does not start with "gitops-ci-chunks " (the bundle wants "${header.trim()}")`);
    }
    sleep(50);
  }
}

function loadChunk(name) {
  if (loaded.has(name)) return loaded.get(name).exports;
  const at = index[name];
  if (!Array.isArray(at)) throw new Error(`gitops-ci: command chunk ${name} is missing from the bundle`);
  const { fd, where, bundle } = openChunks();
  const buf = readAt(fd, at[1], header.length + at[0]);
  if (buf.length !== at[1]) throw core.bundle().chunksMismatch(where, bundle, `it ends at byte ${fs.fstatSync(fd).size}, before the end of chunk ${name} (byte ${header.length + at[0] + at[1]})`);
  const source = buf.toString('utf8');
  const mod = { exports: {} };
  const chunkRequire = (id) => {
    // a chunk shared between commands (scripts/build.mjs)
    if (id.startsWith('./')) return loadChunk(id.slice(2).replace(/\.js$/, ''));
    if (id.startsWith('gitops-core:')) {
      const get = core[id.slice('gitops-core:'.length)];
      if (!get) throw new Error(`gitops-ci: ${id} is not a core module`);
      return get();
    }
    return require(id);
  };
  const fn = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: `${where} [${name}]` });
  loaded.set(name, mod);
  try {
    fn.call(mod.exports, mod.exports, chunkRequire, mod, __filename, __dirname);
  } catch (e) {
    loaded.delete(name);
    throw e;
  }
  return mod.exports;
}

module.exports = { loadChunk };
