"""Hand-drawn label maps: one character per pixel, so a test shows the picture and the mask it
expects side by side, pixel by pixel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from m2fp.labels import CIHP_CLASSES, CIHP_LABELS, LIP_CLASSES, LabelSet
from m2fp.processing.masks import CroppedMask
from m2fp.results.parsing_result import ParsingResult, Person

# one character per class (CIHP and LIP names; J is LIP's Jumpsuits)
CODES = {
    ".": "Background",
    "T": "Hat",
    "h": "Hair",
    "g": "Glove",
    "S": "Sunglasses",
    "U": "UpperClothes",
    "D": "Dress",
    "C": "Coat",
    "k": "Socks",
    "P": "Pants",
    "n": "Torso-skin",
    "J": "Jumpsuits",
    "f": "Scarf",
    "K": "Skirt",
    "F": "Face",
    "a": "Left-arm",
    "A": "Right-arm",
    "l": "Left-leg",
    "L": "Right-leg",
    "o": "Left-shoe",
    "O": "Right-shoe",
}


def rows(art: str) -> list[str]:
    lines = [line.strip() for line in art.splitlines() if line.strip()]
    assert len({len(line) for line in lines}) == 1, "every row must be as wide"
    return lines


def draw(art: str, labels: LabelSet = CIHP_LABELS) -> np.ndarray:
    """HxW uint8 label map in ``labels`` ids from a drawing in ``CODES``."""
    return np.array(
        [[labels.names.index(CODES[c]) for c in line] for line in rows(art)], dtype=np.uint8
    )


def draw_mask(art: str) -> np.ndarray:
    """HxW bool from a drawing: ``#`` set, ``.`` not."""
    return np.array([[c == "#" for c in line] for line in rows(art)], dtype=bool)


def draw_persons(art: str) -> np.ndarray:
    """HxW uint8 person map from a drawing: digit i = persons[i - 1], ``.`` nobody."""
    return np.array([[0 if c == "." else int(c) for c in line] for line in rows(art)], np.uint8)


def show(mask: np.ndarray) -> str:
    """A mask drawn back as ``#``/``.`` (for readable assertion failures)."""
    return "\n".join("".join("#" if v else "." for v in row) for row in mask)


@dataclass(frozen=True)
class BoxedPerson:
    """A parse answer's person: just what scoping needs."""

    bbox: tuple[int, int, int, int]
    area: int


def result_from(label_art: str, person_art: str | None = None, *, lip: bool = False):
    """A ParsingResult of a drawn label map (CIHP, or LIP with ``lip``) and person map (every
    person's instance mask is where its digit is, scores falling with the index)."""
    class_names = (*(LIP_CLASSES if lip else CIHP_CLASSES[:20]), "Human")
    labels = draw(label_art, LabelSet("x", class_names[:20], ((0, 0, 0),) * 20))
    persons_map = draw_persons(person_art) if person_art else np.zeros_like(labels)
    count = int(persons_map.max())
    persons = tuple(
        Person(score=1.0 - i / 100, mask_data=CroppedMask.from_full(persons_map == i + 1))
        for i in range(count)
    )
    image = Image.new("RGB", (labels.shape[1], labels.shape[0]), (90, 90, 90))
    return ParsingResult(
        image=image,
        label_map=labels,
        persons=persons,
        unassigned_parts=(),
        class_names=class_names,
    )


# A frontal person (their left arm "a" on the image's right), face 2 rows high.
FIGURE = """
.....hhhh.....
....hFFFFh....
.....FFFF.....
......nn......
...UUUUUUUU...
..AUUUUUUUUa..
..AUUUUUUUUa..
..A.UUUUUU.a..
..A.PPPPPP.a..
..g.PPPPPP.a..
....PP..PP....
....PP..PP....
....LL..ll....
....OO..oo....
"""


def chars(art: str, codes: str) -> np.ndarray:
    """HxW bool: where the drawing has one of ``codes``."""
    return np.array([[c in codes for c in line] for line in rows(art)], dtype=bool)
