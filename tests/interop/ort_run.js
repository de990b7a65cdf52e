#!/usr/bin/env node
'use strict';
// Runs an ONNX model in ONNX Runtime on arrays from a .npy or .npz file and
// writes every model output to an .npz, the same contract as `pare run`:
//
//   node ort_run.js MODEL --input x.npy|x.npz --output y.npz
//                   [--threads N] [--opt disabled|basic|extended|all]
//
// A single .npy is bound to the model's only input; an .npz binds arrays by
// input name. Exit codes: 0 ok, 1 run failed, 2 bad usage, 77 ONNX Runtime
// is not installed (run tests/interop/setup.sh).

const fs = require('fs');
const npy = require('./npy');
const { SKIP, loadOrt, createSession, runArrays } = require('./ort');

function usage(msg) {
  if (msg) process.stderr.write(`ort_run: ${msg}\n`);
  process.stderr.write('usage: node ort_run.js MODEL --input x.npy|x.npz --output y.npz ' +
    '[--threads N] [--opt disabled|basic|extended|all]\n');
  process.exit(2);
}

async function main(argv) {
  const opts = { threads: 2, opt: 'all' };
  let model = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--input') opts.input = val();
    else if (a === '--output') opts.output = val();
    else if (a === '--threads') opts.threads = Number(val());
    else if (a === '--opt') opts.opt = val();
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option '${a}'`);
    else if (model === null) model = a;
    else usage(`unexpected argument '${a}'`);
  }
  if (!model || !opts.input || !opts.output) usage('MODEL, --input and --output are required');
  if (!Number.isInteger(opts.threads) || opts.threads < 1) usage('--threads must be a positive integer');

  const { ort, why } = loadOrt();
  if (!ort) {
    process.stderr.write(`ort_run: skipped: ${why}\n`);
    return SKIP;
  }
  const arrays = npy.readArrays(fs.readFileSync(opts.input), 'input');
  const session = await createSession(ort, model, opts);
  const outs = await runArrays(ort, session, arrays);
  const tmp = `${opts.output}.tmp${process.pid}`;
  fs.writeFileSync(tmp, npy.writeNpz(outs));
  fs.renameSync(tmp, opts.output);
  return 0;
}

main(process.argv.slice(2)).then(
  (rc) => process.exit(rc),
  (e) => {
    process.stderr.write(`ort_run: ${e.message}\n`);
    process.exit(1);
  });
