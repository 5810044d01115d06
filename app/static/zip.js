// A ZIP archive of files stored as they are (no compression), built in the browser: the results
// are PNGs, already compressed, so deflating them again would cost time and save nothing, and
// storing needs no library. Layout (PKWARE APPNOTE 4.3): for each file a local header and its
// bytes, then the central directory and its end record. Names are UTF-8 (flag bit 11).

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function dosDateTime(date) {
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  const day = ((Math.max(date.getFullYear(), 1980) - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return { time, day };
}

// Names made unique ("a.png", "a-2.png", …): two photos of one name must not overwrite each other.
export function uniqueNames(names) {
  const seen = new Set();
  return names.map((name) => {
    let candidate = name;
    const dot = name.lastIndexOf(".");
    const stem = dot > 0 ? name.slice(0, dot) : name;
    const ext = dot > 0 ? name.slice(dot) : "";
    for (let k = 2; seen.has(candidate); k += 1) candidate = `${stem}-${k}${ext}`;
    seen.add(candidate);
    return candidate;
  });
}

// files: [{ name, data: Uint8Array }] → a Blob of type application/zip.
export function storedZip(files, date = new Date()) {
  const encoder = new TextEncoder();
  const { time, day } = dosDateTime(date);
  const names = uniqueNames(files.map((f) => f.name));
  const parts = [];
  const central = [];
  let offset = 0;
  files.forEach((file, i) => {
    const name = encoder.encode(names[i]);
    const size = file.data.length;
    const crc = crc32(file.data);
    // The fields a local header and its central directory entry share, from "version needed"
    // to the name's length (at 4 in the local header, at 6 in the entry).
    const shared = (view, at) => {
      view.setUint16(at, 20, true); // version needed: 2.0
      view.setUint16(at + 2, 0x0800, true); // UTF-8 names
      view.setUint16(at + 4, 0, true); // stored
      view.setUint16(at + 6, time, true);
      view.setUint16(at + 8, day, true);
      view.setUint32(at + 10, crc, true);
      view.setUint32(at + 14, size, true); // compressed size: stored, the same
      view.setUint32(at + 18, size, true);
      view.setUint16(at + 22, name.length, true);
    };
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); // local file header signature
    shared(local, 4);
    parts.push(local, name, file.data);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true); // central directory header signature
    entry.setUint16(4, 20, true); // made by: 2.0
    shared(entry, 6);
    entry.setUint32(42, offset, true); // where its local header starts
    central.push(entry, name);
    offset += 30 + name.length + size;
  });
  const directorySize = central.reduce((sum, part) => sum + part.byteLength, 0);
  if (offset + directorySize > 0xffffffff || files.length > 0xffff) {
    throw new Error("too much for one ZIP file (4 GiB or 65,535 files): download them one by one");
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); // end of central directory signature
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, directorySize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
