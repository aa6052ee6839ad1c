// What a chosen file really is, from its first bytes (its "magic"), before it is sent: a
// renamed text file or an iPhone HEIC saved as .jpg is refused here with its real name, so an
// honest mistake never reaches the server (where each rejected upload counts towards a pause).

const HEAD_BYTES = 16;
// ISO-BMFF brands (bytes 8..11 after "ftyp") of the HEIF family: HEIC photos and AVIF.
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);
const AVIF_BRANDS = new Set(["avif", "avis"]);

function ascii(bytes, start, end) {
  return String.fromCharCode(...bytes.slice(start, end));
}

/**
 * The kind of the bytes `head` (a Uint8Array of the file's first bytes): "jpeg", "png" (what
 * the server accepts), "heic", "avif", "webp", "gif", "bmp", "tiff", "pdf", or "unknown".
 */
export function kindOf(head) {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  if (ascii(head, 0, 8) === "\x89PNG\r\n\x1a\n") return "png";
  if (ascii(head, 4, 8) === "ftyp") {
    const brand = ascii(head, 8, 12);
    if (HEIF_BRANDS.has(brand)) return "heic";
    if (AVIF_BRANDS.has(brand)) return "avif";
  }
  if (ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 12) === "WEBP") return "webp";
  if (ascii(head, 0, 4) === "GIF8") return "gif";
  if (ascii(head, 0, 2) === "BM") return "bmp";
  if (ascii(head, 0, 4) === "II*\0" || ascii(head, 0, 4) === "MM\0*") return "tiff";
  if (ascii(head, 0, 5) === "%PDF-") return "pdf";
  return "unknown";
}

/** The kind of `file` (a File or Blob), read from its first bytes only. */
export async function fileKind(file) {
  const head = new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer());
  return kindOf(head);
}

/** The kind a file name promises: "jpeg" for .jpg/.jpeg, "png" for .png, else null. */
export function kindOfName(name) {
  if (/\.jpe?g$/i.test(name)) return "jpeg";
  if (/\.png$/i.test(name)) return "png";
  return null;
}
