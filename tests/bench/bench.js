#!/usr/bin/env node
'use strict';
// pare vs ONNX Runtime latency benchmark (run it through tests/bench/run.sh).
//
// For every model and batch size, pare (`pare bench MODEL --batch B --threads T
// --warmup W --repeat R --json`) and ONNX Runtime (ort_bench.js: same threads,
// warm-up and number of timed runs of one fixed input) are measured in the same
// run. The measurements are interleaved to spread machine noise over both:
// `--rounds K` passes over all (model, batch) pairs, and within each pair the
// tool that goes first alternates from one round to the next. Each tool's
// figure is the median over rounds of its per-round median (and p90) per-run
// latency; with one round it is simply that round's median and p90.
//
// Prints: model, batch, pare median/p90 ms, ORT median/p90 ms, ratio
// pare/ORT (medians), target (<= 2 at batch 1, <= 1.5 at larger batches) and
// pass/miss, plus peak RSS of each process. `--write-docs` writes the same
// table, the machine and the versions into docs/benchmarks.md (or --docs PATH).
//
// Exit codes: 0 every measurement was made (a "miss" is not a failure:
// benchmarks are not timed tests), 1 a measurement failed, 2 bad usage,
// 77 pare or ONNX Runtime is missing (nothing to compare).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync, execFileSync } = require('child_process');
const stats = require('./stats');

const ROOT = path.resolve(__dirname, '..', '..');
const SKIP = 77;

function usage(msg) {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(`usage: tests/bench/run.sh [--pare PATH] [--models a,b,...] [--batches 1,64]
       [--threads 2] [--warmup 20] [--repeat 200] [--rounds 3] [--budget 20]
       [--write-docs] [--docs PATH] [--json PATH]
  --pare     pare executable (default: $PARE, else build/tui/pare, else the newest build*/tui/pare)
  --models   model names in tests/data or .onnx paths (default: lenet5,resnet8,resnet8_bn,tiny_vit)
  --repeat   timed runs per tool per round; --warmup untimed runs before them
  --rounds   interleaved passes over all (model, batch) pairs
  --budget   seconds per tool per pair per round: fewer runs (never under 5, the
             same for both tools) where one run is slow; 0 = always --repeat
  --write-docs  write docs/benchmarks.md (or --docs PATH) with the table
  --json     also write every raw measurement to PATH\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    pare: process.env.PARE || null,
    models: ['lenet5', 'resnet8', 'resnet8_bn', 'tiny_vit'],
    batches: [1, 64], threads: 2, warmup: 20, repeat: 200, rounds: 3,
    budget: 20, writeDocs: false, docs: path.join(ROOT, 'docs', 'benchmarks.md'), json: null,
  };
  const ints = (s, what) => s.split(',').map((x) => {
    const v = Number(x);
    if (!Number.isInteger(v) || v < 1) usage(`${what}: '${x}' is not a positive integer`);
    return v;
  });
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`'${a}' needs a value`));
    if (a === '--pare') o.pare = val();
    else if (a === '--models') o.models = val().split(',').filter(Boolean);
    else if (a === '--batches') o.batches = ints(val(), '--batches');
    else if (a === '--threads') [o.threads] = ints(val(), '--threads');
    else if (a === '--warmup') o.warmup = Number(val());
    else if (a === '--repeat') [o.repeat] = ints(val(), '--repeat');
    else if (a === '--rounds') [o.rounds] = ints(val(), '--rounds');
    else if (a === '--budget') o.budget = Number(val());
    else if (a === '--write-docs') o.writeDocs = true;
    else if (a === '--docs') o.docs = path.resolve(val());
    else if (a === '--json') o.json = path.resolve(val());
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument '${a}'`);
  }
  if (!Number.isInteger(o.warmup) || o.warmup < 0) usage('--warmup must be a non-negative integer');
  if (!(o.budget >= 0)) usage('--budget must be a non-negative number of seconds');
  return o;
}

function findPare() {
  const cands = [path.join(ROOT, 'build', 'tui', 'pare')];
  for (const d of fs.readdirSync(ROOT)) {
    if (d.startsWith('build')) cands.push(path.join(ROOT, d, 'tui', 'pare'));
  }
  const found = cands.filter((p) => fs.existsSync(p));
  if (found.length === 0) return null;
  if (fs.existsSync(cands[0])) return cands[0];
  return found.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

function modelPath(m) {
  return m.endsWith('.onnx') ? path.resolve(m) : path.join(ROOT, 'tests', 'data', `${m}.onnx`);
}

function target(batch) {
  return batch === 1 ? 2 : 1.5;
}

// Finds the figures for `batch` in pare's JSON, whatever its nesting: the
// object holding a numeric *median* field (and `batch`, when several do).
function pareFigures(doc, batch) {
  // pare's own layout: { results: [ { batch, latency_ms: { median, p90 },
  //                                   memory: { max_rss_bytes } } ] }
  const res = doc && Array.isArray(doc.results) ? doc.results.find((r) => r && r.batch === batch) : null;
  if (res && res.latency_ms && typeof res.latency_ms.median === 'number') {
    const rss = res.memory && typeof res.memory.max_rss_bytes === 'number' ? res.memory.max_rss_bytes / 2 ** 20 : null;
    return { median: res.latency_ms.median, p90: res.latency_ms.p90, rssMb: rss };
  }
  const hits = [];
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      if (Object.keys(v).some((k) => /median/i.test(k) && typeof v[k] === 'number')) hits.push(v);
      Object.values(v).forEach(walk);
    }
  };
  walk(doc);
  const batchOf = (h) => h.batch ?? h.batch_size ?? h.n;
  const hit = hits.find((h) => batchOf(h) === batch) || (hits.length === 1 ? hits[0] : null);
  if (!hit) return null;
  const pick = (re) => {
    const k = Object.keys(hit).find((key) => re.test(key) && typeof hit[key] === 'number');
    return k === undefined ? null : hit[k];
  };
  // peak memory: prefer the process max RSS; fall back to any *peak* figure.
  let rss = null;
  const walkRss = (v) => {
    if (rss !== null || !v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'number' && /rss/i.test(k)) {
        rss = /kb|kib/i.test(k) ? x / 1024 : /mb|mib/i.test(k) ? x : x / (1024 * 1024);
        return;
      }
    }
    Object.values(v).forEach(walkRss);
  };
  walkRss(hit);
  if (rss === null) walkRss(doc);
  return { median: pick(/median/i), p90: pick(/p90/i), rssMb: rss };
}

function runPare(o, model, batch, warmup, repeat) {
  const args = ['bench', model, '--batch', String(batch), '--threads', String(o.threads),
    '--warmup', String(warmup), '--repeat', String(repeat), '--json'];
  const r = spawnSync(o.pare, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
    return { err: `'pare ${args.join(' ')}' failed (${why}): ${(r.stderr || '').trim()}` };
  }
  let doc;
  try {
    doc = JSON.parse(r.stdout);
  } catch (e) {
    return { err: `pare bench printed no valid JSON (${e.message}): ${r.stdout.slice(0, 200)}` };
  }
  const f = pareFigures(doc, batch);
  if (!f || typeof f.median !== 'number')
    return { err: `no median latency for batch ${batch} in pare's JSON: ${r.stdout.slice(0, 300)}` };
  return { ...f, raw: doc };
}

function runOrt(o, model, batch, warmup, repeat, images) {
  const args = [path.join(__dirname, 'ort_bench.js'), '--model', model, '--batch', String(batch),
    '--threads', String(o.threads), '--warmup', String(warmup), '--repeat', String(repeat)];
  if (images) args.push('--images', images);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status === SKIP) return { skip: (r.stderr || '').trim() };
  if (r.error || r.status !== 0)
    return { err: `ort_bench failed (${r.error ? r.error.message : `exit ${r.status}`}): ${(r.stderr || '').trim()}` };
  const doc = JSON.parse(r.stdout);
  return { median: doc.median_ms, p90: doc.p90_ms, rssMb: doc.peak_rss_mb, raw: doc };
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (e) {
    return null;
  }
}

function machine(o, ortVersion) {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const cpu = (/^model name\s*:\s*(.*)$/m.exec(cpuinfo) || [])[1] || os.cpus()[0]?.model || 'unknown';
  const pareVersion = sh(o.pare, ['--version']);
  const gcc = sh('gcc', ['--version']);
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: sh('nproc', []) || String(os.cpus().length),
    cpu,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    pare: pareVersion ? pareVersion.split('\n')[0] : 'pare (version unknown)',
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || 'unknown',
    gcc: gcc ? gcc.split('\n')[0] : 'unknown',
    openblas: sh('pkg-config', ['--modversion', 'openblas']) || 'unknown',
    ort: ortVersion || 'unknown',
    node: process.version,
  };
}

const fmt = (x, d = 3) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');

function rows(results) {
  return results.map((r) => {
    const ratio = r.pare.median / r.ort.median;
    return {
      model: r.model, batch: r.batch, runs: r.runs,
      pare: fmt(r.pare.median), pareP90: fmt(r.pare.p90),
      ort: fmt(r.ort.median), ortP90: fmt(r.ort.p90),
      ratio: fmt(ratio, 2), target: `<= ${target(r.batch)}`,
      verdict: ratio <= target(r.batch) ? 'pass' : 'miss',
      pareMb: fmt(r.pare.rssMb, 1), ortMb: fmt(r.ort.rssMb, 1),
    };
  });
}

const COLS = [
  ['model', 'model'], ['batch', 'batch'], ['runs', 'runs'], ['pare', 'pare ms'], ['pareP90', 'pare p90'],
  ['ort', 'ORT ms'], ['ortP90', 'ORT p90'], ['ratio', 'pare/ORT'], ['target', 'target'],
  ['verdict', 'result'], ['pareMb', 'pare RSS MB'], ['ortMb', 'ORT RSS MB'],
];

function textTable(rs) {
  const w = COLS.map(([k, h]) => Math.max(h.length, ...rs.map((r) => String(r[k]).length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(COLS.map((c) => c[1])), line(w.map((n) => '-'.repeat(n))),
    ...rs.map((r) => line(COLS.map(([k]) => r[k])))].join('\n');
}

function mdTable(rs) {
  const head = `| ${COLS.map((c) => c[1]).join(' | ')} |`;
  const sep = `|${COLS.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`;
  return [head, sep, ...rs.map((r) => `| ${COLS.map(([k]) => r[k]).join(' | ')} |`)].join('\n');
}

function docsText(o, m, rs) {
  return `# Benchmarks

Inference latency of pare against ONNX Runtime on the reference models
(\`tests/data\`, Fashion-MNIST, fp32, input [N, 1, 28, 28]), measured side by side
in the same run on the same machine. Written by \`tests/bench/run.sh --write-docs\`;
re-run it to refresh this page.

## Method

* Both engines use ${o.threads} threads: \`pare bench --threads ${o.threads}\`, and ONNX Runtime
  (npm \`onnxruntime-node\`, CPU execution provider) with ${o.threads} intra-op threads,
  1 inter-op thread, sequential execution and graph optimisation level \`all\`.
* Same procedure for both: load the model once, build one fixed input,
  up to ${o.warmup} untimed warm-up runs, then up to ${o.repeat} timed runs per round (the
  \`runs\` column gives the timed runs over all rounds; where one run is slow the
  count is cut to fit ${o.budget} s per engine per round, never below 5, the same for
  both engines); the per-run latency is the wall time of one forward pass. pare times itself inside \`pare bench\`;
  ONNX Runtime is timed by \`tests/bench/ort_bench.js\` around \`session.run\`.
  Process start-up and model loading are not timed.
* The two are interleaved: ${o.rounds} round(s) over every (model, batch) pair, and
  the engine that goes first alternates between rounds. A figure is the median
  over rounds of the per-round median (or p90) latency; percentiles
  interpolate linearly between samples, in pare and here alike.
* Targets: pare's median latency at most 2x ONNX Runtime's at batch 1 and at
  most 1.5x at batch 64. "miss" is reported, not failed: the benchmark is not a
  timed test (ctest runs only \`bench.smoke\`, which checks that the harness works).
* RSS is each process's peak resident set size (getrusage), model and runtime
  included; ORT's figure includes the node runtime (about 40 MB by itself).
* Latencies on these shared machines move by tens of percent between separate
  runs: compare the two engines only within one run, never across runs.

## Results

* Date: ${m.date}
* Machine: ${m.nproc} CPUs (nproc), ${m.cpu}, ${m.memGiB} GiB RAM, ${m.kernel};
  load average at the end of the run ${m.load} (1, 5, 15 min)
* Versions: ${m.pare} (commit ${m.commit}), ${m.gcc}, OpenBLAS ${m.openblas},
  onnxruntime-node ${m.ort}, node ${m.node}
* Command: \`tests/bench/run.sh --threads ${o.threads} --warmup ${o.warmup} --repeat ${o.repeat} --rounds ${o.rounds} --budget ${o.budget} --write-docs\`

Latency in milliseconds (median, and p90), lower is better; ratio = pare / ORT median.

${mdTable(rs)}
`;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!o.pare) o.pare = findPare();
  if (!o.pare || !fs.existsSync(o.pare)) {
    console.log(`skipped: no pare executable (${o.pare || 'none found'}); build the 'pare' target or pass --pare`);
    return SKIP;
  }
  const models = o.models.map((m) => ({ name: path.basename(m, '.onnx'), file: modelPath(m) }));
  for (const m of models) {
    if (!fs.existsSync(m.file)) usage(`model '${m.file}' not found`);
  }
  const imgDirs = [path.join(ROOT, 'tests', 'data', 'fmnist-sample'), '/usr/share/datasets/fashion-mnist'];
  const found = require('../interop/fmnist').findSample(imgDirs);
  const images = found ? found.images : null;

  console.log(`bench: pare ${o.pare}, ${models.length} model(s) x batches ${o.batches.join(',')}, ` +
    `${o.threads} threads, warm-up ${o.warmup}, ${o.repeat} timed runs x ${o.rounds} round(s), ` +
    `budget ${o.budget || 'none'}${o.budget ? ' s' : ''}`);
  const acc = new Map();
  let ortVersion = null;
  let failed = 0;

  // Run counts per (model, batch), the same for both tools: --repeat, fewer
  // where one run of the slower tool would blow --budget (probed once).
  const plan = new Map();
  for (const m of models) {
    for (const batch of o.batches) {
      let repeat = o.repeat;
      let warmup = o.warmup;
      if (o.budget > 0) {
        const p = runPare(o, m.file, batch, 0, 1);
        const q = runOrt(o, m.file, batch, 0, 1, images);
        const slow = Math.max(p.median || 0, q.median || 0);
        if (slow > 0) {
          repeat = Math.max(Math.min(5, o.repeat), Math.min(o.repeat, Math.floor((o.budget * 1000) / slow)));
          warmup = Math.min(o.warmup, repeat);
        }
      }
      plan.set(`${m.name}@${batch}`, { warmup, repeat });
    }
  }
  for (let round = 0; round < o.rounds; round++) {
    for (const m of models) {
      for (const batch of o.batches) {
        const key = `${m.name}@${batch}`;
        const { warmup, repeat } = plan.get(key);
        if (!acc.has(key)) acc.set(key, { model: m.name, batch, warmup, repeat, pare: [], ort: [], raw: [] });
        const a = acc.get(key);
        const order = round % 2 === 0 ? ['pare', 'ort'] : ['ort', 'pare'];
        for (const tool of order) {
          const r = tool === 'pare' ? runPare(o, m.file, batch, warmup, repeat)
            : runOrt(o, m.file, batch, warmup, repeat, images);
          if (r.skip) {
            console.log(`skipped: ${r.skip}`);
            return SKIP;
          }
          if (r.err) {
            console.log(`FAIL ${key} ${tool}: ${r.err}`);
            failed++;
            continue;
          }
          if (tool === 'ort') ortVersion = r.raw.version;
          a[tool].push(r);
          a.raw.push({ round, tool, ...r.raw });
          console.log(`  round ${round + 1} ${key.padEnd(16)} ${tool.padEnd(4)} ${warmup}+${repeat} runs: ` +
            `median ${fmt(r.median)} ms, p90 ${fmt(r.p90)} ms`);
        }
      }
    }
  }

  const results = [];
  for (const a of acc.values()) {
    if (a.pare.length === 0 || a.ort.length === 0) continue;
    const agg = (xs) => ({
      median: stats.median(xs.map((x) => x.median)),
      p90: xs.every((x) => typeof x.p90 === 'number') ? stats.median(xs.map((x) => x.p90)) : null,
      rssMb: xs.every((x) => typeof x.rssMb === 'number') ? Math.max(...xs.map((x) => x.rssMb)) : null,
    });
    results.push({ model: a.model, batch: a.batch, runs: a.repeat * o.rounds, pare: agg(a.pare), ort: agg(a.ort) });
  }
  const rs = rows(results);
  console.log('');
  console.log(textTable(rs));
  const pass = rs.filter((r) => r.verdict === 'pass').length;
  if (rs.length !== models.length * o.batches.length) {
    console.log(`bench: only ${rs.length} of ${models.length * o.batches.length} (model, batch) pairs were measured by both tools`);
    failed++;
  }
  console.log(`\ntargets: ${pass} of ${rs.length} met (pare/ORT <= 2 at batch 1, <= 1.5 otherwise)`);

  if (o.json) {
    fs.writeFileSync(o.json, JSON.stringify({ options: o, results, raw: [...acc.values()].map((a) => a.raw) }, null, 2));
    console.log(`raw measurements written to ${o.json}`);
  }
  if (o.writeDocs && rs.length > 0) {
    const tmp = `${o.docs}.tmp${process.pid}`;
    fs.writeFileSync(tmp, docsText(o, machine(o, ortVersion), rs));
    fs.renameSync(tmp, o.docs);
    console.log(`wrote ${o.docs}`);
  }
  if (failed) {
    console.log(`bench: ${failed} measurement(s) failed`);
    return 1;
  }
  return 0;
}

process.exit(main());
