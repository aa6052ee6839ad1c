// The names of the files the page offers for download: the scheme of m2fp.outputs.file_names
// (the names `m2fp parse --out` writes), mirrored line for line, so that a file saved here and
// one written by the CLI with the same options have the same name. The module docstring there
// describes it; tests/outputs/test_file_names.py runs both on the same cases.

// m2fp.defaults.DEFAULT_ALPHA; parts an agnostic mask keeps by default (mask_rules.KEEP_ALL)
export const DEFAULT_ALPHA = 0.6;
export const KEEP_ALL = ["face", "hair", "hands", "feet"];
const SUMMARY_SUFFIX = ".json";

function personPart(person) {
  if (person === null || person === undefined) return "";
  if (person === "main") return "_main";
  return `_person${person + 1}`;
}

/** A fraction as a whole percent, half up. */
function percent(fraction) {
  return Math.trunc(fraction * 100 + 0.5);
}

/** The photo's name without its extension, made safe as a file name ("photo" if nothing is left). */
export function fileStem(fileName) {
  const stem = String(fileName).replace(/\.[^.]*$/, "");
  const safe = stem.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "_").slice(0, 80);
  return safe || "photo";
}

export function overlayName(stem, { alpha = DEFAULT_ALPHA, person = null } = {}) {
  const opacity = percent(alpha) === percent(DEFAULT_ALPHA) ? "" : `_alpha${percent(alpha)}`;
  return `${stem}_vis${opacity}${personPart(person)}.png`;
}

export function labelMapName(stem, { labelSet = null } = {}) {
  return `${stem}_labels${labelSet === null ? "" : `_${labelSet}`}.png`;
}

export function groupedMaskName(
  stem,
  spec,
  { person = null, crop = false, dilate = 0, feather = 0, invert = false } = {},
) {
  const parts = [`${stem}_mask_${spec}`, personPart(person)];
  parts.push(crop && person !== null ? "_crop" : "");
  parts.push(dilate ? `_dilate${dilate}` : "");
  parts.push(feather ? `_feather${feather}` : "");
  parts.push(invert ? "_inverted" : "");
  return `${parts.join("")}.png`;
}

export function agnosticMaskName(
  stem,
  kind,
  { person = null, crop = false, dilate = null, keep = KEEP_ALL, grey = false } = {},
) {
  const parts = [`${stem}_agnostic_${kind}`, personPart(person)];
  parts.push(crop && person !== null ? "_crop" : "");
  parts.push(dilate === null ? "" : `_dilate${dilate}`);
  const kept = KEEP_ALL.filter((part) => keep.includes(part));
  if (kept.length !== KEEP_ALL.length) parts.push(`_keep-${kept.join("-") || "none"}`);
  parts.push(grey ? "_grey" : "");
  return `${parts.join("")}.png`;
}

export function summaryName(stem) {
  return `${stem}${SUMMARY_SUFFIX}`;
}
