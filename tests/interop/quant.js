#!/usr/bin/env node
'use strict';
// pare quant -> ONNX Runtime: the QDQ model pare writes gives in ONNX Runtime
// the top-1 pare reports for it.
//
//   node quant.js --pare PATH/TO/pare --model MODEL.onnx --workdir DIR
//                 --data-dir DIR [--data-dir DIR ...] [--threads 2]
//                 [--tol-pp 0.1] [--quant-arg ARG ...] [--expect-fused]
//
// Steps:
//   data    the first --data-dir holding Fashion-MNIST t10k images and labels
//           (the full set, else the 256-image sample); calibration uses the
//           train split when that directory has it, else the test images.
//   quant   `pare quant MODEL --data fashion-mnist:{train|test} -o DIR/model.onnx
//           --table DIR/calibration_table.txt --json [quant-args]`
//   pare    `pare eval DIR/model.onnx --data fashion-mnist:test --json`: pare's
//           top-1 on the test images.
//   ort     ONNX Runtime (CPU, graph optimisation 'all') runs DIR/model.onnx
//           on the same images (decoded by node, not by pare) in batches of
//           500; its top-1 must be within --tol-pp percentage points (0.1) of
//           pare's. Also printed: ORT's fp32 top-1.
//   fused   with --expect-fused: ORT's optimised graph (optimizedModelFilePath,
//           read back with `pare info --json`) must have no float Conv, Gemm
//           or MatMul left: every one became an integer kernel (QLinearConv,
//           QGemm, QLinearMatMul...), which is what makes int8 fast in ORT.
//   usage   `pare quant` refuses to overwrite its input, rejects an unknown
//           --algo and a strict unknown --skip name: exit code 2, the message
//           on stderr, nothing written.
//
// Exit codes: 0 pass, 1 fail, 2 bad usage, 77 skipped (ORT or data missing,
// or this pare has no `quant` command).

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const fmnist = require('./fmnist');
const { SKIP, loadOrt, createSession, runArrays } = require('./ort');

function usage(msg) {
  if (msg) process.stderr.write(`quant: ${msg}\n`);
  process.stderr.write('usage: node quant.js --pare PARE --model MODEL.onnx --workdir DIR ' +
    '--data-dir DIR ... [--threads 2] [--tol-pp 0.1] [--quant-arg ARG ...]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { threads: 2, tolPp: 0.1, dataDirs: [], quantArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--pare') o.pare = val();
    else if (a === '--model') o.model = val();
    else if (a === '--workdir') o.workdir = val();
    else if (a === '--data-dir') o.dataDirs.push(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--tol-pp') o.tolPp = Number(val());
    else if (a === '--quant-arg') o.quantArgs.push(val());
    else if (a === '--expect-fused') o.expectFused = true;
    else usage(`unknown argument '${a}'`);
  }
  if (!o.pare || !o.model || !o.workdir) usage('--pare, --model and --workdir are required');
  if (!(o.tolPp >= 0)) usage('--tol-pp must be a non-negative number');
  return o;
}

function runPare(pare, args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(pare, args, { encoding: 'utf8', maxBuffer: 64 << 20, env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) return { ok: false, ms, msg: `cannot run ${pare}: ${r.error.message}` };
  if (r.status !== 0) {
    const why = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
    return { ok: false, ms, status: r.status, msg: `'pare ${args.join(' ')}' failed (${why}):\n${r.stderr}${r.stdout}` };
  }
  return { ok: true, ms, stdout: r.stdout };
}

function argmaxRows(data, rows, cols, out, offset) {
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c] > data[r * cols + best]) best = c;
    out[offset + r] = best;
  }
}

// The op types of ORT's optimised graph of `model`, as `pare info` lists them.
async function ortOptimizedOps(ort, pare, model, workdir, threads) {
  const out = path.join(workdir, 'ort-optimized.onnx');
  fs.rmSync(out, { force: true });
  await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, graphOptimizationLevel: 'all',
    optimizedModelFilePath: out,
  });
  const r = runPare(pare, ['info', out, '--json'], process.env);
  if (!r.ok) throw new Error(r.msg);
  return JSON.parse(r.stdout).layers.map((l) => `${l.domain === 'ai.onnx' ? '' : `${l.domain}.`}${l.op}`);
}

// Top-1 (and per-image argmax) of a model in ONNX Runtime on all images.
async function ortPredict(ort, model, img, threads) {
  const session = await createSession(ort, model, { threads, opt: 'all' });
  const pred = new Int32Array(img.n);
  const per = 28 * 28;
  for (let start = 0; start < img.n; start += 500) {
    const n = Math.min(500, img.n - start);
    const x = { dtype: 'f4', shape: [n, 1, 28, 28], data: img.data.subarray(start * per, (start + n) * per) };
    const out = await runArrays(ort, session, new Map([['input', x]]));
    const y = out.get(session.outputNames[0]);
    argmaxRows(y.data, n, y.data.length / n, pred, start);
  }
  return pred;
}

async function main(argv) {
  const o = parseArgs(argv);
  const name = path.basename(o.model, '.onnx');
  const results = [];
  const check = (what, ok, detail) => {
    results.push(ok);
    console.log(`${ok ? 'PASS' : 'FAIL'} quant ${name} ${what}: ${detail}`);
  };

  const { ort, why } = loadOrt();
  if (!ort) {
    console.log(`SKIP quant ${name}: ${why}`);
    return SKIP;
  }
  let dir = null;
  for (const d of o.dataDirs) {
    const found = fmnist.findSample([d]);
    if (found && found.labels && path.basename(found.images).startsWith('t10k')) {
      dir = d;
      break;
    }
  }
  if (!dir) {
    console.log(`SKIP quant ${name}: no Fashion-MNIST t10k images with labels in ${o.dataDirs.join(', ') || '(no --data-dir)'}`);
    return SKIP;
  }
  if (!fs.existsSync(o.pare)) {
    console.log(`FAIL quant ${name}: pare executable '${o.pare}' not found (build the 'pare' target)`);
    return 1;
  }
  const help = spawnSync(o.pare, ['quant', '--help'], { encoding: 'utf8' });
  if (help.status !== 0) {
    console.log(`SKIP quant ${name}: this pare has no 'quant' command (register cmd_quant in tui/main.c)`);
    return SKIP;
  }
  fs.mkdirSync(o.workdir, { recursive: true });
  const found = fmnist.findSample([dir]);
  const hasTrain = fs.readdirSync(dir).some((f) => f.startsWith('train-images-idx'));
  const calib = hasTrain ? 'fashion-mnist:train' : 'fashion-mnist:test';
  const env = { ...process.env, PARE_FASHION_MNIST: dir };

  // 1. quantize
  const qPath = path.join(o.workdir, 'model.onnx');
  const tPath = path.join(o.workdir, 'calibration_table.txt');
  fs.rmSync(qPath, { force: true });
  const q = runPare(o.pare, ['quant', o.model, '--data', calib, '-o', qPath, '--table', tPath,
    '--threads', String(o.threads), '--json', ...o.quantArgs], env);
  if (!q.ok) {
    check('pare quant', false, q.msg.trimEnd());
    return 1;
  }
  const qr = JSON.parse(q.stdout);
  console.log(`pare quant: ${qr.quantize_linear} QuantizeLinear, ${qr.dequantize_linear} DequantizeLinear, ` +
    `algo ${qr.algo}, preset ${qr.preset}, calibration ${calib} (${qr.samples} samples), ${q.ms.toFixed(0)} ms`);
  check('table', fs.existsSync(tPath) &&
    fs.readFileSync(tPath, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).length === qr.quantize_linear,
  `${tPath} has one line per quantized activation`);

  // 2. pare's top-1 on the QDQ model
  const e = runPare(o.pare, ['eval', qPath, '--data', 'fashion-mnist:test', '--threads', String(o.threads), '--json'], env);
  if (!e.ok) {
    check('pare eval', false, e.msg.trimEnd());
    return 1;
  }
  const er = JSON.parse(e.stdout);
  const pareTop1 = 100 * er.accuracy.top1;

  // 3. ONNX Runtime on the same images
  const img = fmnist.loadImages(found.images);
  const labels = fmnist.loadLabels(found.labels);
  let pred;
  try {
    pred = await ortPredict(ort, qPath, img, o.threads);
  } catch (err) {
    check('ORT load/run', false, `ONNX Runtime cannot run pare's QDQ model: ${err.message}`);
    return 1;
  }
  const pred32 = await ortPredict(ort, o.model, img, o.threads);
  let hits = 0, hits32 = 0;
  for (let i = 0; i < img.n; i++) {
    hits += pred[i] === labels[i] ? 1 : 0;
    hits32 += pred32[i] === labels[i] ? 1 : 0;
  }
  const ortTop1 = 100 * hits / img.n;
  console.log(`${name} on ${img.n} test images: ORT fp32 ${(100 * hits32 / img.n).toFixed(2)} %, ` +
    `ORT int8 QDQ ${ortTop1.toFixed(2)} %, pare int8 QDQ ${pareTop1.toFixed(2)} % (pare's n = ${er.accuracy.n})`);
  check('top-1', er.accuracy.n === img.n && Math.abs(ortTop1 - pareTop1) <= o.tolPp + 1e-9,
    `|ORT ${ortTop1.toFixed(2)} - pare ${pareTop1.toFixed(2)}| = ${Math.abs(ortTop1 - pareTop1).toFixed(2)} pp ` +
    `(tolerance ${o.tolPp} pp)`);

  // 4. which integer kernels ORT fused the model into
  if (o.expectFused) {
    let ops;
    try {
      ops = await ortOptimizedOps(ort, o.pare, qPath, o.workdir, o.threads);
    } catch (err) {
      check('fused', false, `cannot read ORT's optimised graph: ${err.message}`);
      return 1;
    }
    const count = (re) => ops.filter((op) => re.test(op)).length;
    const float = count(/^(Conv|Gemm|MatMul|com\.microsoft\.FusedConv|com\.microsoft\.FusedGemm)$/);
    const integer = count(/^com\.microsoft\.(QLinear(Conv|MatMul)|QGemm)$|^(QLinearConv|QLinearMatMul)$/);
    check('fused', float === 0 && integer > 0,
      `ORT's optimised graph: ${integer} integer Conv/Gemm/MatMul kernels, ${float} left in float`);
  }

  // 5. bad usage: exit code 2, a message, nothing written
  const copy = path.join(o.workdir, 'input-copy.onnx');
  fs.copyFileSync(o.model, copy);
  const before = fs.readFileSync(copy);
  const bad = (what, args, want) => {
    const r = spawnSync(o.pare, ['quant', copy, '--data', calib, ...args], { encoding: 'utf8', env });
    const out = path.join(o.workdir, 'bad.onnx');
    check(`usage: ${what}`, r.status === 2 && r.stderr.includes(want) && !fs.existsSync(out) &&
      fs.readFileSync(copy).equals(before),
    `exit ${r.status}, stderr ${JSON.stringify(r.stderr.split('\n')[0])}`);
  };
  fs.rmSync(path.join(o.workdir, 'bad.onnx'), { force: true });
  bad('overwrite input', ['-o', copy], 'refusing to overwrite the input model');
  bad('unknown algo', ['-o', path.join(o.workdir, 'bad.onnx'), '--algo', 'KLL'], "did you mean 'KL'?");
  bad('layouts', ['-o', path.join(o.workdir, 'bad.onnx'), '--outputs', '--inputs-only'],
    '--outputs and --inputs-only contradict each other');
  bad('strict skip', ['-o', path.join(o.workdir, 'bad.onnx'), '--skip', 'no_such_tensor', '--strict'],
    "'no_such_tensor' is not a value of the model");

  const failed = results.filter((ok) => !ok).length;
  console.log(`quant ${name}: ${results.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`quant: ${err.stack || err}`);
    process.exit(1);
  },
);
