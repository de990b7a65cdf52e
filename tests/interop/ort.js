'use strict';
// ONNX Runtime (onnxruntime-node) helpers shared by the interop tests and the
// benchmark. ORT is loaded from tests/interop/node_modules (tests/interop/setup.sh
// installs it); when it is missing, loadOrt() returns { ort: null, why }.

const path = require('path');

const SKIP = 77; // ctest SKIP_RETURN_CODE for the interop and bench tests

function loadOrt() {
  const dir = path.join(__dirname, 'node_modules', 'onnxruntime-node');
  try {
    return { ort: require(dir), why: null };
  } catch (e) {
    return {
      ort: null,
      why: `onnxruntime-node is not installed in ${path.dirname(dir)} ` +
        `(run tests/interop/setup.sh): ${String(e.message).split('\n')[0]}`,
    };
  }
}

// CPU session: `threads` intra-op threads, one inter-op thread, sequential
// execution, graph optimisation level 'all' unless told otherwise.
async function createSession(ort, model, opts = {}) {
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads || 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: opts.opt || 'all',
  });
}

const NP_TO_ORT = { f4: 'float32', f8: 'float64', i1: 'int8', u1: 'uint8', i2: 'int16',
  u2: 'uint16', i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64', b1: 'bool' };
const ORT_TO_NP = Object.fromEntries(Object.entries(NP_TO_ORT).map(([k, v]) => [v, k]));

function toOrtTensor(ort, arr) {
  const type = NP_TO_ORT[arr.dtype];
  if (!type) throw new Error(`no ONNX Runtime type for numpy dtype '${arr.dtype}'`);
  if (arr.fortranOrder) throw new Error('fortran-order arrays are not supported');
  return new ort.Tensor(type, arr.data, arr.shape);
}

function fromOrtTensor(t) {
  const dtype = ORT_TO_NP[t.type];
  if (!dtype) throw new Error(`cannot convert ONNX Runtime type '${t.type}' to numpy`);
  let data = t.data;
  if (t.type === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
  return { dtype, shape: Array.from(t.dims, Number), data };
}

// Runs `session` on a Map name -> numpy array. A single array whose name is not
// an input name is bound to the model's only input. Returns a Map name -> array.
async function runArrays(ort, session, arrays) {
  const feeds = {};
  const names = session.inputNames;
  if (arrays.size === 1 && names.length === 1 && !arrays.has(names[0])) {
    feeds[names[0]] = toOrtTensor(ort, arrays.values().next().value);
  } else {
    for (const n of names) {
      if (!arrays.has(n)) throw new Error(`no array for model input '${n}'`);
      feeds[n] = toOrtTensor(ort, arrays.get(n));
    }
  }
  const res = await session.run(feeds);
  const out = new Map();
  for (const n of session.outputNames) out.set(n, fromOrtTensor(res[n]));
  return out;
}

module.exports = { SKIP, loadOrt, createSession, toOrtTensor, fromOrtTensor, runArrays };
