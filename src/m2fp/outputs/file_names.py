"""The names of the files m2fp writes: one scheme for ``m2fp parse --out`` (and ``m2fp batch``,
through ``m2fp.results.output_files``) and the WebUI's downloads, so that a mask saved from the
page and one written by the CLI with the same options have the same name, and two files whose
pixels differ never do. Standard library only; ``server/static/file_names.js`` mirrors it line
for line and ``tests/outputs/test_file_names.py`` runs both on the same cases.

``<stem>_<what>[_<option>...].<ext>``, every option that changes the pixels written when it is
not its default, in this order:

- overlay: ``<stem>_vis[_alpha<percent>][_person<n>].png``
- label map: ``<stem>_labels[_<label set>].png`` (no set: the model's own)
- grouped mask: ``<stem>_mask_<spec>[_person<n>|_main][_crop][_dilate<px>][_feather<px>]``
  ``[_inverted].png``
- agnostic mask: ``<stem>_agnostic_<kind>[_person<n>|_main][_crop][_dilate<px>]``
  ``[_keep-<parts>][_grey].png``
- summary: ``<stem>.json``

``<n>`` counts persons from 1 as the WebUI and the person map do (``--person 0`` is
``_person1``); ``main`` is the largest person. An agnostic mask's default dilation depends on
the box, so only an explicit one is named (``_dilate0`` included); ``_keep-face-hair`` lists the
parts kept when not all four are (``_keep-none``: none).
"""

from __future__ import annotations

from m2fp.defaults import DEFAULT_ALPHA
from m2fp.outputs.mask_rules import KEEP_ALL, PersonSpec

SUMMARY_SUFFIX = ".json"


def _person(person: PersonSpec) -> str:
    if person is None:
        return ""
    if person == "main":
        return "_main"
    return f"_person{person + 1}"


def _percent(fraction: float) -> int:
    """A fraction as a whole percent, half up (as JavaScript's ``Math.round``)."""
    return int(fraction * 100 + 0.5)


def overlay_name(stem: str, *, alpha: float = DEFAULT_ALPHA, person: PersonSpec = None) -> str:
    """The overlay of the class colours at opacity ``alpha``, one person highlighted or none."""
    opacity = "" if _percent(alpha) == _percent(DEFAULT_ALPHA) else f"_alpha{_percent(alpha)}"
    return f"{stem}_vis{opacity}{_person(person)}.png"


def label_map_name(stem: str, *, label_set: str | None = None) -> str:
    """The palette label map, in ``label_set`` when one is asked for (None: the model's)."""
    return f"{stem}_labels{'' if label_set is None else '_' + label_set}.png"


def grouped_mask_name(
    stem: str,
    spec: str,
    *,
    person: PersonSpec = None,
    crop: bool = False,
    dilate: int = 0,
    feather: int = 0,
    invert: bool = False,
) -> str:
    """A grouped mask (``m2fp.outputs.grouped_masks``) with its options."""
    parts = [f"{stem}_mask_{spec}", _person(person)]
    parts.append("_crop" if crop and person is not None else "")
    parts.append(f"_dilate{dilate}" if dilate else "")
    parts.append(f"_feather{feather}" if feather else "")
    parts.append("_inverted" if invert else "")
    return "".join(parts) + ".png"


def agnostic_mask_name(
    stem: str,
    kind: str,
    *,
    person: PersonSpec = None,
    crop: bool = False,
    dilate: int | None = None,
    keep: tuple[str, ...] = KEEP_ALL,
    grey: bool = False,
) -> str:
    """A try-on agnostic mask (``m2fp.outputs.agnostic``) with its options; ``keep`` in any
    order (named in ``KEEP_ALL``'s)."""
    parts = [f"{stem}_agnostic_{kind}", _person(person)]
    parts.append("_crop" if crop and person is not None else "")
    parts.append("" if dilate is None else f"_dilate{dilate}")
    kept = [part for part in KEEP_ALL if part in keep]
    if kept != list(KEEP_ALL):
        parts.append(f"_keep-{'-'.join(kept) or 'none'}")
    parts.append("_grey" if grey else "")
    return "".join(parts) + ".png"


def summary_name(stem: str) -> str:
    """The JSON answer of one image."""
    return f"{stem}{SUMMARY_SUFFIX}"
