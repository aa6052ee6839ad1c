"""The label sets a label map can be written in, and the tables that derive each from the
label set a result carries. Standard library only.

Every table is keyed by (source, target) label set and maps source class *names* to target
class names, so it reads like the table in docs/outputs.md. A pair without a table is refused
with the reason why (``remap_rule``).

- ``cihp`` and ``lip``: the models' own sets (``m2fp.labels``).
- ``atr`` (18 ATR classes as SCHP / OOTDiffusion / IDM-VTON write them, plus ``Neck`` = 18):
  OOTDiffusion's parser paints Neck where its ATR model says face and its LIP model does not;
  CIHP labels that skin ``Torso-skin``, so Torso-skin -> Neck. ATR has no coat, glove or socks:
  Coat -> Upper-clothes (what OOTDiffusion's upper-body garment mask covers), Glove -> the arm
  and Socks -> the leg of its side (``Sided``). Belt and Bag are never produced. Palette: the
  PASCAL colour map SCHP's ``get_palette`` writes.
- ``lip`` from CIHP: the same classes except Torso-skin, which LIP does not label (its torso
  skin is background); Jumpsuits is never produced.
- ``viton``: the 13 groups VITON-HD's ``datasets.py`` (also HR-VITON) builds from CIHP ids:
  background {0, 10}, hair {1, 2}, face {4, 13}, upper {5, 6, 7}, bottom {9, 12}, arms,
  legs and shoes one each, socks {8}, noise {3, 11}. From LIP, Jumpsuits -> upper, as that
  table puts the one-piece Dress in upper. Each group is drawn in the CIHP colour of its main
  class.
"""

from __future__ import annotations

from dataclasses import dataclass

from m2fp.labels import CIHP_LABELS, CIHP_PALETTE, LIP_LABELS, LabelSet
from m2fp.outputs.errors import OutputRequestError


def pascal_palette(count: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map (the bits of i spread over the high bits of r, g, b), which
    SCHP-based parsers use for their ATR and LIP label maps."""
    colours = []
    for index in range(count):
        red = green = blue = 0
        value = index
        for bit in range(7, -1, -1):
            red |= (value & 1) << bit
            green |= ((value >> 1) & 1) << bit
            blue |= ((value >> 2) & 1) << bit
            value >>= 3
        colours.append((red, green, blue))
    return tuple(colours)


ATR_CLASSES: tuple[str, ...] = (
    "Background",
    "Hat",
    "Hair",
    "Sunglasses",
    "Upper-clothes",
    "Skirt",
    "Pants",
    "Dress",
    "Belt",
    "Left-shoe",
    "Right-shoe",
    "Face",
    "Left-leg",
    "Right-leg",
    "Left-arm",
    "Right-arm",
    "Bag",
    "Scarf",
    "Neck",
)
ATR_LABELS = LabelSet("atr", ATR_CLASSES, pascal_palette(len(ATR_CLASSES)))

VITON_CLASSES: tuple[str, ...] = (
    "background",
    "hair",
    "face",
    "upper",
    "bottom",
    "left_arm",
    "right_arm",
    "left_leg",
    "right_leg",
    "left_shoe",
    "right_shoe",
    "socks",
    "noise",
)
# the CIHP class whose colour each VITON group is drawn in
_VITON_COLOUR_OF = (0, 2, 13, 5, 9, 14, 15, 16, 17, 18, 19, 8, 3)
VITON_LABELS = LabelSet("viton", VITON_CLASSES, tuple(CIHP_PALETTE[i] for i in _VITON_COLOUR_OF))

OUTPUT_LABEL_SETS: dict[str, LabelSet] = {
    s.name: s for s in (CIHP_LABELS, LIP_LABELS, ATR_LABELS, VITON_LABELS)
}


@dataclass(frozen=True)
class Sided:
    """A source class whose target depends on the side of the body it is on: ``left`` for
    the person's left, which in a frontal photo is the image's right of the person's centre
    line (see ``m2fp.outputs.remap``)."""

    left: str
    right: str


@dataclass(frozen=True)
class SidedClass:
    """``Sided`` with ids: source class ``source_id`` becomes ``left_id`` or ``right_id``."""

    source_id: int
    left_id: int
    right_id: int


@dataclass(frozen=True)
class RemapRule:
    """How a label map in ``source`` becomes one in ``target``.

    Attributes:
        table: target id of each source id (for a sided class, its ``left_id``).
        sided: the source classes that take the id of their side instead.
    """

    source: LabelSet
    target: LabelSet
    table: tuple[int, ...]
    sided: tuple[SidedClass, ...] = ()


def _rule(source: LabelSet, target: LabelSet, names: dict[str, str | Sided]) -> RemapRule:
    missing = set(source.names) - set(names)
    assert not missing, f"{source.name}->{target.name} leaves {sorted(missing)} unmapped"  # nosec B101 # checks the module's own tables at import, no input
    table: list[int] = []
    sided: list[SidedClass] = []
    for source_id, name in enumerate(source.names):
        goal = names[name]
        if isinstance(goal, Sided):
            left, right = target.names.index(goal.left), target.names.index(goal.right)
            sided.append(SidedClass(source_id, left, right))
            table.append(left)
        else:
            table.append(target.names.index(goal))
    return RemapRule(source, target, tuple(table), tuple(sided))


def _identity(labels: LabelSet) -> dict[str, str | Sided]:
    return {name: name for name in labels.names}


_SHARED_ATR: dict[str, str | Sided] = {
    "Background": "Background",
    "Hat": "Hat",
    "Hair": "Hair",
    "Glove": Sided("Left-arm", "Right-arm"),
    "Sunglasses": "Sunglasses",
    "UpperClothes": "Upper-clothes",
    "Dress": "Dress",
    "Coat": "Upper-clothes",
    "Socks": Sided("Left-leg", "Right-leg"),
    "Pants": "Pants",
    "Torso-skin": "Neck",
    "Scarf": "Scarf",
    "Skirt": "Skirt",
    "Face": "Face",
    "Left-arm": "Left-arm",
    "Right-arm": "Right-arm",
    "Left-leg": "Left-leg",
    "Right-leg": "Right-leg",
    "Left-shoe": "Left-shoe",
    "Right-shoe": "Right-shoe",
}

_VITON: dict[str, str | Sided] = {
    "Background": "background",
    "Torso-skin": "background",
    "Hat": "hair",
    "Hair": "hair",
    "Sunglasses": "face",
    "Face": "face",
    "UpperClothes": "upper",
    "Dress": "upper",
    "Coat": "upper",
    "Jumpsuits": "upper",
    "Pants": "bottom",
    "Skirt": "bottom",
    "Left-arm": "left_arm",
    "Right-arm": "right_arm",
    "Left-leg": "left_leg",
    "Right-leg": "right_leg",
    "Left-shoe": "left_shoe",
    "Right-shoe": "right_shoe",
    "Socks": "socks",
    "Glove": "noise",
    "Scarf": "noise",
}


def _only(labels: LabelSet, names: dict[str, str | Sided]) -> dict[str, str | Sided]:
    return {name: goal for name, goal in names.items() if name in labels.names}


_LIP_FROM_CIHP = {**_identity(CIHP_LABELS), "Torso-skin": "Background"}

REMAP_RULES: dict[tuple[str, str], RemapRule] = {
    ("cihp", "cihp"): _rule(CIHP_LABELS, CIHP_LABELS, _identity(CIHP_LABELS)),
    ("cihp", "lip"): _rule(CIHP_LABELS, LIP_LABELS, _LIP_FROM_CIHP),
    ("cihp", "atr"): _rule(CIHP_LABELS, ATR_LABELS, _SHARED_ATR),
    ("cihp", "viton"): _rule(CIHP_LABELS, VITON_LABELS, _only(CIHP_LABELS, _VITON)),
    ("lip", "lip"): _rule(LIP_LABELS, LIP_LABELS, _identity(LIP_LABELS)),
    ("lip", "viton"): _rule(LIP_LABELS, VITON_LABELS, _only(LIP_LABELS, _VITON)),
}
# pairs that cannot be derived, and why
REFUSED_REMAPS: dict[tuple[str, str], str] = {
    ("lip", "cihp"): "LIP's Jumpsuits has no CIHP class and LIP does not label Torso-skin",
    ("lip", "atr"): "ATR's Neck is derived from CIHP's Torso-skin, which LIP does not label",
}


def remap_rule(source: LabelSet, target: str) -> RemapRule:
    """The table that writes a ``source`` label map in label set ``target``.

    Raises:
        OutputRequestError: ``target`` is unknown, or cannot be derived from ``source``.
    """
    if target not in OUTPUT_LABEL_SETS:
        raise OutputRequestError(
            f"unknown label set {target!r} (known: {', '.join(OUTPUT_LABEL_SETS)})"
        )
    refused = REFUSED_REMAPS.get((source.name, target))
    if refused is not None:
        raise OutputRequestError(
            f"a {target} label map cannot be made from {source.name}: {refused}"
        )
    rule = REMAP_RULES.get((source.name, target))
    assert rule is not None, f"no rule and no refusal for {source.name}->{target}"  # nosec B101 # invariant of the module's own tables, no input
    return rule
