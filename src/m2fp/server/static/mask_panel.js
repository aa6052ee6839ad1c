// The result's masks panel: a grouped or try-on agnostic mask for everyone or one person,
// shown over the photo and downloaded as a PNG; and the label map downloaded in another
// label set. Everything is computed here from the answer (masks.js), without a new upload.

import { fetchMaskRules } from "./api.js";
import { agnosticMaskName, groupedMaskName, labelMapName } from "./file_names.js";
import { agnosticMask, crop, groupedMask, maskPeople, remapLabels, scopeOf } from "./masks.js";
import { greyPng, maskPng1Bit, palettePng } from "./png.js";

const HIGHLIGHT = [255, 0, 170];
const HIGHLIGHT_ALPHA = 0.55;
const KEEP_PARTS = ["face", "hair", "hands", "feet"];

const $ = (id) => document.getElementById(id);

export class MaskPanel {
  /**
   * @param {{save: (blob: Blob, name: string) => void, stem: () => string}} downloads
   */
  constructor(downloads) {
    this.downloads = downloads;
    this.rules = null;
    this.result = null;
    this.singlePerson = false;
    this.tr = null;
    this.ui = {
      section: $("masks"),
      kind: $("mask-kind"),
      groups: $("mask-groups"),
      agnostic: $("mask-agnostic"),
      person: $("mask-person"),
      dilate: $("mask-dilate"),
      crop: $("mask-crop"),
      invert: $("mask-invert"),
      invertLabel: $("mask-invert-label"),
      keep: $("mask-keep"),
      grey: $("mask-grey"),
      greyLabel: $("mask-grey-label"),
      status: $("mask-status"),
      view: $("mask-view"),
      labelSet: $("label-set"),
      downloadMask: $("download-mask"),
      downloadLabels: $("download-labels"),
    };
    const update = () => this.render();
    const { kind, person, crop, invert, grey } = this.ui;
    for (const control of [kind, person, crop, invert, grey]) {
      control.addEventListener("change", update);
    }
    this.ui.dilate.addEventListener("input", update);
    this.ui.keep.addEventListener("change", update);
    this.ui.downloadMask.addEventListener("click", () => this.downloadMask());
    this.ui.downloadLabels.addEventListener("click", () => this.downloadLabels());
  }

  setTranslator(tr) {
    this.tr = tr;
    if (this.result) this.fillChoices();
    if (this.result) this.render();
  }

  clear() {
    this.result = null;
    this.ui.section.hidden = true;
  }

  /**
   * Show the panel for a result ({file, data, layers}) of the multi- or single-person model;
   * loads the rules once.
   */
  async show(result, singlePerson) {
    this.rules ??= await fetchMaskRules();
    this.result = result;
    this.singlePerson = singlePerson;
    this.ui.section.hidden = false;
    this.ui.dilate.max = String(this.rules.constants.max_radius);
    this.fillChoices();
    this.render();
  }

  fillChoices() {
    const { t } = this.tr;
    const { data } = this.result;
    const source = data.label_set;
    const keepKind = this.ui.kind.value;
    const groups = Object.entries(this.rules.groups[source]).filter(([, ids]) => ids !== null);
    this.ui.groups.label = t("masks.groups");
    this.ui.groups.replaceChildren(
      ...groups.map(([name]) => option(`group:${name}`, t(`group.${name}`))),
    );
    this.ui.agnostic.label = t("masks.agnostic");
    this.ui.agnostic.replaceChildren(
      ...Object.keys(this.rules.agnostic[source].kinds).map((kind) =>
        option(`agnostic:${kind}`, t(`agnostic.${kind}`)),
      ),
    );
    if (keepKind && [...this.ui.kind.options].some((o) => o.value === keepKind)) {
      this.ui.kind.value = keepKind;
    }
    const keepPerson = this.ui.person.value;
    const { persons } = this.people();
    this.ui.person.replaceChildren(
      option("", t("masks.everyone")),
      ...(persons.length ? [option("main", t("masks.main"))] : []),
      ...persons.map((_, i) => option(String(i), t("results.person", { n: i + 1 }))),
    );
    if ([...this.ui.person.options].some((o) => o.value === keepPerson)) {
      this.ui.person.value = keepPerson;
    }
    const keepSet = this.ui.labelSet.value;
    const targets = Object.keys(this.rules.remaps[source] ?? {});
    this.ui.labelSet.replaceChildren(
      ...targets.map((name) => option(name, t(`labelset.${name}`))),
    );
    this.ui.labelSet.value = targets.includes(keepSet) ? keepSet : source;
  }

  /** {persons, map} masks are restricted by (one implicit person for the single-person model). */
  people() {
    const { data, layers } = this.result;
    return maskPeople(data, layers.labels, layers.persons, this.singlePerson);
  }

  /** The controls as options: {kind, name, person, dilation, crop, invert, keep, grey}. */
  choice() {
    const [kind, name] = this.ui.kind.value.split(":");
    const person = this.ui.person.value;
    const dilation = this.ui.dilate.value === "" ? null : Number(this.ui.dilate.value);
    const keep = KEEP_PARTS.filter(
      (part) => this.ui.keep.querySelector(`[value="${part}"]`).checked,
    );
    return {
      kind,
      name,
      person: person === "" ? null : person === "main" ? "main" : Number(person),
      dilation: dilation === null || !Number.isFinite(dilation) ? null : dilation,
      crop: this.ui.crop.checked && person !== "",
      invert: this.ui.invert.checked,
      keep,
      grey: this.ui.grey.checked,
    };
  }

  /**
   * Whether the dilation box holds what the API accepts: empty (the kind's default) or a
   * whole number of pixels from 0 to the rules' max_radius. Nothing is clamped silently.
   */
  dilationValid() {
    const { value, validity } = this.ui.dilate;
    if (value === "") return !validity.badInput;
    return /^\d+$/.test(value) && Number(value) <= this.rules.constants.max_radius;
  }

  /** The mask the controls ask for: {mask, width, height, box, choice}, or null. */
  compute() {
    const { layers } = this.result;
    const choice = this.choice();
    const people = this.people();
    const data = { ...this.result.data, persons: people.persons };
    const scope = scopeOf(data, people.map, choice.person);
    if (scope === null) return null;
    const { dilation } = choice; // checked by dilationValid before
    const maps = { labels: layers.labels, persons: people.map };
    const mask =
      choice.kind === "agnostic"
        ? agnosticMask(data, maps, this.rules, choice.name, {
            scope,
            dilation,
            keep: choice.keep,
            grey: choice.grey,
          })
        : groupedMask(data, maps, this.rules, choice.name, {
            scope,
            dilation: dilation ?? 0,
            invert: choice.invert,
          });
    const box = choice.crop ? scope.box : [0, 0, data.width, data.height];
    const cut = choice.crop
      ? crop(mask, data.width, box)
      : { mask, width: data.width, height: data.height };
    return { ...cut, box, choice };
  }

  render() {
    if (!this.result || !this.tr) return;
    const { t } = this.tr;
    const agnostic = this.ui.kind.value.startsWith("agnostic:");
    this.ui.invertLabel.hidden = agnostic;
    this.ui.keep.hidden = !agnostic;
    this.ui.greyLabel.hidden = !agnostic;
    this.ui.crop.disabled = this.ui.person.value === "";
    this.ui.dilate.placeholder = agnostic ? t("masks.dilate_auto") : "0";
    const valid = this.dilationValid();
    this.ui.dilate.setAttribute("aria-invalid", String(!valid));
    if (!valid) {
      this.ui.downloadMask.disabled = true;
      this.ui.status.textContent = t("masks.bad_dilation", {
        max: this.rules.constants.max_radius,
      });
      return;
    }
    const made = this.compute();
    const empty = made !== null && !made.mask.some((value) => value);
    this.ui.downloadMask.disabled = made === null || empty;
    this.ui.status.textContent =
      made === null ? t("masks.no_person") : empty ? this.emptyText() : "";
    if (made !== null) this.paint(made);
  }

  /** Why there is nothing to download: the mask's name, and the person's when one is chosen. */
  emptyText() {
    const { t } = this.tr;
    const mask = this.ui.kind.selectedOptions[0]?.textContent ?? "";
    if (this.ui.person.value === "") return t("masks.empty", { mask });
    const person = this.ui.person.selectedOptions[0]?.textContent ?? "";
    return t("masks.empty_person", { mask, person });
  }

  paint({ mask, width, height, box }) {
    const { layers, data } = this.result;
    const canvas = this.ui.view;
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    const image = context.createImageData(width, height);
    const out = image.data;
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        const i = y * width + x;
        const p = ((y + box[1]) * data.width + x + box[0]) * 4;
        const q = i * 4;
        for (let c = 0; c < 3; c += 1) {
          const photo = layers.photo[p + c];
          out[q + c] = mask[i] ? photo + (HIGHLIGHT[c] - photo) * HIGHLIGHT_ALPHA : photo;
        }
        out[q + 3] = 255;
      }
    }
    context.putImageData(image, 0, 0);
  }

  async downloadMask() {
    if (!this.dilationValid()) return;
    const made = this.compute();
    if (made === null || !made.mask.some((value) => value)) return;
    const { mask, width, height, choice } = made;
    const blob =
      choice.kind === "agnostic" && choice.grey
        ? await greyPng(mask, width, height)
        : await maskPng1Bit(mask, width, height);
    this.downloads.save(blob, maskFileName(this.downloads.stem(), choice));
  }

  async downloadLabels() {
    if (!this.result) return;
    const { layers } = this.result;
    const target = this.ui.labelSet.value;
    const people = this.people();
    const data = { ...this.result.data, persons: people.persons };
    const maps = { labels: layers.labels, persons: people.map };
    const labels = remapLabels(data, maps, this.rules, target);
    if (labels === null) return;
    const palette = this.rules.label_sets[target].palette;
    const blob = await palettePng(labels, data.width, data.height, palette);
    const labelSet = target === data.label_set ? null : target;
    this.downloads.save(blob, labelMapName(this.downloads.stem(), { labelSet }));
  }
}

/** The file name of the mask ``choice`` describes (m2fp.outputs.file_names' scheme). */
function maskFileName(stem, { kind, name, person, crop, dilation, invert, keep, grey }) {
  if (kind === "agnostic") {
    return agnosticMaskName(stem, name, { person, crop, dilate: dilation, keep, grey });
  }
  return groupedMaskName(stem, name, { person, crop, dilate: dilation ?? 0, invert });
}

function option(value, text) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = text;
  return node;
}
