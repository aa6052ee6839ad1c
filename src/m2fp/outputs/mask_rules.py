"""Which classes every named mask and try-on agnostic mask is made of, the options they take,
and how the interfaces spell them. Standard library only (the CLI validates with it).

Rules are written with class *names*; ``class_ids`` turns them into the ids of the label set a
result carries (CIHP or LIP, which differ only at 10: Torso-skin vs Jumpsuits). A name the set
does not have contributes nothing (Jumpsuits in CIHP, which paints jumpsuits as upper clothes
and pants), except where a group needs it to be complete (``GROUP_NEEDS``): then the group is
refused for that set.

Grouped masks (``GROUPS``): hair; face; head = face + hair + hat + sunglasses; upper_clothes =
UpperClothes + Coat + Dress (+ Jumpsuits), VITON-HD's "upper" group (a dress counts whole, as
in VITON-HD, OOTDiffusion and CatVTON); lower_clothes = Pants + Skirt (VITON-HD's "bottom");
full_clothes = both (CatVTON's "overall" garments); skin = face + torso skin + arms + legs
(refused for LIP: it does not label torso skin); arms, legs, shoes; background; foreground =
every class but background (the person silhouette). A mask spec is one of these names or a
class name of the result's set, or a union of them joined with ``+`` (``head+Scarf``).

Try-on agnostic masks (``AGNOSTIC_KINDS``; the pixels a try-on model repaints), after
OOTDiffusion's ``get_mask_location`` (used by IDM-VTON) and CatVTON's ``AutoMasker``, without
their pose keypoints or DensePose:

- ``garment``: the clothes being replaced; ``body``: the skin the new garment may cover or
  uncover. Their union is dilated by ``dilate`` pixels (a disk): that reaches into the
  background and other unprotected pixels, leaving room for a garment of another shape.
- ``protect``: never masked, even inside the dilation: hat, sunglasses and scarf always
  (OOTDiffusion fixes hat and sunglasses, CatVTON all three), the clothes the kind keeps
  (upper_body keeps Pants, Skirt and the legs; lower_body keeps UpperClothes, Coat and the
  arms), pixels of any other person, and the parts asked to be kept:
- ``keep`` face, hair, hands, feet (all kept by default, as CatVTON protects them): face =
  Face; hair = Hair; feet = shoes and socks (CIHP labels bare feet as legs); hands = Glove
  plus the end of each arm, since CIHP has no hand class (see ``m2fp.outputs.agnostic``).
  A part not kept is treated like any other pixel: masked if it is in garment or body, or
  inside the dilation.

| kind | garment | body |
| --- | --- | --- |
| upper_body | UpperClothes, Coat, Dress, Jumpsuits | Torso-skin (neck), arms, Glove |
| lower_body | Pants, Skirt | legs, Socks, shoes |
| dresses | UpperClothes, Coat, Dress, Jumpsuits, Pants, Skirt | Torso-skin, arms, Glove |
| overall | all of those garments | Torso-skin, arms, Glove, legs, Socks, shoes |

The default dilation is ``max(box height, box width) / 50`` pixels (OOTDiffusion dilates by
10 px at 512 px), the box being the person's, or the image without a person. The grey
variant is 127 inside the mask and 0 elsewhere: OOTDiffusion's ``mask_gray``, which it pastes
over the photo to make the agnostic image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from m2fp.labels import CIHP_LABELS, LIP_LABELS, LabelSet
from m2fp.outputs.errors import OutputRequestError

GROUPS: dict[str, tuple[str, ...]] = {
    "hair": ("Hair",),
    "face": ("Face",),
    "head": ("Face", "Hair", "Hat", "Sunglasses"),
    "upper_clothes": ("UpperClothes", "Coat", "Dress", "Jumpsuits"),
    "lower_clothes": ("Pants", "Skirt"),
    "full_clothes": ("UpperClothes", "Coat", "Dress", "Jumpsuits", "Pants", "Skirt"),
    "skin": ("Face", "Torso-skin", "Left-arm", "Right-arm", "Left-leg", "Right-leg"),
    "arms": ("Left-arm", "Right-arm"),
    "legs": ("Left-leg", "Right-leg"),
    "shoes": ("Left-shoe", "Right-shoe"),
    "background": ("Background",),
    "foreground": (),  # every class but Background: filled in by class_ids
}
# classes a group is incomplete without: the group is refused for label sets lacking them
GROUP_NEEDS: dict[str, tuple[str, ...]] = {"skin": ("Torso-skin",)}

ARMS = ("Left-arm", "Right-arm")
LEGS = ("Left-leg", "Right-leg")
FEET = ("Left-shoe", "Right-shoe", "Socks")
GARMENTS_UPPER = ("UpperClothes", "Coat", "Dress", "Jumpsuits")
GARMENTS_LOWER = ("Pants", "Skirt")
# what an arm leaves from: the hand heuristic measures along the arm from these
TORSO = ("UpperClothes", "Coat", "Dress", "Jumpsuits", "Torso-skin")
ALWAYS_PROTECTED = ("Hat", "Sunglasses", "Scarf")


@dataclass(frozen=True)
class AgnosticKind:
    """Class names of one kind of try-on agnostic mask (see the module docstring)."""

    garment: tuple[str, ...]
    body: tuple[str, ...]
    protect: tuple[str, ...]


AGNOSTIC_KINDS: dict[str, AgnosticKind] = {
    "upper_body": AgnosticKind(
        garment=GARMENTS_UPPER,
        body=("Torso-skin", *ARMS, "Glove"),
        protect=(*GARMENTS_LOWER, *LEGS),
    ),
    "lower_body": AgnosticKind(
        garment=GARMENTS_LOWER,
        body=(*LEGS, *FEET),
        protect=("UpperClothes", "Coat", *ARMS, "Glove"),
    ),
    "dresses": AgnosticKind(
        garment=(*GARMENTS_UPPER, *GARMENTS_LOWER),
        body=("Torso-skin", *ARMS, "Glove"),
        protect=(),
    ),
    "overall": AgnosticKind(
        garment=(*GARMENTS_UPPER, *GARMENTS_LOWER),
        body=("Torso-skin", *ARMS, "Glove", *LEGS, *FEET),
        protect=(),
    ),
}
# parts that ``keep`` protects; hands also gets the end of each arm (m2fp.outputs.agnostic)
KEEP_PARTS: dict[str, tuple[str, ...]] = {
    "face": ("Face",),
    "hair": ("Hair",),
    "hands": ("Glove",),
    "feet": FEET,
}
KEEP_ALL = tuple(KEEP_PARTS)

# masks are dilated or feathered by at most this many pixels (the cost grows with it)
MAX_RADIUS = 128
# default agnostic dilation: the longer side of the person's box (or image) over this,
# rounded half up (``rounded_ratio``)
AGNOSTIC_DILATE_DIVISOR = 50
# without a face to measure a hand by, a hand is the person's height over this
HAND_DIVISOR_WITHOUT_FACE = 10
# a spec term: a group or a class name (CIHP/LIP/ATR names use letters, '-' and '_')
_TERM = re.compile(r"^[A-Za-z][A-Za-z_-]{0,39}$")
KNOWN_SOURCES: dict[str, LabelSet] = {s.name: s for s in (CIHP_LABELS, LIP_LABELS)}
PersonSpec = int | Literal["main"] | None
Encoding = Literal["png", "rle"]


def rounded_ratio(length: int, divisor: int) -> int:
    """``length / divisor`` rounded half up, at least 1: integer arithmetic, so that the
    WebUI's JavaScript gets the same number."""
    return max(1, (length + divisor // 2) // divisor)


def class_ids(names: tuple[str, ...], labels: LabelSet) -> tuple[int, ...]:
    """Ids in ``labels`` of the names it has (others are skipped), in id order."""
    return tuple(i for i, name in enumerate(labels.names) if name in names)


def group_ids(group: str, labels: LabelSet) -> tuple[int, ...]:
    """The class ids a named group covers in ``labels``.

    Raises:
        OutputRequestError: unknown group, or one ``labels`` cannot make completely.
    """
    if group not in GROUPS:
        raise OutputRequestError(f"unknown mask {group!r} (known: {', '.join(GROUPS)})")
    lacking = [name for name in GROUP_NEEDS.get(group, ()) if name not in labels.names]
    if lacking:
        raise OutputRequestError(
            f"a {group} mask cannot be made from {labels.name}: it has no {', '.join(lacking)}"
        )
    if group == "foreground":
        return tuple(range(1, len(labels.names)))
    return class_ids(GROUPS[group], labels)


def split_spec(spec: str) -> tuple[str, ...]:
    """The terms of a mask spec (``"head+Scarf"`` -> ``("head", "Scarf")``).

    Raises:
        OutputRequestError: empty, or a term that is no name at all.
    """
    terms = tuple(term.strip() for term in spec.split("+"))
    if not spec or any(not _TERM.match(term) for term in terms):
        raise OutputRequestError(
            "a mask is a group or class name, or names joined with '+' (e.g. head+Scarf)"
        )
    return terms


def check_spec(spec: str) -> str:
    """``spec`` normalised (spaces dropped), if every term names a group or a class of some
    label set a model paints; the result's own set is checked by ``spec_ids``.

    Raises:
        OutputRequestError: malformed or unknown.
    """
    terms = split_spec(spec)
    known = set(GROUPS).union(*(s.names for s in KNOWN_SOURCES.values()))
    unknown = [term for term in terms if term not in known]
    if unknown:
        raise OutputRequestError(
            f"unknown mask {unknown[0]!r}: use a group ({', '.join(GROUPS)}) or a class name"
        )
    return "+".join(terms)


def spec_ids(spec: str, labels: LabelSet) -> tuple[int, ...]:
    """Class ids in ``labels`` of the union a spec names.

    Raises:
        OutputRequestError: malformed, unknown in ``labels``, or a group it cannot make.
    """
    ids: set[int] = set()
    for term in split_spec(spec):
        if term in GROUPS:
            ids.update(group_ids(term, labels))
        elif term in labels.names:
            ids.add(labels.names.index(term))
        else:
            raise OutputRequestError(f"{term!r} is neither a mask group nor a {labels.name} class")
    return tuple(sorted(ids))


def split_list(text: str) -> tuple[str, ...]:
    """A comma list, blanks dropped, duplicates removed in order."""
    return tuple(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))


def parse_specs(text: str) -> tuple[str, ...]:
    """``"hair, head+Scarf"`` -> checked, normalised specs (see ``check_spec``)."""
    return tuple(dict.fromkeys(check_spec(spec) for spec in split_list(text)))


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"upper_body,lower_body"`` -> the agnostic kinds.

    Raises:
        OutputRequestError: an unknown kind.
    """
    return _known(split_list(text), AGNOSTIC_KINDS, "agnostic mask")


def parse_keep(text: str) -> tuple[str, ...]:
    """``"face,hair"`` -> parts to keep; ``"none"`` keeps nothing.

    Raises:
        OutputRequestError: an unknown part.
    """
    if text.strip() == "none":
        return ()
    return _known(split_list(text), KEEP_PARTS, "part to keep", also="none")


def _known(items: tuple[str, ...], known: dict, what: str, also: str = "") -> tuple[str, ...]:
    """``items`` if all are keys of ``known``; else the first stranger is named."""
    unknown = [item for item in items if item not in known]
    if unknown:
        names = ", ".join([*known, *([f"or {also}"] if also else [])])
        raise OutputRequestError(f"unknown {what} {unknown[0]!r} (known: {names})")
    return items


def parse_person(text: str) -> PersonSpec:
    """``"main"`` or a 0-based person index, as typed on a command line or in a query.

    Raises:
        OutputRequestError: anything else.
    """
    text = text.strip()
    if text == "main":
        return "main"
    if text.isascii() and text.isdigit() and len(text) <= 3:
        return int(text)
    raise OutputRequestError("a person is 'main' or a person index (0 is the first)")


def check_radius(name: str, value: int | None) -> None:
    """Dilation and feathering radii are whole pixels in 0..``MAX_RADIUS``.

    Raises:
        OutputRequestError: out of range.
    """
    if value is not None and not 0 <= value <= MAX_RADIUS:
        raise OutputRequestError(f"{name} must be between 0 and {MAX_RADIUS} pixels")


def check_person(person: PersonSpec) -> None:
    """Raises OutputRequestError unless ``person`` is None, "main" or an index >= 0."""
    if person is None or person == "main":
        return
    if isinstance(person, bool) or not isinstance(person, int) or person < 0:
        raise OutputRequestError("person must be None, 'main' or a person index >= 0")


@dataclass(frozen=True)
class MaskOptions:
    """How a grouped mask is shaped, in this order: restricted to ``person`` (None = all),
    dilated by ``dilate`` pixels, inverted, feathered (a Gaussian of ``feather`` pixels:
    uint8 0..255 instead of bool), cropped to the person's box.

    Raises:
        OutputRequestError: a radius out of range, a bad person, or ``crop`` without one.
    """

    person: PersonSpec = None
    invert: bool = False
    dilate: int = 0
    feather: int = 0
    crop: bool = False

    def __post_init__(self) -> None:
        check_person(self.person)
        check_radius("dilate", self.dilate)
        check_radius("feather", self.feather)
        if self.crop and self.person is None:
            raise OutputRequestError("crop needs a person (an index or 'main')")


@dataclass(frozen=True)
class AgnosticOptions:
    """How a try-on agnostic mask is made (see the module docstring).

    Attributes:
        keep: parts never masked (``KEEP_PARTS``: face, hair, hands, feet).
        dilate: pixels; None = the default (``AGNOSTIC_DILATE_DIVISOR``).
        grey: 127 inside the mask, 0 outside (uint8) instead of bool.

    Raises:
        OutputRequestError: an unknown part, a radius out of range, a bad person, or
            ``crop`` without one.
    """

    person: PersonSpec = None
    keep: tuple[str, ...] = KEEP_ALL
    dilate: int | None = None
    crop: bool = False
    grey: bool = False

    def __post_init__(self) -> None:
        check_person(self.person)
        check_radius("dilate", self.dilate)
        _known(tuple(self.keep), KEEP_PARTS, "part to keep")
        if self.crop and self.person is None:
            raise OutputRequestError("crop needs a person (an index or 'main')")
