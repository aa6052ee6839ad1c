// Pixel work of the result view: decode the server's label and person maps and paint the
// colour overlay on a canvas. Done here rather than with the server's visualisation so that
// the opacity slider and the person highlight need no new request (uploads are rate limited).

const DIM = 0.3; // brightness kept outside the highlighted person

// Exact pixel values are needed (class and person indices), so no colour management.
const RAW = { colorSpaceConversion: "none", premultiplyAlpha: "none" };

function pixels(source, width, height, { smooth }) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = smooth; // index maps must never be interpolated
  context.drawImage(source, 0, 0, width, height);
  return context.getImageData(0, 0, width, height).data;
}

async function decodeBase64Png(base64) {
  const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
  return createImageBitmap(new Blob([bytes], { type: "image/png" }), RAW);
}

function classIndices(rgba, palette) {
  // A palette PNG decodes to colours; map each colour back to its class id.
  const lookup = new Map();
  for (const { id, color } of palette) {
    const key = (color[0] << 16) | (color[1] << 8) | color[2];
    if (!lookup.has(key)) lookup.set(key, id);
  }
  const out = new Uint8Array(rgba.length / 4);
  for (let i = 0, p = 0; i < out.length; i += 1, p += 4) {
    out[i] = lookup.get((rgba[p] << 16) | (rgba[p + 1] << 8) | rgba[p + 2]) ?? 0;
  }
  return out;
}

function redChannel(rgba) {
  const out = new Uint8Array(rgba.length / 4);
  for (let i = 0, p = 0; i < out.length; i += 1, p += 4) out[i] = rgba[p];
  return out;
}

/**
 * Everything the overlay is painted from, at the size the server parsed (width x height of
 * the answer, which is the photo after EXIF rotation and any downscaling).
 *
 * @param {File} file the uploaded photo
 * @param {object} result the parse answer
 * @param {Array<{id:number,name:string,color:number[]}>} palette from api/v1/classes
 */
export async function loadLayers(file, result, palette) {
  const { width, height } = result;
  const [photo, labelMap, personMap] = await Promise.all([
    createImageBitmap(file, { imageOrientation: "from-image" }),
    decodeBase64Png(result.label_map_png),
    typeof result.person_map_png === "string" ? decodeBase64Png(result.person_map_png) : null,
  ]);
  const colours = new Uint8Array(256 * 3);
  for (const { id, color } of palette) colours.set(color.slice(0, 3), id * 3);
  const layers = {
    width,
    height,
    photo: pixels(photo, width, height, { smooth: true }),
    labels: classIndices(pixels(labelMap, width, height, { smooth: false }), palette),
    persons: personMap ? redChannel(pixels(personMap, width, height, { smooth: false })) : null,
    colours,
  };
  photo.close();
  labelMap.close();
  personMap?.close();
  return layers;
}

/**
 * Paint the overlay into `canvas`.
 *
 * @param {object} layers from loadLayers
 * @param {number} alpha colour weight 0..1 where a class other than background is present
 * @param {number} person 0 for everyone, i to keep only persons[i - 1] bright
 * @param {number[]|null} box [x0, y0, x1, y1) of that person, outlined
 */
export function paint(canvas, layers, { alpha, person, box }) {
  const { width, height, photo, labels, persons, colours } = layers;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  const out = image.data;
  const highlight = person > 0 && persons !== null;
  for (let i = 0, p = 0; i < labels.length; i += 1, p += 4) {
    const label = labels[i];
    if (highlight && persons[i] !== person) {
      out[p] = photo[p] * DIM;
      out[p + 1] = photo[p + 1] * DIM;
      out[p + 2] = photo[p + 2] * DIM;
    } else if (label !== 0) {
      const c = label * 3;
      out[p] = photo[p] + (colours[c] - photo[p]) * alpha;
      out[p + 1] = photo[p + 1] + (colours[c + 1] - photo[p + 1]) * alpha;
      out[p + 2] = photo[p + 2] + (colours[c + 2] - photo[p + 2]) * alpha;
    } else {
      out[p] = photo[p];
      out[p + 1] = photo[p + 1];
      out[p + 2] = photo[p + 2];
    }
    out[p + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  if (highlight && box) {
    const line = Math.max(1, Math.round(Math.min(width, height) / 200));
    context.lineWidth = line;
    context.strokeStyle = "#ffffff";
    context.strokeRect(box[0] + line / 2, box[1] + line / 2, box[2] - box[0] - line, box[3] - box[1] - line);
  }
}
