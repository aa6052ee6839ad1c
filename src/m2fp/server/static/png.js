// PNG files written in the page, so that downloads have the same format as the API's: a
// 1-bit greyscale mask, an 8-bit greyscale mask (grey agnostic masks) or an 8-bit palette
// label map. zlib comes from the browser (CompressionStream "deflate"); no metadata chunks.

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i += 1) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function deflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function png(width, height, bitDepth, colourType, rows, palette = null) {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([bitDepth, colourType, 0, 0, 0], 8);
  const parts = [Uint8Array.from(SIGNATURE), chunk("IHDR", header)];
  if (palette) parts.push(chunk("PLTE", palette));
  parts.push(chunk("IDAT", await deflate(rows)), chunk("IEND", new Uint8Array(0)));
  return new Blob(parts, { type: "image/png" });
}

/** A mask (1 = set) as a 1-bit greyscale PNG: set pixels white, as PIL's mode "1". */
export function maskPng1Bit(mask, width, height) {
  const stride = Math.ceil(width / 8);
  const rows = new Uint8Array((stride + 1) * height); // each row: filter byte 0, then bits
  for (let y = 0; y < height; y += 1) {
    const row = y * (stride + 1) + 1;
    for (let x = 0; x < width; x += 1) {
      if (mask[y * width + x]) rows[row + (x >> 3)] |= 0x80 >> (x & 7);
    }
  }
  return png(width, height, 1, 0, rows);
}

/** An 8-bit greyscale PNG of the values (0/127 for the grey agnostic variant). */
export function greyPng(values, width, height) {
  const rows = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y += 1) {
    rows.set(values.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  return png(width, height, 8, 0, rows);
}

/** A label map as an 8-bit palette PNG: pixel value = class id, `palette` [[r, g, b]...]. */
export function palettePng(labels, width, height, palette) {
  const rows = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y += 1) {
    rows.set(labels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  return png(width, height, 8, 3, rows, Uint8Array.from(palette.flat()));
}
