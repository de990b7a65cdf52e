#!/usr/bin/env node
'use strict';
// Times one model in ONNX Runtime the way `pare bench` times it in pare:
// one session (CPU, `threads` intra-op threads, graph optimisation 'all'),
// one fixed input, `warmup` untimed runs, then `repeat` timed runs; per-run
// latency is the wall time of one session.run (input already built, output
// tensors returned). Prints one JSON object:
//
//   { "tool": "onnxruntime-node", "version", "model", "batch", "threads",
//     "warmup", "repeat", "median_ms", "p90_ms", "mean_ms", "min_ms",
//     "throughput_ips", "peak_rss_mb" }
//
//   node ort_bench.js --model M.onnx --batch B [--threads 2] [--warmup 20]
//                     [--repeat 200] [--images IDX.gz]
//
// The input is the first B Fashion-MNIST test images (normalised) when
// --images is given, else a fixed pseudo-random N(0,1)-like tensor.
// Exit codes: 0 ok, 1 failed, 2 bad usage, 77 ONNX Runtime not installed.

const path = require('path');
const interop = path.join(__dirname, '..', 'interop');
const { SKIP, loadOrt, createSession } = require(path.join(interop, 'ort'));
const fmnist = require(path.join(interop, 'fmnist'));
const stats = require('./stats');

function usage(msg) {
  if (msg) process.stderr.write(`ort_bench: ${msg}\n`);
  process.stderr.write('usage: node ort_bench.js --model M.onnx --batch B [--threads 2] ' +
    '[--warmup 20] [--repeat 200] [--images IDX.gz]\n');
  process.exit(2);
}

function input(batch, images) {
  const px = 28 * 28;
  const data = new Float32Array(batch * px);
  if (images) {
    const img = fmnist.loadImages(images, batch);
    for (let i = 0; i < batch; i++) data.set(img.data.subarray((i % img.n) * px, (i % img.n + 1) * px), i * px);
  } else {
    let s = 12345;
    for (let i = 0; i < data.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[i] = ((s >>> 8) / (1 << 24) - 0.5) * 3.4;
    }
  }
  return data;
}

async function main(argv) {
  const o = { threads: 2, warmup: 20, repeat: 200 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--model') o.model = val();
    else if (a === '--batch') o.batch = Number(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--warmup') o.warmup = Number(val());
    else if (a === '--repeat') o.repeat = Number(val());
    else if (a === '--images') o.images = val();
    else usage(`unknown argument '${a}'`);
  }
  if (!o.model) usage('--model is required');
  for (const k of ['batch', 'threads', 'repeat'])
    if (!Number.isInteger(o[k]) || o[k] < 1) usage(`--${k} must be a positive integer`);
  if (!Number.isInteger(o.warmup) || o.warmup < 0) usage('--warmup must be a non-negative integer');

  const { ort, why } = loadOrt();
  if (!ort) {
    process.stderr.write(`ort_bench: skipped: ${why}\n`);
    return SKIP;
  }
  const session = await createSession(ort, o.model, { threads: o.threads, opt: 'all' });
  const feeds = {
    [session.inputNames[0]]: new ort.Tensor('float32', input(o.batch, o.images), [o.batch, 1, 28, 28]),
  };
  for (let i = 0; i < o.warmup; i++) await session.run(feeds);
  const ms = new Float64Array(o.repeat);
  for (let i = 0; i < o.repeat; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const s = stats.summary(ms);
  const out = {
    tool: 'onnxruntime-node',
    version: ort.env.versions.node || ort.env.versions.common,
    model: o.model,
    batch: o.batch,
    threads: o.threads,
    warmup: o.warmup,
    repeat: o.repeat,
    median_ms: s.median,
    p90_ms: s.p90,
    mean_ms: s.mean,
    min_ms: s.min,
    throughput_ips: (o.batch * 1000) / s.median,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (rc) => process.exit(rc),
  (e) => {
    process.stderr.write(`ort_bench: ${e.message}\n`);
    process.exit(1);
  });
