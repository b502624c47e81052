// Part of the bundle (see scripts/build.mjs): decompresses and compiles an embedded command chunk on first use. A chunk's
// `require('gitops-core:<x>')` gets the main bundle's src/core/<x> module; anything else is Node's require.
'use strict';
const vm = require('node:vm');
const { index, marker } = require('gitops-chunks');
const core = require('gitops-core-modules');

const loaded = new Map();
let streams;

/** the base64 streams after the marker in this very file (scripts/build.mjs), read once */
function streamsText() {
  if (streams === undefined) {
    const file = require('node:fs').readFileSync(__filename, 'latin1');
    const at = file.lastIndexOf(marker);
    if (at < 0) throw new Error(`gitops-ci: ${__filename} holds no command chunks (a broken build?)`);
    streams = file.slice(at + marker.length);
  }
  return streams;
}

function loadChunk(name) {
  if (loaded.has(name)) return loaded.get(name);
  const at = index[name];
  if (!Array.isArray(at)) throw new Error(`gitops-ci: command chunk ${name} is missing from the bundle`);
  const b64 = streamsText().slice(at[0], at[0] + at[1]);
  const source = require('node:zlib').brotliDecompressSync(Buffer.from(b64, 'base64')).toString('utf8');
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
  const fn = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: `${__filename} [${name}]` });
  fn.call(mod.exports, mod.exports, chunkRequire, mod, __filename, __dirname);
  loaded.set(name, mod.exports);
  return mod.exports;
}

module.exports = { loadChunk };
