// Part of the bundle (see scripts/build.mjs): compiles an embedded command chunk on first use. A chunk's
// `require('gitops-core:<x>')` gets the main bundle's src/core/<x> module; anything else is Node's require.
'use strict';
const vm = require('node:vm');
const { index, packed } = require('gitops-chunks');
const core = require('gitops-core-modules');

const loaded = new Map();
let all;

function loadChunk(name) {
  if (loaded.has(name)) return loaded.get(name);
  const at = index[name];
  if (!Array.isArray(at)) throw new Error(`gitops-ci: command chunk ${name} is missing from the bundle`);
  all ??= require('node:zlib').brotliDecompressSync(Buffer.from(packed, 'base64'));
  const source = all.subarray(at[0], at[0] + at[1]).toString('utf8');
  const mod = { exports: {} };
  const chunkRequire = (id) => {
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
