#!/usr/bin/env node
'use strict';
// pare compress -> ONNX Runtime: the model.onnx a job wrote runs in ONNX
// Runtime with the top-1 the job's report.json claims for it.
//
//   node compress.js --dir SAVE_DIR --data-dir DIR [--data-dir DIR ...]
//                    [--threads 2] [--tol-pp 0.1]
//
// Reads SAVE_DIR/report.json (metric top1, its sample count n on
// fashion-mnist:test), runs SAVE_DIR/model.onnx in ONNX Runtime (CPU, graph
// optimisation 'all') on the first n test images of the first --data-dir
// holding them (decoded by node, not by pare) and checks that ORT's top-1 is
// within --tol-pp percentage points of the report's "after" value.
// Exit codes: 0 pass, 1 fail, 2 bad usage, 77 skipped (ORT or data missing).

const fs = require('fs');
const path = require('path');
const fmnist = require('./fmnist');
const { SKIP, loadOrt, createSession, runArrays } = require('./ort');

function usage(msg) {
  if (msg) process.stderr.write(`compress: ${msg}\n`);
  process.stderr.write('usage: node compress.js --dir SAVE_DIR --data-dir DIR ... ' +
    '[--threads 2] [--tol-pp 0.1]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { threads: 2, tolPp: 0.1, dataDirs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--dir') o.dir = val();
    else if (a === '--data-dir') o.dataDirs.push(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--tol-pp') o.tolPp = Number(val());
    else usage(`unknown argument '${a}'`);
  }
  if (!o.dir) usage('--dir is required');
  return o;
}

async function main(argv) {
  const o = parseArgs(argv);
  const { ort, why } = loadOrt();
  if (!ort) {
    console.log(`SKIP compress: ${why}`);
    return SKIP;
  }
  const report = JSON.parse(fs.readFileSync(path.join(o.dir, 'report.json'), 'utf8'));
  if (!report.metric || report.metric.name !== 'top1' || report.metric.data !== 'fashion-mnist:test') {
    console.log('FAIL compress: report.json has no top-1 on fashion-mnist:test');
    return 1;
  }
  const found = fmnist.findSample(o.dataDirs);
  if (!found || !found.labels || !path.basename(found.images).startsWith('t10k')) {
    console.log(`SKIP compress: no Fashion-MNIST t10k images in ${o.dataDirs.join(', ')}`);
    return SKIP;
  }
  const n = report.metric.samples;
  const img = fmnist.loadImages(found.images, n);
  const labels = fmnist.loadLabels(found.labels, n);
  if (img.n !== n) {
    console.log(`SKIP compress: the data has ${img.n} test images, the report counts ${n}`);
    return SKIP;
  }
  const model = path.join(o.dir, 'model.onnx');
  let session;
  try {
    session = await createSession(ort, model, { threads: o.threads, opt: 'all' });
  } catch (err) {
    console.log(`FAIL compress: ONNX Runtime cannot load ${model}: ${err.message}`);
    return 1;
  }
  let hits = 0;
  const per = 28 * 28;
  for (let start = 0; start < n; start += 500) {
    const b = Math.min(500, n - start);
    const x = { dtype: 'f4', shape: [b, 1, 28, 28], data: img.data.subarray(start * per, (start + b) * per) };
    const out = await runArrays(ort, session, new Map([['input', x]]));
    const y = out.get(session.outputNames[0]);
    const cols = y.data.length / b;
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let c = 1; c < cols; c++) if (y.data[r * cols + c] > y.data[r * cols + best]) best = c;
      hits += best === labels[start + r] ? 1 : 0;
    }
  }
  const ortTop1 = 100 * hits / n;
  const pareTop1 = 100 * report.metric.after;
  const ok = Math.abs(ortTop1 - pareTop1) <= o.tolPp + 1e-9;
  console.log(`${ok ? 'PASS' : 'FAIL'} compress ${path.basename(o.dir)}: ORT top-1 ${ortTop1.toFixed(2)} %, ` +
    `pare's report ${pareTop1.toFixed(2)} % on ${n} test images (tolerance ${o.tolPp} pp)`);
  return ok ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.log(`FAIL compress: ${err.stack || err}`);
  process.exit(1);
});
