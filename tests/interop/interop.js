#!/usr/bin/env node
'use strict';
// pare <-> ONNX Runtime interop test for one model.
//
//   node interop.js --pare PATH/TO/pare --model MODEL.onnx --workdir DIR
//                   [--images IDX.gz --labels IDX.gz | --data-dir DIR ...]
//                   [--n 256] [--tol 1e-4] [--threads 2] [--only run|convert]
//
// What it checks (docs/interop.md has the long form):
//   input   the first N Fashion-MNIST images, decoded from the gzip IDX file by
//           node's zlib (not by pare), normalised x = (p/255 - 0.2860)/0.3530,
//           written to DIR/input.npy as float32 [N, 1, 28, 28].
//   sanity  ONNX Runtime's top-1 on those images is >= 80 % (the reference models
//           score 88-92 %): a wrong input pipeline fails here, not silently.
//   control ONNX Runtime run twice on the original model gives bit-identical
//           outputs (without that, the bit-exact check below would mean nothing).
//   run     `pare run MODEL --input input.npy --output pare.npz --threads T`: every output
//           has ORT's shape, max |pare - ORT| <= tol (1e-4), and the argmax of
//           every row is identical for all N images.
//   convert `pare convert MODEL DIR/converted.onnx`, then the converted model in
//           ONNX Runtime: same input/output names, outputs bit-identical (max
//           diff 0) to ONNX Runtime on the original.
//
// Exit codes: 0 all checks passed, 1 a check failed, 2 bad usage,
// 77 skipped (ONNX Runtime not installed, or no Fashion-MNIST images found).

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const npy = require('./npy');
const fmnist = require('./fmnist');
const { SKIP, loadOrt, createSession, runArrays } = require('./ort');

function usage(msg) {
  if (msg) process.stderr.write(`interop: ${msg}\n`);
  process.stderr.write('usage: node interop.js --pare PARE --model MODEL.onnx --workdir DIR ' +
    '[--images IDX.gz --labels IDX.gz | --data-dir DIR ...] [--n 256] [--tol 1e-4] ' +
    '[--threads 2] [--only run|convert]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { n: 256, tol: 1e-4, threads: 2, dataDirs: [], only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--pare') o.pare = val();
    else if (a === '--model') o.model = val();
    else if (a === '--workdir') o.workdir = val();
    else if (a === '--images') o.images = val();
    else if (a === '--labels') o.labels = val();
    else if (a === '--data-dir') o.dataDirs.push(val());
    else if (a === '--n') o.n = Number(val());
    else if (a === '--tol') o.tol = Number(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--only') o.only = val();
    else usage(`unknown argument '${a}'`);
  }
  if (!o.pare || !o.model || !o.workdir) usage('--pare, --model and --workdir are required');
  if (!Number.isInteger(o.n) || o.n < 1) usage('--n must be a positive integer');
  if (!(o.tol >= 0)) usage('--tol must be a non-negative number');
  if (o.only && o.only !== 'run' && o.only !== 'convert') usage("--only takes 'run' or 'convert'");
  return o;
}

// max |a - b| over all elements; NaN anywhere counts as an infinite difference.
function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function argmaxRows(arr) {
  const rows = arr.shape[0];
  const cols = arr.data.length / rows;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (arr.data[r * cols + c] > arr.data[r * cols + best]) best = c;
    out[r] = best;
  }
  return out;
}

function sameBits(a, b) {
  const x = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return a.dtype === b.dtype && x.equals(y);
}

function sameShape(a, b) {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

function runPare(pare, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(pare, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) return { ok: false, ms, msg: `cannot run ${pare}: ${r.error.message}` };
  if (r.status !== 0) {
    const why = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
    return { ok: false, ms, msg: `'pare ${args.join(' ')}' failed (${why}):\n${r.stderr}${r.stdout}` };
  }
  return { ok: true, ms };
}

async function main(argv) {
  const o = parseArgs(argv);
  const name = path.basename(o.model, '.onnx');
  const results = [];
  const check = (what, ok, detail) => {
    results.push(ok);
    console.log(`${ok ? 'PASS' : 'FAIL'} ${name} ${what}: ${detail}`);
  };

  const { ort, why } = loadOrt();
  if (!ort) {
    console.log(`SKIP ${name}: ${why}`);
    return SKIP;
  }
  let images = o.images;
  let labels = o.labels;
  if (!images) {
    const found = fmnist.findSample(o.dataDirs);
    if (!found) {
      console.log(`SKIP ${name}: no Fashion-MNIST image IDX file in ${o.dataDirs.join(', ') || '(no --data-dir)'}`);
      return SKIP;
    }
    images = found.images;
    labels = found.labels;
  }
  if (!fs.existsSync(o.pare)) {
    console.log(`FAIL ${name}: pare executable '${o.pare}' not found (build the 'pare' target)`);
    return 1;
  }
  fs.mkdirSync(o.workdir, { recursive: true });

  // Input, decoded independently of pare.
  const img = fmnist.loadImages(images, o.n);
  if (img.n !== o.n) {
    console.log(`FAIL ${name}: ${images} holds only ${img.n} images, ${o.n} requested`);
    return 1;
  }
  const x = { dtype: 'f4', shape: [o.n, 1, 28, 28], data: img.data };
  const xPath = path.join(o.workdir, 'input.npy');
  fs.writeFileSync(xPath, npy.writeNpy(x));
  console.log(`input: ${o.n} images from ${images} -> ${xPath}`);

  // ONNX Runtime on the original model, twice.
  const inputs = new Map([['input', x]]);
  const session = await createSession(ort, o.model, { threads: o.threads, opt: 'all' });
  const ref = await runArrays(ort, session, inputs);
  const ref2 = await runArrays(ort, session, inputs);
  const outNames = session.outputNames;
  const first = ref.get(outNames[0]);

  if (labels) {
    const y = fmnist.loadLabels(labels, o.n);
    const am = argmaxRows(first);
    let hits = 0;
    for (let i = 0; i < o.n; i++) hits += am[i] === y[i] ? 1 : 0;
    check('sanity', hits >= 0.8 * o.n,
      `ONNX Runtime top-1 on the ${o.n} images = ${hits}/${o.n} (${(100 * hits / o.n).toFixed(2)} %), need >= 80 %`);
  } else {
    console.log(`note: no label IDX file next to ${images}: the accuracy sanity check is skipped`);
  }
  check('control', outNames.every((n) => sameBits(ref.get(n), ref2.get(n))),
    'ONNX Runtime is deterministic on this model (two runs bit-identical)');

  if (o.only !== 'convert') {
    const yPath = path.join(o.workdir, 'pare.npz');
    fs.rmSync(yPath, { force: true });
    const r = runPare(o.pare, ['run', o.model, '--input', xPath, '--output', yPath, '--threads', String(o.threads)]);
    if (!r.ok) {
      check('run', false, r.msg.trimEnd());
    } else {
      const got = npy.readNpz(fs.readFileSync(yPath));
      for (const n of outNames) {
        const want = ref.get(n);
        const have = got.get(n) || (got.size === 1 && outNames.length === 1 ? got.values().next().value : null);
        if (!have) {
          check(`run '${n}'`, false, `pare's output has no '${n}' (has: ${[...got.keys()].join(', ')})`);
          continue;
        }
        if (!sameShape(have, want) || have.dtype !== want.dtype) {
          check(`run '${n}'`, false, `pare gives ${have.dtype} [${have.shape}], ONNX Runtime ${want.dtype} [${want.shape}]`);
          continue;
        }
        const d = maxAbsDiff(have.data, want.data);
        check(`run '${n}'`, d <= o.tol,
          `max |pare - ORT| = ${d.toExponential(3)} (tolerance ${o.tol}), pare run took ${r.ms.toFixed(0)} ms`);
        if (want.dtype === 'f4' && want.shape.length === 2) {
          const a = argmaxRows(have);
          const b = argmaxRows(want);
          let same = 0;
          for (let i = 0; i < a.length; i++) same += a[i] === b[i] ? 1 : 0;
          check(`run '${n}' argmax`, same === a.length, `identical on ${same}/${a.length} rows`);
        }
      }
    }
  }

  if (o.only !== 'run') {
    const cPath = path.join(o.workdir, 'converted.onnx');
    fs.rmSync(cPath, { force: true });
    const r = runPare(o.pare, ['convert', o.model, cPath]);
    if (!r.ok) {
      check('convert', false, r.msg.trimEnd());
    } else {
      let conv = null;
      try {
        conv = await createSession(ort, cPath, { threads: o.threads, opt: 'all' });
      } catch (e) {
        check('convert', false, `ONNX Runtime cannot load pare's converted model: ${e.message}`);
      }
      if (conv) {
        const same = fs.readFileSync(cPath).equals(fs.readFileSync(o.model));
        console.log(`convert: ${cPath} has ${fs.statSync(cPath).size} bytes (original ${fs.statSync(o.model).size}), ` +
          `byte-identical to the original: ${same ? 'yes' : 'no'}; pare convert took ${r.ms.toFixed(0)} ms`);
        const namesOk = JSON.stringify(conv.inputNames) === JSON.stringify(session.inputNames) &&
          JSON.stringify(conv.outputNames) === JSON.stringify(session.outputNames);
        check('convert names', namesOk,
          `inputs [${conv.inputNames}] outputs [${conv.outputNames}] ` +
          `(original [${session.inputNames}] [${session.outputNames}])`);
        if (namesOk) {
          const got = await runArrays(ort, conv, inputs);
          for (const n of outNames) {
            const have = got.get(n);
            const want = ref.get(n);
            const d = sameShape(have, want) ? maxAbsDiff(have.data, want.data) : Infinity;
            check(`convert '${n}'`, sameShape(have, want) && sameBits(have, want),
              `ORT(converted) vs ORT(original): max diff ${d === 0 ? '0' : d.toExponential(3)}, ` +
              `bit-identical: ${sameBits(have, want) ? 'yes' : 'no'}`);
          }
          if (outNames.some((n) => !sameBits(got.get(n), ref.get(n)))) {
            // Diagnostic only: with ORT's graph optimiser off, is the difference
            // still there (the converted graph computes something else) or not
            // (the optimiser fused the two graphs differently)?
            const a = await runArrays(ort, await createSession(ort, o.model, { threads: o.threads, opt: 'disabled' }), inputs);
            const b = await runArrays(ort, await createSession(ort, cPath, { threads: o.threads, opt: 'disabled' }), inputs);
            for (const n of outNames) {
              const ok = sameShape(a.get(n), b.get(n));
              console.log(`note: with graphOptimizationLevel 'disabled', '${n}' max diff = ` +
                `${ok ? maxAbsDiff(a.get(n).data, b.get(n).data) : 'shape mismatch'}`);
            }
          }
        }
      }
    }
  }

  const failed = results.filter((ok) => !ok).length;
  console.log(`${name}: ${results.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (rc) => process.exit(rc),
  (e) => {
    console.log(`FAIL interop: ${e.stack || e.message}`);
    process.exit(1);
  });
