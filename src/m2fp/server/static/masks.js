// Masks and label sets computed in the page from a parse answer, with the rules the server
// publishes at api/v1/mask-rules: the same tables and the same pixel operations as the
// Python package (m2fp/outputs), so what the page downloads is what the API would return.
// A mask is a Uint8Array of width x height, 1 = set (or 127 for the grey agnostic variant).

/** `length / divisor` rounded half up, at least 1 (m2fp.outputs.mask_rules.rounded_ratio). */
export function roundedRatio(length, divisor) {
  return Math.max(1, Math.floor((length + Math.floor(divisor / 2)) / divisor));
}

function idSet(ids) {
  const set = new Uint8Array(256);
  for (const id of ids) set[id] = 1;
  return set;
}

function classMask(labels, ids) {
  const wanted = idSet(ids);
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i += 1) out[i] = wanted[labels[i]];
  return out;
}

function bounds(mask, width, height) {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0, i = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1, i += 1) {
      if (mask[i]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? null : { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}

/**
 * Grow a mask by a disk of `radius` (dx² + dy² <= r²), row by row of the disk, on the mask's
 * box grown by the radius: the algorithm of m2fp.outputs.morphology.dilate.
 */
export function dilate(mask, width, height, radius) {
  const out = mask.slice();
  if (radius <= 0) return out;
  const box = bounds(mask, width, height);
  if (box === null) return out;
  const wx0 = Math.max(box.x0 - radius, 0);
  const wy0 = Math.max(box.y0 - radius, 0);
  const ww = Math.min(box.x1 + radius, width) - wx0;
  const wh = Math.min(box.y1 + radius, height) - wy0;
  const source = new Uint8Array(ww * wh);
  for (let y = 0; y < wh; y += 1) {
    for (let x = 0; x < ww; x += 1) source[y * ww + x] = mask[(y + wy0) * width + x + wx0];
  }
  const wide = source.slice(); // the horizontal dilation by `half`
  const grown = new Uint8Array(ww * wh);
  let half = 0;
  for (let dy = radius; dy >= 0; dy -= 1) {
    const target = Math.floor(Math.sqrt(radius * radius - dy * dy));
    while (half < target) {
      half += 1;
      for (let y = 0; y < wh; y += 1) {
        const row = y * ww;
        for (let x = 0; x < ww; x += 1) {
          if (x - half >= 0 && source[row + x - half]) wide[row + x] = 1;
          if (x + half < ww && source[row + x + half]) wide[row + x] = 1;
        }
      }
    }
    for (const shift of dy === 0 ? [0] : [dy, -dy]) {
      for (let y = 0; y < wh; y += 1) {
        const from = y - shift;
        if (from < 0 || from >= wh) continue;
        const row = y * ww;
        const fromRow = from * ww;
        for (let x = 0; x < ww; x += 1) if (wide[fromRow + x]) grown[row + x] = 1;
      }
    }
  }
  for (let y = 0; y < wh; y += 1) {
    for (let x = 0; x < ww; x += 1) out[(y + wy0) * width + x + wx0] = grown[y * ww + x];
  }
  return out;
}

function grow4(mask, width, height) {
  const out = mask.slice();
  for (let y = 0, i = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1, i += 1) {
      if (!mask[i]) continue;
      if (y > 0) out[i - width] = 1;
      if (y < height - 1) out[i + width] = 1;
      if (x > 0) out[i - 1] = 1;
      if (x < width - 1) out[i + 1] = 1;
    }
  }
  return out;
}

/** Breadth-first 4-connected steps from `seeds` inside `region`; -1 where none reaches. */
export function geodesicDistance(region, seeds, width, height) {
  const distance = new Int32Array(region.length).fill(-1);
  const queue = new Int32Array(region.length);
  let head = 0;
  let tail = 0;
  for (let i = 0; i < region.length; i += 1) {
    if (region[i] && seeds[i]) {
      distance[i] = 0;
      queue[tail] = i;
      tail += 1;
    }
  }
  while (head < tail) {
    const i = queue[head];
    head += 1;
    const x = i % width;
    const next = distance[i] + 1;
    const neighbours = [
      i >= width ? i - width : -1,
      i + width < region.length ? i + width : -1,
      x > 0 ? i - 1 : -1,
      x < width - 1 ? i + 1 : -1,
    ];
    for (const n of neighbours) {
      if (n >= 0 && region[n] && distance[n] < 0) {
        distance[n] = next;
        queue[tail] = n;
        tail += 1;
      }
    }
  }
  return distance;
}

function rowSpan(mask, width, height) {
  let first = -1;
  let last = -1;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0, i = y * width; x < width; x += 1, i += 1) {
      if (mask[i]) {
        if (first < 0) first = y;
        last = y;
        break;
      }
    }
  }
  return first < 0 ? 0 : last - first + 1;
}

function and(a, b) {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i += 1) out[i] = a[i] && b[i] ? 1 : 0;
  return out;
}

/** The ends of the arms of the person in `region` (m2fp.outputs.agnostic.hand_pixels). */
export function handPixels(labels, region, rules, constants, width, height) {
  const hands = new Uint8Array(labels.length);
  const faceHeight = rowSpan(and(classMask(labels, rules.face), region), width, height);
  const length =
    faceHeight ||
    roundedRatio(rowSpan(region, width, height), constants.hand_divisor_without_face);
  const touching = grow4(and(classMask(labels, rules.torso), region), width, height);
  for (const armId of rules.arms) {
    const arm = and(classMask(labels, [armId]), region);
    const contact = and(arm, touching);
    let top = -1;
    for (let i = 0; i < contact.length; i += 1) {
      if (contact[i]) {
        top = Math.floor(i / width);
        break;
      }
    }
    if (top < 0) {
      for (let i = 0; i < arm.length; i += 1) if (arm[i]) hands[i] = 1;
      continue;
    }
    contact.fill(0, Math.min((top + length) * width, contact.length));
    const distance = geodesicDistance(arm, contact, width, height);
    let farthest = -1;
    for (const d of distance) if (d > farthest) farthest = d;
    for (let i = 0; i < arm.length; i += 1) {
      if (arm[i] && (distance[i] > farthest - length || distance[i] < 0)) hands[i] = 1;
    }
  }
  return hands;
}

/**
 * Whom masks can be restricted to: the answer's persons and person map, or for the
 * single-person model (which lists no persons) one implicit person made of every pixel not
 * labelled background (m2fp.outputs.person_scope.implicit_person). {persons, map}.
 */
export function maskPeople(answer, labels, personMap, singlePerson) {
  const { width, height } = answer;
  if (!singlePerson) {
    return { persons: answer.persons, map: personMap ?? new Uint8Array(width * height) };
  }
  const map = labels.map((label) => (label !== 0 ? 1 : 0));
  const box = bounds(map, width, height);
  if (box === null) return { persons: [], map };
  let area = 0;
  for (const v of map) area += v;
  return { persons: [{ bbox: [box.x0, box.y0, box.x1, box.y1], area }], map };
}

/** Index of the person with the largest area, the first of equals (person_scope.main_person). */
export function mainPerson(persons) {
  let best = -1;
  for (let i = 0; i < persons.length; i += 1) {
    if (best < 0 || persons[i].area > persons[best].area) best = i;
  }
  return best;
}

/**
 * Where a mask is made: `person` null (everyone), "main" or an index into `persons`.
 * Returns {index, region (Uint8Array or null), box: [x0, y0, x1, y1)} or null if there is no
 * such person.
 */
export function scopeOf(answer, personMap, person) {
  const { width, height, persons } = answer;
  if (person === null) return { index: null, region: null, box: [0, 0, width, height] };
  const index = person === "main" ? mainPerson(persons) : person;
  if (index < 0 || index >= Math.min(persons.length, 255)) return null;
  const region = new Uint8Array(personMap.length);
  for (let i = 0; i < personMap.length; i += 1) region[i] = personMap[i] === index + 1 ? 1 : 0;
  return { index, region, box: persons[index].bbox };
}

function restrict(labels, scope) {
  if (scope.region === null) return labels;
  return labels.map((label, i) => (scope.region[i] ? label : 0));
}

/** A mask cut to `box`: {mask, width, height}. */
export function crop(mask, width, box) {
  const [x0, y0, x1, y1] = box;
  const out = new Uint8Array((x1 - x0) * (y1 - y0));
  for (let y = y0; y < y1; y += 1) {
    out.set(mask.subarray(y * width + x0, y * width + x1), (y - y0) * (x1 - x0));
  }
  return { mask: out, width: x1 - x0, height: y1 - y0 };
}

/** A grouped mask (m2fp.outputs.grouped_masks.grouped_mask, without feathering). */
export function groupedMask(answer, layers, rules, group, { scope, dilation, invert }) {
  const ids = rules.groups[answer.label_set][group];
  const { width, height } = answer;
  let mask = classMask(layers.labels, ids);
  if (scope.region !== null) mask = and(mask, scope.region);
  mask = dilate(mask, width, height, dilation);
  if (invert) for (let i = 0; i < mask.length; i += 1) mask[i] = mask[i] ? 0 : 1;
  return mask;
}

/** A try-on agnostic mask (m2fp.outputs.agnostic.agnostic_mask); `dilation` null = default. */
export function agnosticMask(answer, layers, rules, kind, { scope, dilation, keep, grey }) {
  const source = rules.agnostic[answer.label_set];
  const { width, height } = answer;
  const labels = restrict(layers.labels, scope);
  const [x0, y0, x1, y1] = scope.box;
  const radius =
    dilation ??
    roundedRatio(Math.max(x1 - x0, y1 - y0), rules.constants.agnostic_dilate_divisor);
  const mask = dilate(classMask(labels, source.kinds[kind].target), width, height, radius);
  const protectedIds = [...source.kinds[kind].protect];
  for (const part of keep) protectedIds.push(...source.keep[part]);
  const safe = classMask(labels, protectedIds);
  if (scope.region !== null) {
    for (let i = 0; i < safe.length; i += 1) {
      if (layers.persons[i] !== 0 && !scope.region[i]) safe[i] = 1;
    }
  }
  if (keep.includes("hands")) {
    for (const region of personRegions(scope, layers.persons, answer.persons.length)) {
      const hands = handPixels(labels, region, source, rules.constants, width, height);
      for (let i = 0; i < safe.length; i += 1) if (hands[i]) safe[i] = 1;
    }
  }
  const value = grey ? 127 : 1;
  for (let i = 0; i < mask.length; i += 1) mask[i] = mask[i] && !safe[i] ? value : 0;
  return mask;
}

function personRegions(scope, personMap, count) {
  if (scope.region !== null) return [scope.region];
  const persons = Math.min(count, 255);
  if (persons === 0) return [new Uint8Array(personMap.length).fill(1)];
  const regions = [];
  for (let value = 0; value <= persons; value += 1) {
    regions.push(personMap.map((v) => (v === value ? 1 : 0)));
  }
  return regions;
}

/**
 * The label map in `target` (m2fp.outputs.remap.remap_label_map), or null when it cannot be
 * derived from the answer's label set.
 */
export function remapLabels(answer, layers, rules, target) {
  const rule = rules.remaps[answer.label_set]?.[target];
  if (!rule) return null;
  const { labels, persons: personMap } = layers;
  const out = labels.map((label) => rule.table[label]);
  if (rule.sided.length === 0) return out;
  const centres = [answer.width / 2, ...answer.persons.map((p) => (p.bbox[0] + p.bbox[2]) / 2)];
  const sided = new Map(rule.sided.map(([source, left, right]) => [source, [left, right]]));
  for (let i = 0; i < labels.length; i += 1) {
    const sides = sided.get(labels[i]);
    if (!sides) continue;
    const x = i % answer.width;
    out[i] = x + 0.5 >= centres[personMap[i]] ? sides[0] : sides[1];
  }
  return out;
}
