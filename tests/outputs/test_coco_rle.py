"""Our COCO RLE against pycocotools, the reference implementation (a test dependency only)."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as coco
import pytest

from m2fp.outputs import coco_rle
from m2fp.outputs.errors import OutputRequestError
from tests.utils.label_maps import draw_mask

# pycocotools' own decode trips numpy 2's copy-keyword deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def theirs(mask: np.ndarray) -> dict:
    return coco.encode(np.asfortranarray(mask.astype(np.uint8)))


def masks():
    rng = np.random.default_rng(7)
    yield np.zeros((0, 0), dtype=bool)
    yield np.zeros((5, 3), dtype=bool)
    yield np.ones((5, 3), dtype=bool)
    yield draw_mask("#..\n.#.\n..#")
    big = np.zeros((480, 640), dtype=bool)
    big[100:400, 200:500] = True
    big[0, 0] = big[-1, -1] = True
    yield big
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(1, 50, 2))
        yield rng.random((height, width)) < rng.choice([0.02, 0.5, 0.98])


@pytest.mark.parametrize("mask", list(masks()), ids=lambda m: f"{m.shape[0]}x{m.shape[1]}")
def test_encode_decode_and_area_agree_with_pycocotools(mask):
    ours = coco_rle.encode(mask)
    reference = theirs(mask)
    assert ours["size"] == list(reference["size"])
    assert ours["counts"] == reference["counts"].decode("ascii")
    assert (coco_rle.decode(ours) == mask).all()
    assert coco_rle.area(ours) == int(coco.area(reference)) == int(mask.sum())
    back = coco.decode({"size": ours["size"], "counts": ours["counts"].encode("ascii")})
    assert (back.astype(bool) == mask).all()
    assert (coco_rle.decode(reference) == mask).all()  # bytes counts, as pycocotools gives


def test_the_drawn_diagonal_by_hand():
    # column order: 1, then 3 zeros, 1, 3 zeros, 1 -> runs [0, 1, 3, 1, 3, 1]
    mask = draw_mask("#..\n.#.\n..#")
    assert coco_rle.run_lengths(mask) == [0, 1, 3, 1, 3, 1]
    assert coco_rle.decode({"size": [3, 3], "counts": [0, 1, 3, 1, 3, 1]}).tolist() == (
        mask.tolist()
    )


def test_uncompressed_counts_from_pycocotools_decode_too():
    mask = draw_mask("##.\n.##")  # column order 1 0 1 1 0 1
    uncompressed = coco.frPyObjects({"size": [2, 3], "counts": [0, 1, 1, 2, 1, 1]}, 2, 3)
    assert (coco.decode(uncompressed).astype(bool) == mask).all()
    assert (coco_rle.decode({"size": [2, 3], "counts": [0, 1, 1, 2, 1, 1]}) == mask).all()


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [2, 2], "counts": [1, 1]},  # 2 pixels for 4
        {"size": [2], "counts": "4"},
        {"size": [2, 2], "counts": "\x7f"},
        {"size": [2, 2], "counts": "P"},  # ends inside a count
        {"size": [2, 2], "counts": 4},
    ],
)
def test_malformed_rle_is_refused(rle):
    with pytest.raises(OutputRequestError):
        coco_rle.decode(rle)
