// A minimal Prometheus remote-write 1.0 encoder: a protobuf WriteRequest, snappy
// block-compressed with literals only (valid snappy, just not smaller). Enough for
// tests to push exact samples and find them again with a query.
//
//   const body = encodeWriteRequest([{ labels: { __name__: 'x', a: 'b' }, value: 1, timestampMs: Date.now() }]);
//   fetch(url, { method: 'POST', headers: REMOTE_WRITE_HEADERS, body });

export const REMOTE_WRITE_HEADERS = {
  'Content-Type': 'application/x-protobuf',
  'Content-Encoding': 'snappy',
  'X-Prometheus-Remote-Write-Version': '0.1.0',
};

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

// A length-delimited field (wire type 2).
function lenField(num, payload) {
  return Buffer.concat([varint((num << 3) | 2), varint(payload.length), payload]);
}

function label(name, value) {
  return Buffer.concat([lenField(1, Buffer.from(name)), lenField(2, Buffer.from(value))]);
}

function sample(value, timestampMs) {
  const d = Buffer.alloc(8);
  d.writeDoubleLE(value);
  // value: field 1, 64-bit (wire type 1); timestamp: field 2, varint.
  return Buffer.concat([Buffer.from([(1 << 3) | 1]), d, varint((2 << 3) | 0), varint(timestampMs)]);
}

/** Protobuf WriteRequest for [{labels: {name: value}, value, timestampMs}]. */
export function writeRequestProto(series) {
  const parts = series.map(({ labels, value, timestampMs }) => {
    // Prometheus requires labels sorted by name.
    const names = Object.keys(labels).sort();
    const ls = names.map((n) => lenField(1, label(n, labels[n])));
    return lenField(1, Buffer.concat([...ls, lenField(2, sample(value, timestampMs))]));
  });
  return Buffer.concat(parts);
}

/** Snappy block format, literal elements only. */
export function snappyLiteral(data) {
  const out = [varint(data.length)];
  for (let off = 0; off < data.length; off += 65536) {
    const chunk = data.subarray(off, Math.min(off + 65536, data.length));
    const n = chunk.length - 1;
    if (n < 60) out.push(Buffer.from([n << 2]));
    else if (n < 256) out.push(Buffer.from([60 << 2, n]));
    else out.push(Buffer.from([61 << 2, n & 0xff, n >> 8]));
    out.push(chunk);
  }
  return Buffer.concat(out);
}

export function encodeWriteRequest(series) {
  return snappyLiteral(writeRequestProto(series));
}
