// Part of the bundle (see scripts/build.mjs): compiles an embedded command chunk on first use. A chunk's
// `require('gitops-core:<x>')` gets the main bundle's src/core/<x> module; anything else is Node's require.
'use strict';
const vm = require('node:vm');
const chunks = require('gitops-chunks');
const core = require('gitops-core-modules');

const loaded = new Map();

function loadChunk(name) {
  if (loaded.has(name)) return loaded.get(name);
  const packed = chunks[name];
  if (typeof packed !== 'string') throw new Error(`gitops-ci: command chunk ${name} is missing from the bundle`);
  const source = require('node:zlib').gunzipSync(Buffer.from(packed, 'base64')).toString('utf8');
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
