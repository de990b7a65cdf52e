#!/usr/bin/env node
'use strict';
// Self-test of the interop harness's own pieces (no ONNX Runtime, no pare):
// the NPY/NPZ codec against byte layouts numpy writes, and the IDX decoder.
// Run: node tests/interop/selftest.js   (ctest: interop.selftest)

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const npy = require('./npy');
const fmnist = require('./fmnist');

// Builds an NPY file the way numpy does: dict header, spaces, newline.
function numpyFile(descr, shape, fortran, payload, major = 1) {
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shp}, }`;
  const pre = major === 1 ? 10 : 12;
  h += ' '.repeat(64 - ((pre + h.length + 1) % 64)) + '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(head);
  if (major === 1) head.writeUInt16LE(h.length, 8);
  else head.writeUInt32LE(h.length, 8);
  return Buffer.concat([head, Buffer.from(h, 'latin1'), payload]);
}

// A zip entry the way Python's zipfile writes numpy's npz (force_zip64): the
// local header holds 0xffffffff sizes and a zip64 extra, the central directory
// holds the real sizes.
function pythonZip(entries, deflate) {
  const parts = [];
  const cds = [];
  let off = 0;
  for (const [name, raw] of entries) {
    const nm = Buffer.from(name);
    const comp = deflate ? zlib.deflateRawSync(raw) : raw;
    const crc = npy.crc32(raw);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(45, 4);
    lh.writeUInt16LE(deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(0xffffffff, 18);
    lh.writeUInt32LE(0xffffffff, 22);
    lh.writeUInt16LE(nm.length, 26);
    lh.writeUInt16LE(20, 28);
    const ex = Buffer.alloc(20);
    ex.writeUInt16LE(1, 0);
    ex.writeUInt16LE(16, 2);
    ex.writeBigUInt64LE(BigInt(raw.length), 4);
    ex.writeBigUInt64LE(BigInt(comp.length), 12);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(45, 6);
    ch.writeUInt16LE(deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(comp.length, 20);
    ch.writeUInt32LE(raw.length, 24);
    ch.writeUInt16LE(nm.length, 28);
    ch.writeUInt32LE(off, 42);
    parts.push(lh, nm, ex, comp);
    cds.push(ch, nm);
    off += 30 + nm.length + ex.length + comp.length;
  }
  const cd = Buffer.concat(cds);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cd, end]);
}

test('reads a numpy float32 file', () => {
  const payload = Buffer.from(new Float32Array([1.5, -2, 3.25, 0, 7, 8]).buffer);
  const a = npy.readNpy(numpyFile('<f4', [2, 3], false, payload));
  assert.equal(a.dtype, 'f4');
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual(Array.from(a.data), [1.5, -2, 3.25, 0, 7, 8]);
  assert.equal(a.fortranOrder, false);
});

test('reads big-endian, version 2, fortran, scalar, bool and float16', () => {
  const be = Buffer.alloc(12);
  [1, -2, 300].forEach((v, i) => be.writeInt32BE(v, 4 * i));
  const a = npy.readNpy(numpyFile('>i4', [3], false, be, 2));
  assert.deepEqual(Array.from(a.data), [1, -2, 300]);
  const f = npy.readNpy(numpyFile('<f8', [2, 2], true, Buffer.from(new Float64Array([1, 2, 3, 4]).buffer)));
  assert.equal(f.fortranOrder, true);
  const s = npy.readNpy(numpyFile('<i8', [], false, Buffer.from(new BigInt64Array([-5n]).buffer)));
  assert.deepEqual(s.shape, []);
  assert.equal(s.data[0], -5n);
  const b = npy.readNpy(numpyFile('|b1', [3], false, Buffer.from([1, 0, 1])));
  assert.equal(b.dtype, 'b1');
  assert.deepEqual(Array.from(b.data), [1, 0, 1]);
  // float16 1.0, -2.0, 0.5, 65504 (max), smallest subnormal
  const h = Buffer.alloc(10);
  [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001].forEach((v, i) => h.writeUInt16LE(v, 2 * i));
  const w = npy.readNpy(numpyFile('<f2', [5], false, h));
  assert.equal(w.dtype, 'f4');
  assert.deepEqual(Array.from(w.data), [1, -2, 0.5, 65504, Math.fround(Math.pow(2, -24))]);
});

test('rejects bad magic, truncation and unknown dtypes', () => {
  assert.throws(() => npy.readNpy(Buffer.from('not an npy file')), /bad magic/);
  const ok = numpyFile('<f4', [4], false, Buffer.alloc(16));
  assert.throws(() => npy.readNpy(ok.subarray(0, ok.length - 1)), /truncated data/);
  assert.throws(() => npy.readNpy(numpyFile('<c8', [1], false, Buffer.alloc(8))), /unsupported dtype/);
});

test('writes what numpy writes: header dict, 64-byte alignment, little-endian data', () => {
  const buf = npy.writeNpy({ dtype: 'f4', shape: [3], data: new Float32Array([0, 1, 2]) });
  assert.equal(buf.subarray(0, 8).toString('latin1'), '\x93NUMPY\x01\x00');
  const hlen = buf.readUInt16LE(8);
  assert.equal((10 + hlen) % 64, 0);
  const header = buf.toString('latin1', 10, 10 + hlen);
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/);
  assert.deepEqual(Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + hlen, buf.byteOffset + buf.length))), [0, 1, 2]);
  const one = npy.writeNpy({ dtype: 'u1', shape: [2, 1, 2], data: new Uint8Array([1, 2, 3, 4]) });
  assert.match(one.toString('latin1', 10, 10 + one.readUInt16LE(8)), /'descr': '\|u1'.*'shape': \(2, 1, 2\)/);
  assert.throws(() => npy.writeNpy({ dtype: 'f4', shape: [2, 2], data: new Float32Array(3) }), /needs 4/);
});

test('npy round trip for every writable dtype', () => {
  const cases = [
    ['f4', new Float32Array([1.25, -0, NaN, Infinity])],
    ['f8', new Float64Array([Math.PI, -1e300])],
    ['i1', new Int8Array([-128, 127])],
    ['u1', new Uint8Array([0, 255])],
    ['i4', new Int32Array([-2147483648, 5])],
    ['i8', new BigInt64Array([-(2n ** 63n), 42n])],
  ];
  for (const [dtype, data] of cases) {
    const back = npy.readNpy(npy.writeNpy({ dtype, shape: [data.length], data }));
    assert.equal(back.dtype, dtype);
    assert.ok(Buffer.from(back.data.buffer).equals(Buffer.from(data.buffer)), dtype);
  }
});

test('reads npz as numpy writes it (zip64 local headers), stored and deflated', () => {
  const x = numpyFile('<f4', [2], false, Buffer.from(new Float32Array([1, 2]).buffer));
  const y = numpyFile('<i8', [1], false, Buffer.from(new BigInt64Array([9n]).buffer));
  for (const deflate of [false, true]) {
    const m = npy.readNpz(pythonZip([['x.npy', x], ['logits.npy', y]], deflate));
    assert.deepEqual([...m.keys()], ['x', 'logits']);
    assert.deepEqual(Array.from(m.get('x').data), [1, 2]);
    assert.equal(m.get('logits').data[0], 9n);
  }
  const bad = pythonZip([['x.npy', x]], false);
  bad[30 + 5 + 20 + 70] ^= 0xff; // flip a data byte: CRC must catch it
  assert.throws(() => npy.readNpz(bad), /CRC/);
});

test('writeNpz output reads back, is a valid stored zip and is reproducible', () => {
  const m = new Map([
    ['logits', { dtype: 'f4', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ['idx', { dtype: 'i8', shape: [2], data: new BigInt64Array([0n, 1n]) }],
  ]);
  const z = npy.writeNpz(m);
  assert.ok(z.equals(npy.writeNpz(m)));
  assert.equal(z.readUInt32LE(0), 0x04034b50);
  assert.equal(z.readUInt16LE(8), 0); // stored, like np.savez
  const back = npy.readNpz(z);
  assert.deepEqual(back.get('logits').shape, [2, 2]);
  assert.deepEqual(Array.from(back.get('logits').data), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(back.get('idx').data), [0n, 1n]);
  assert.equal(npy.readArrays(z, 'input').size, 2);
  assert.equal(npy.readArrays(npy.writeNpy(m.get('idx')), 'input').get('input').shape[0], 2);
  // crc32 against a known value: crc32("123456789") = 0xcbf43926
  assert.equal(npy.crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('IDX decoder and normalisation', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pare-idx-'));
  try {
    const px = new Uint8Array(2 * 28 * 28);
    px[0] = 0; px[1] = 255; px[28 * 28] = 73;
    const head = Buffer.alloc(16);
    head.writeUInt32BE(0x00000803, 0);
    head.writeUInt32BE(2, 4);
    head.writeUInt32BE(28, 8);
    head.writeUInt32BE(28, 12);
    const file = path.join(dir, 't10k-images-idx3-ubyte.gz');
    fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([head, px])));
    const lab = Buffer.from([0, 0, 8, 1, 0, 0, 0, 2, 7, 3]);
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), lab);
    const found = fmnist.findSample([path.join(dir, 'missing'), dir]);
    assert.equal(found.images, file);
    const img = fmnist.loadImages(found.images, 256);
    assert.equal(img.n, 2);
    const f = Math.fround;
    assert.equal(img.data[0], f(f(0 - f(0.2860)) / f(0.3530)));
    assert.equal(img.data[1], f(f(1 - f(0.2860)) / f(0.3530)));
    assert.equal(img.data[28 * 28], f(f(f(73 / 255) - f(0.2860)) / f(0.3530)));
    assert.ok(Math.abs(img.data[1] - 2.0227) < 1e-3);
    assert.deepEqual(Array.from(fmnist.loadLabels(found.labels, 1)), [7]);
    fs.writeFileSync(path.join(dir, 'bad'), Buffer.from([1, 2, 3, 4]));
    assert.throws(() => fmnist.readIdx(path.join(dir, 'bad')), /bad magic/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
