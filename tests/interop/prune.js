#!/usr/bin/env node
'use strict';
// pare prune -> ONNX Runtime: the physically shrunk model pare writes runs in
// ONNX Runtime with the accuracy pare reports for it, and is smaller/faster.
//
//   node prune.js --pare PATH/TO/pare --model MODEL.onnx --workdir DIR
//                 --data-dir DIR [--data-dir DIR ...] [--ratio 0.5]
//                 [--threads 2] [--tol-pp 0.1] [--prune-arg ARG ...]
//                 [--pruned FILE.onnx]   (check this file instead of running pare prune)
//
// Steps:
//   prune   `pare prune MODEL -o DIR/pruned.onnx --ratio R --json [prune-args]`
//   pare    `pare eval DIR/pruned.onnx --data fashion-mnist:test --json`
//   ort     ONNX Runtime (CPU, optimisation 'all') runs DIR/pruned.onnx on the
//           same images decoded by node; its top-1 must be within --tol-pp of
//           pare's; the pruned file must be smaller than the original.
//   latency median ORT latency at batch 1 and 64 of the original and the pruned
//           model, side by side (printed, not asserted: shared machines vary).
//
// Exit codes: 0 pass, 1 fail, 2 bad usage, 77 skipped (ORT or data missing, or
// this pare has no `prune` command).

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const fmnist = require('./fmnist');
const { SKIP, loadOrt, createSession, runArrays } = require('./ort');

function usage(msg) {
  if (msg) process.stderr.write(`prune: ${msg}\n`);
  process.stderr.write('usage: node prune.js --pare PARE --model MODEL.onnx --workdir DIR ' +
    '--data-dir DIR ... [--ratio 0.5] [--threads 2] [--tol-pp 0.1] [--prune-arg ARG ...] ' +
    '[--pruned FILE.onnx]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { threads: 2, tolPp: 0.1, ratio: 0.5, dataDirs: [], pruneArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--pare') o.pare = val();
    else if (a === '--model') o.model = val();
    else if (a === '--workdir') o.workdir = val();
    else if (a === '--data-dir') o.dataDirs.push(val());
    else if (a === '--ratio') o.ratio = Number(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--tol-pp') o.tolPp = Number(val());
    else if (a === '--prune-arg') o.pruneArgs.push(val());
    else if (a === '--pruned') o.pruned = val();
    else usage(`unknown argument '${a}'`);
  }
  if (!o.pare || !o.model || !o.workdir) usage('--pare, --model and --workdir are required');
  if (!(o.ratio >= 0 && o.ratio < 1)) usage('--ratio must be in [0, 1)');
  if (!(o.tolPp >= 0)) usage('--tol-pp must be a non-negative number');
  return o;
}

function runPare(pare, args, env) {
  const r = spawnSync(pare, args, { encoding: 'utf8', maxBuffer: 64 << 20, env });
  if (r.error) return { ok: false, msg: `cannot run ${pare}: ${r.error.message}` };
  if (r.status !== 0) {
    const why = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
    return { ok: false, msg: `'pare ${args.join(' ')}' failed (${why}):\n${r.stderr}${r.stdout}` };
  }
  return { ok: true, stdout: r.stdout };
}

async function ortTop1(ort, model, img, labels, threads) {
  const session = await createSession(ort, model, { threads, opt: 'all' });
  const per = 28 * 28;
  let hits = 0;
  for (let start = 0; start < img.n; start += 500) {
    const n = Math.min(500, img.n - start);
    const x = { dtype: 'f4', shape: [n, 1, 28, 28], data: img.data.subarray(start * per, (start + n) * per) };
    const out = await runArrays(ort, session, new Map([['input', x]]));
    const y = out.get(session.outputNames[0]);
    const cols = y.data.length / n;
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let c = 1; c < cols; c++) if (y.data[r * cols + c] > y.data[r * cols + best]) best = c;
      hits += best === labels[start + r] ? 1 : 0;
    }
  }
  return 100 * hits / img.n;
}

// Median latency (ms) of `reps` runs at batch b after warm-up.
async function latency(ort, model, img, b, threads, reps) {
  const session = await createSession(ort, model, { threads, opt: 'all' });
  const x = { dtype: 'f4', shape: [b, 1, 28, 28], data: img.data.slice(0, b * 28 * 28) };
  const feeds = new Map([['input', x]]);
  for (let i = 0; i < 5; i++) await runArrays(ort, session, feeds);
  const t = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await runArrays(ort, session, feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((a, c) => a - c);
  return t[t.length >> 1];
}

async function main(argv) {
  const o = parseArgs(argv);
  const name = path.basename(o.model, '.onnx');
  const results = [];
  const check = (what, ok, detail) => {
    results.push(ok);
    console.log(`${ok ? 'PASS' : 'FAIL'} prune ${name} ${what}: ${detail}`);
  };

  const { ort, why } = loadOrt();
  if (!ort) {
    console.log(`SKIP prune ${name}: ${why}`);
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
    console.log(`SKIP prune ${name}: no Fashion-MNIST t10k images with labels in ${o.dataDirs.join(', ') || '(no --data-dir)'}`);
    return SKIP;
  }
  if (!fs.existsSync(o.pare)) {
    console.log(`FAIL prune ${name}: pare executable '${o.pare}' not found (build the 'pare' target)`);
    return 1;
  }
  const env = { ...process.env, PARE_FASHION_MNIST: dir };
  fs.mkdirSync(o.workdir, { recursive: true });
  let pPath = o.pruned;
  if (!pPath) {
    const help = spawnSync(o.pare, ['prune', '--help'], { encoding: 'utf8' });
    if (help.status !== 0) {
      console.log(`SKIP prune ${name}: this pare has no 'prune' command (register cmd_prune in tui/main.c)`);
      return SKIP;
    }
    pPath = path.join(o.workdir, 'pruned.onnx');
    fs.rmSync(pPath, { force: true });
    const p = runPare(o.pare, ['prune', o.model, '-o', pPath, '--ratio', String(o.ratio), '--json',
      ...o.pruneArgs], env);
    if (!p.ok) {
      check('pare prune', false, p.msg.trimEnd());
      return 1;
    }
    const pr = JSON.parse(p.stdout);
    console.log(`pare prune: ratio ${o.ratio}, ${pr.channels_removed} channels removed, params ` +
      `${pr.params_before} -> ${pr.params_after}, FLOPs ${pr.flops_before} -> ${pr.flops_after}`);
  }
  check('smaller', fs.statSync(pPath).size < fs.statSync(o.model).size,
    `${fs.statSync(o.model).size} -> ${fs.statSync(pPath).size} bytes`);

  const e = runPare(o.pare, ['eval', pPath, '--data', 'fashion-mnist:test', '--threads', String(o.threads), '--json'], env);
  if (!e.ok) {
    check('pare eval', false, e.msg.trimEnd());
    return 1;
  }
  const er = JSON.parse(e.stdout);
  const pareTop1 = 100 * er.accuracy.top1;
  const found = fmnist.findSample([dir]);
  const img = fmnist.loadImages(found.images);
  const labels = fmnist.loadLabels(found.labels);
  let ortPruned;
  try {
    ortPruned = await ortTop1(ort, pPath, img, labels, o.threads);
  } catch (err) {
    check('ORT load/run', false, `ONNX Runtime cannot run the pruned model: ${err.message}`);
    return 1;
  }
  const ortOrig = await ortTop1(ort, o.model, img, labels, o.threads);
  console.log(`${name} on ${img.n} test images: ORT original ${ortOrig.toFixed(2)} %, ORT pruned ` +
    `${ortPruned.toFixed(2)} %, pare pruned ${pareTop1.toFixed(2)} % (no fine-tuning)`);
  check('top-1', er.accuracy.n === img.n && Math.abs(ortPruned - pareTop1) <= o.tolPp + 1e-9,
    `|ORT ${ortPruned.toFixed(2)} - pare ${pareTop1.toFixed(2)}| = ${Math.abs(ortPruned - pareTop1).toFixed(2)} pp ` +
    `(tolerance ${o.tolPp} pp)`);
  for (const b of [1, 64]) {
    const reps = b === 1 ? 400 : 60;
    const a = await latency(ort, o.model, img, b, o.threads, reps);
    const p = await latency(ort, pPath, img, b, o.threads, reps);
    console.log(`ORT latency batch ${b}: original ${a.toFixed(3)} ms, pruned ${p.toFixed(3)} ms ` +
      `(${(a / p).toFixed(2)}x), ${o.threads} threads, median of ${reps}`);
  }
  const failed = results.filter((ok) => !ok).length;
  console.log(`prune ${name}: ${results.length - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`prune: ${err.stack || err}`);
    process.exit(1);
  },
);
