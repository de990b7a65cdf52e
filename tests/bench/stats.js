'use strict';
// Latency statistics shared by the benchmark scripts.
// Percentiles interpolate linearly between order statistics (numpy's default,
// and what `pare bench` does): position q * (n - 1) in the sorted samples, so
// the median of an even count is the mean of the two middle samples.

function sorted(xs) {
  return Float64Array.from(xs).sort();
}

function percentile(xs, p) {
  const s = sorted(xs);
  const n = s.length;
  if (n === 0) return NaN;
  const pos = (p / 100) * (n - 1);
  const lo = Math.floor(pos);
  if (lo + 1 >= n) return s[n - 1];
  return s[lo] + (pos - lo) * (s[lo + 1] - s[lo]);
}

function median(xs) {
  return percentile(xs, 50);
}

function summary(xs) {
  let sum = 0;
  let min = Infinity;
  for (const x of xs) {
    sum += x;
    if (x < min) min = x;
  }
  return { median: median(xs), p90: percentile(xs, 90), mean: sum / xs.length, min };
}

module.exports = { median, percentile, summary };
