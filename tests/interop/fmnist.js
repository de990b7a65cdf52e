'use strict';
// Fashion-MNIST IDX reader (gzip or plain), independent of pare: it decodes the
// files with node's own zlib, so a bug in pare's data loader cannot hide here.
//
//   readIdx(path)                 -> { type, dims, data: Uint8Array }
//   loadImages(path, limit)       -> { n, data: Float32Array (n*1*28*28) } normalised
//   loadLabels(path, limit)       -> Uint8Array
//   findSample(dirs)              -> { images, labels } paths, first match wins
//
// Normalisation is the reference models' (tests/data, shared/models/README.md):
// x = (p / 255 - 0.2860) / 0.3530, computed in float32 like the exporter's
// torchvision pipeline: ToTensor divides in float32, Normalize subtracts and
// divides in float32.

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const MEAN = 0.2860;
const STD = 0.3530;

function readIdx(file) {
  let buf = fs.readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0)
    throw new Error(`${file}: not an IDX file (bad magic)`);
  const type = buf[2];
  const ndim = buf[3];
  if (type !== 0x08) throw new Error(`${file}: IDX type 0x${type.toString(16)} is not uint8`);
  const dims = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const off = 4 + 4 * ndim;
  const n = dims.reduce((a, b) => a * b, 1);
  if (buf.length - off < n) throw new Error(`${file}: truncated IDX data`);
  return { type, dims, data: new Uint8Array(buf.buffer, buf.byteOffset + off, n) };
}

function loadImages(file, limit) {
  const idx = readIdx(file);
  if (idx.dims.length !== 3 || idx.dims[1] !== 28 || idx.dims[2] !== 28)
    throw new Error(`${file}: expected [N, 28, 28] images, got [${idx.dims}]`);
  const n = Math.min(limit || idx.dims[0], idx.dims[0]);
  const px = 28 * 28;
  const out = new Float32Array(n * px);
  const f = Math.fround;
  for (let i = 0; i < n * px; i++) {
    const v = f(idx.data[i] / 255);
    out[i] = f(f(v - f(MEAN)) / f(STD));
  }
  return { n, data: out };
}

function loadLabels(file, limit) {
  const idx = readIdx(file);
  if (idx.dims.length !== 1) throw new Error(`${file}: expected [N] labels, got [${idx.dims}]`);
  const n = Math.min(limit || idx.dims[0], idx.dims[0]);
  return idx.data.slice(0, n);
}

// Looks for t10k (or any) image/label IDX files in the given directories.
function findSample(dirs) {
  for (const dir of dirs) {
    if (!dir || !fs.existsSync(dir)) continue;
    const names = fs.readdirSync(dir).sort();
    const pick = (kind) =>
      names.find((n) => n.startsWith('t10k') && n.includes(`${kind}-idx`)) ||
      names.find((n) => n.includes(`${kind}-idx`));
    const images = pick('images');
    if (images) {
      const labels = pick('labels');
      return {
        images: path.join(dir, images),
        labels: labels ? path.join(dir, labels) : null,
      };
    }
  }
  return null;
}

module.exports = { readIdx, loadImages, loadLabels, findSample, MEAN, STD };
