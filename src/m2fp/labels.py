"""Class names of the label sets (ModelScope order) and the fixed colour palette.

A label map's pixel value i means class ``names[i]`` of its label set. The multi-person model
paints CIHP classes (its network has one more class, "Human", for person instances, which is
never painted); the single-person model paints LIP classes, which differ from CIHP only at 10
(``Jumpsuits`` instead of ``Torso-skin``).
"""

from __future__ import annotations

from dataclasses import dataclass

CIHP_CLASSES: tuple[str, ...] = (
    "Background",
    "Hat",
    "Hair",
    "Glove",
    "Sunglasses",
    "UpperClothes",
    "Dress",
    "Coat",
    "Socks",
    "Pants",
    "Torso-skin",
    "Scarf",
    "Skirt",
    "Face",
    "Left-arm",
    "Right-arm",
    "Left-leg",
    "Right-leg",
    "Left-shoe",
    "Right-shoe",
    "Human",
)

# The usual CIHP/LIP palette: index i is the RGB colour of class i in the label map.
CIHP_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (128, 0, 0),
    (255, 0, 0),
    (0, 85, 0),
    (170, 0, 51),
    (255, 85, 0),
    (0, 0, 85),
    (0, 119, 221),
    (85, 85, 0),
    (0, 85, 85),
    (85, 51, 0),
    (52, 86, 128),
    (0, 128, 0),
    (0, 0, 255),
    (51, 170, 221),
    (0, 255, 255),
    (85, 255, 170),
    (170, 255, 85),
    (255, 255, 0),
    (255, 170, 0),
)


LIP_CLASSES: tuple[str, ...] = (
    *CIHP_CLASSES[:10],
    "Jumpsuits",
    *CIHP_CLASSES[11:20],
)


@dataclass(frozen=True)
class LabelSet:
    """The classes a label map can hold: pixel value i is ``names[i]``, drawn ``palette[i]``.

    Attributes:
        name: short identifier (``"cihp"``, ``"lip"``), as clients name it.
        names: class names, index = pixel value; 0 is background.
        palette: one RGB colour per class.
    """

    name: str
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.palette):
            raise ValueError("a label set needs one colour per class")

    def mirrored(self) -> tuple[int, ...]:
        """Per class index, the class it becomes in a horizontally mirrored photo: each
        ``Left-X`` swaps with its ``Right-X`` (the arms, legs and shoes), all others stay."""
        index = {name: i for i, name in enumerate(self.names)}
        return tuple(index.get(_other_side(name), i) for i, name in enumerate(self.names))

    def palette_bytes(self) -> bytes:
        """The palette as 768 bytes for ``PIL.Image.putpalette`` (unused entries black)."""
        flat = bytes(c for rgb in self.palette for c in rgb)
        return flat + bytes(768 - len(flat))


def _other_side(name: str) -> str:
    for side, other in (("Left-", "Right-"), ("Right-", "Left-")):
        if name.startswith(side):
            return other + name.removeprefix(side)
    return name


CIHP_LABELS = LabelSet("cihp", CIHP_CLASSES[: len(CIHP_PALETTE)], CIHP_PALETTE)
# LIP's usual colours are CIHP's, index for index
LIP_LABELS = LabelSet("lip", LIP_CLASSES, CIHP_PALETTE)
LABEL_SETS: dict[str, LabelSet] = {s.name: s for s in (CIHP_LABELS, LIP_LABELS)}


def label_set_of(class_names: tuple[str, ...]) -> LabelSet:
    """The label set whose classes a model paints, from the model's class list (which for
    the multi-person model ends with the unpainted "Human").

    Raises:
        ValueError: the classes are neither CIHP's nor LIP's.
    """
    for label_set in LABEL_SETS.values():
        if tuple(class_names[: len(label_set.names)]) == label_set.names:
            return label_set
    raise ValueError("the model's classes are neither the CIHP nor the LIP label set")
