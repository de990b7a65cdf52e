'use strict';
// NPY / NPZ reader and writer, compatible with numpy's np.save / np.load /
// np.savez / np.savez_compressed.
//
//   readNpy(buf)            -> { dtype, shape, data, fortranOrder }
//   writeNpy(arr)           -> Buffer        (arr = { dtype, shape, data })
//   readNpz(buf)            -> Map name -> array   (".npy" stripped from names)
//   writeNpz(entries)       -> Buffer        (entries: Map or object name -> array;
//                                             stored, no compression, like np.savez)
//
// dtype is numpy's short code without byte order: 'f4', 'f8', 'f2', 'i1', 'u1',
// 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'b1'. data is the matching TypedArray
// (f2 is widened to Float32Array on read; b1 reads as Uint8Array of 0/1).
// Big-endian files are byte-swapped on read. Fortran-order arrays are read as
// stored and flagged (fortranOrder: true): callers that need C order must refuse
// or transpose them. Zip files may be stored or deflated, with or without zip64
// records (numpy forces zip64 local headers).

const zlib = require('zlib');

const DTYPES = {
  f2: { size: 2, ctor: Float32Array },   // widened on read; never written
  f4: { size: 4, ctor: Float32Array },
  f8: { size: 8, ctor: Float64Array },
  i1: { size: 1, ctor: Int8Array },
  u1: { size: 1, ctor: Uint8Array },
  b1: { size: 1, ctor: Uint8Array },
  i2: { size: 2, ctor: Int16Array },
  u2: { size: 2, ctor: Uint16Array },
  i4: { size: 4, ctor: Int32Array },
  u4: { size: 4, ctor: Uint32Array },
  i8: { size: 8, ctor: BigInt64Array },
  u8: { size: 8, ctor: BigUint64Array },
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function fail(msg) {
  throw new Error(msg);
}

function dtypeOfTypedArray(data) {
  if (data instanceof Float32Array) return 'f4';
  if (data instanceof Float64Array) return 'f8';
  if (data instanceof Int8Array) return 'i1';
  if (data instanceof Uint8Array) return 'u1';
  if (data instanceof Int16Array) return 'i2';
  if (data instanceof Uint16Array) return 'u2';
  if (data instanceof Int32Array) return 'i4';
  if (data instanceof Uint32Array) return 'u4';
  if (data instanceof BigInt64Array) return 'i8';
  if (data instanceof BigUint64Array) return 'u8';
  return null;
}

function numel(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

// Parses the Python-literal header dict numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (256, 1, 28, 28), }
function parseHeader(text) {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape)
    fail(`npy: cannot parse header '${text.trim()}'`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const out = dims.map((s) => {
    const v = Number(s.replace(/L$/, ''));
    if (!Number.isInteger(v) || v < 0) fail(`npy: bad dimension '${s}' in shape`);
    return v;
  });
  return { descr: descr[1], fortranOrder: fortran[1] === 'True', shape: out };
}

function halfToFloat(h) {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * Math.pow(2, e - 15);
}

function readNpy(buf) {
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(buf);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC))
    fail('npy: not an NPY file (bad magic)');
  const major = buf[6];
  let hlen;
  let off;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    off = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail('npy: truncated header');
    hlen = buf.readUInt32LE(8);
    off = 12;
  } else {
    fail(`npy: unsupported format version ${major}.${buf[7]}`);
  }
  if (off + hlen > buf.length) fail('npy: truncated header');
  const hdr = parseHeader(buf.toString(major === 3 ? 'utf8' : 'latin1', off, off + hlen));
  off += hlen;

  const order = hdr.descr[0];
  const code = '<>|='.includes(order) ? hdr.descr.slice(1) : hdr.descr;
  const dt = code === 'b1' || code === '?' ? 'b1' : code;
  const info = DTYPES[dt];
  if (!info) fail(`npy: unsupported dtype '${hdr.descr}'`);
  const big = order === '>' && info.size > 1;
  const n = numel(hdr.shape);
  const nbytes = n * info.size;
  if (buf.length - off < nbytes)
    fail(`npy: truncated data: need ${nbytes} bytes, have ${buf.length - off}`);

  // Copy into an aligned buffer, swapping bytes if the file is big-endian.
  const raw = Buffer.from(buf.subarray(off, off + nbytes));
  if (big) {
    if (info.size === 2) raw.swap16();
    else if (info.size === 4) raw.swap32();
    else if (info.size === 8) raw.swap64();
  }
  let data;
  if (dt === 'f2') {
    data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = halfToFloat(raw.readUInt16LE(2 * i));
  } else {
    const ab = raw.buffer.slice(raw.byteOffset, raw.byteOffset + nbytes);
    data = new info.ctor(ab);
  }
  return { dtype: dt === 'f2' ? 'f4' : dt, shape: hdr.shape, data, fortranOrder: hdr.fortranOrder };
}

function writeNpy(arr) {
  const dtype = arr.dtype || dtypeOfTypedArray(arr.data);
  const info = DTYPES[dtype];
  if (!info || dtype === 'f2') fail(`npy: cannot write dtype '${dtype}'`);
  const shape = arr.shape;
  const n = numel(shape);
  if (arr.data.length !== n)
    fail(`npy: data has ${arr.data.length} elements, shape [${shape}] needs ${n}`);
  const descr = (info.size === 1 ? '|' : '<') + dtype;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // numpy pads with spaces so that magic + length + header + '\n' is a multiple of 64.
  let pre = 10;
  let total = pre + header.length + 1;
  if (total - pre > 0xffff) {
    pre = 12;
    total = pre + header.length + 1;
  }
  const pad = (64 - (total % 64)) % 64;
  header = header + ' '.repeat(pad) + '\n';
  const out = Buffer.alloc(pre + header.length + n * info.size);
  MAGIC.copy(out, 0);
  out[6] = pre === 10 ? 1 : 2;
  out[7] = 0;
  if (pre === 10) out.writeUInt16LE(header.length, 8);
  else out.writeUInt32LE(header.length, 8);
  out.write(header, pre, 'latin1');
  const bytes = Buffer.from(arr.data.buffer, arr.data.byteOffset, n * info.size);
  bytes.copy(out, pre + header.length);
  return out;
}

// ---- zip (npz) ------------------------------------------------------------

let crcTable = null;
function crc32(buf) {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(buf) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = crcTable[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function readU64(buf, off) {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('npz: zip64 value too large');
  return Number(v);
}

// Fills the 0xffffffff fields of a central-directory entry from its zip64 extra.
function applyZip64(extra, ent) {
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      if (ent.size === 0xffffffff) { ent.size = readU64(extra, q); q += 8; }
      if (ent.csize === 0xffffffff) { ent.csize = readU64(extra, q); q += 8; }
      if (ent.offset === 0xffffffff) { ent.offset = readU64(extra, q); q += 8; }
    }
    p += 4 + len;
  }
}

function readZip(buf) {
  // End of central directory: last 22..(22+65535) bytes.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) fail('npz: not a zip file (no end of central directory)');
  let count = buf.readUInt16LE(eocd + 10);
  let cdOff = buf.readUInt32LE(eocd + 16);
  if ((count === 0xffff || cdOff === 0xffffffff) && eocd >= 20 &&
      buf.readUInt32LE(eocd - 20) === 0x07064b50) {
    const z64 = readU64(buf, eocd - 20 + 8);
    if (buf.readUInt32LE(z64) !== 0x06064b50) fail('npz: bad zip64 end record');
    count = readU64(buf, z64 + 32);
    cdOff = readU64(buf, z64 + 48);
  }
  const files = [];
  let p = cdOff;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50)
      fail('npz: bad central directory entry');
    const ent = {
      method: buf.readUInt16LE(p + 10),
      crc: buf.readUInt32LE(p + 16),
      csize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      offset: buf.readUInt32LE(p + 42),
    };
    const nlen = buf.readUInt16LE(p + 28);
    const xlen = buf.readUInt16LE(p + 30);
    const clen = buf.readUInt16LE(p + 32);
    ent.name = buf.toString('utf8', p + 46, p + 46 + nlen);
    applyZip64(buf.subarray(p + 46 + nlen, p + 46 + nlen + xlen), ent);
    p += 46 + nlen + xlen + clen;

    const l = ent.offset;
    if (l + 30 > buf.length || buf.readUInt32LE(l) !== 0x04034b50)
      fail(`npz: bad local header for '${ent.name}'`);
    const start = l + 30 + buf.readUInt16LE(l + 26) + buf.readUInt16LE(l + 28);
    if (start + ent.csize > buf.length) fail(`npz: '${ent.name}' is truncated`);
    const comp = buf.subarray(start, start + ent.csize);
    let data;
    if (ent.method === 0) data = comp;
    else if (ent.method === 8) data = zlib.inflateRawSync(comp);
    else fail(`npz: '${ent.name}' uses unsupported compression method ${ent.method}`);
    if (data.length !== ent.size) fail(`npz: '${ent.name}' has the wrong size`);
    if (crc32(data) !== ent.crc) fail(`npz: '${ent.name}' fails its CRC check`);
    files.push({ name: ent.name, data });
  }
  return files;
}

function readNpz(buf) {
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(buf);
  const out = new Map();
  for (const f of readZip(buf)) {
    const name = f.name.endsWith('.npy') ? f.name.slice(0, -4) : f.name;
    out.set(name, readNpy(f.data));
  }
  return out;
}

// DOS date/time of 1980-01-01 00:00, fixed so that output is reproducible.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

function writeNpz(entries) {
  const list = entries instanceof Map ? [...entries] : Object.entries(entries);
  const parts = [];
  const central = [];
  let off = 0;
  for (const [key, arr] of list) {
    const name = Buffer.from(key.endsWith('.npy') ? key : key + '.npy', 'utf8');
    const data = writeNpy(arr);
    if (data.length >= 0xffffffff || off >= 0xffffffff)
      fail('npz: entries over 4 GiB are not supported by this writer');
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);           // version needed
    lh.writeUInt16LE(0, 6);            // flags
    lh.writeUInt16LE(0, 8);            // stored
    lh.writeUInt16LE(DOS_TIME, 10);
    lh.writeUInt16LE(DOS_DATE, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(0, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);           // version made by
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0, 8);
    ch.writeUInt16LE(0, 10);
    ch.writeUInt16LE(DOS_TIME, 12);
    ch.writeUInt16LE(DOS_DATE, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(off, 42);
    parts.push(lh, name, data);
    central.push(ch, name);
    off += 30 + name.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(list.length, 8);
  end.writeUInt16LE(list.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cd, end]);
}

// Reads a .npy (one array, returned under the name given by `defaultName`) or a
// .npz file by content, not by extension.
function readArrays(buf, defaultName) {
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(buf);
  if (buf.length >= 6 && buf.subarray(0, 6).equals(MAGIC))
    return new Map([[defaultName, readNpy(buf)]]);
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0x04034b50) return readNpz(buf);
  fail('neither an NPY nor an NPZ file');
}

module.exports = { readNpy, writeNpy, readNpz, writeNpz, readArrays, crc32, numel };
