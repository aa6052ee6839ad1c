"""The single-person post-processing, band by band, against ModelScope's whole-map formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m2fp.processing import semantic
from m2fp.processing.resample import BandResizer
from m2fp.processing.semantic import (
    SemanticMap,
    band_rows,
    label_semantics,
    semantic_probabilities,
)


def reference_semantic(class_logits, mask_logits, padded, input_size, box, output):
    """ModelScope's steps 1-3 on whole maps."""
    masks = F.interpolate(mask_logits[None], size=padded, mode="bilinear", align_corners=False)
    semseg = torch.einsum("qc,qhw->chw", F.softmax(class_logits, -1)[:, :-1], masks[0].sigmoid())
    x0, y0, x1, y1 = box
    crop = semseg[:, : input_size[0], : input_size[1]][:, y0:y1, x0:x1]
    return F.interpolate(crop[None], size=output, mode="bilinear", align_corners=False)[0]


def reference_labels(full: torch.Tensor) -> tuple[np.ndarray, dict[int, float]]:
    """ModelScope's pipeline on the photo-size map: argmax, then per class present
    sum(mask * sigmoid) / (sum(mask) + 1) in float64."""
    labels = full.argmax(0).numpy()
    sig = full.sigmoid().numpy()
    scores = {}
    for c in np.unique(labels):
        mask = np.array(labels == c, dtype=np.float64)
        scores[int(c)] = float((mask * sig[c]).sum() / (mask.sum() + 1))
    return labels, scores


@pytest.mark.parametrize(
    ("padded", "input_size", "box", "output"),
    [
        ((128, 96), (128, 96), (10, 0, 86, 128), (150, 90)),  # the golden case: upscaled
        ((128, 96), (128, 95), (0, 0, 95, 128), (128, 95)),  # no padding, same size
        ((128, 96), (128, 96), (47, 0, 48, 128), (150, 1)),  # a 1-pixel-wide photo
        ((64, 64), (64, 64), (8, 16, 56, 48), (33, 61)),  # downscaled along one axis
    ],
)
def test_bands_equal_modelscopes_whole_maps(padded, input_size, box, output, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    queries, classes = 12, 20
    class_logits = torch.randn(queries, classes + 1, generator=generator) * 3
    mask_logits = torch.randn(queries, padded[0] // 4, padded[1] // 4, generator=generator) * 4
    expected = reference_semantic(class_logits, mask_logits, padded, input_size, box, output)
    probabilities = semantic_probabilities(class_logits.numpy(), mask_logits.numpy(), padded)
    assert isinstance(probabilities, np.ndarray) and probabilities.dtype == np.float32
    semantic_map = SemanticMap(
        probabilities, input_size=input_size, crop_box=box, output_size=output
    )
    np.testing.assert_allclose(
        semantic_map.band(0, output[0]), expected.numpy(), atol=1e-5, rtol=1e-5
    )
    # a few rows per band, so that bands really are stitched
    monkeypatch.setattr(semantic, "BAND_VALUES", classes * output[1] * 7)
    assert band_rows(classes, output[1]) == 7
    labels = label_semantics(semantic_map)
    ref_labels, ref_scores = reference_labels(expected)
    assert (labels.label_map == ref_labels).mean() >= 0.999
    assert list(labels.scores) == list(ref_scores)  # ascending class, background included
    np.testing.assert_allclose(list(labels.scores.values()), list(ref_scores.values()), atol=1e-6)


class FixedRows:
    def __init__(self, maps: np.ndarray) -> None:
        self.maps = maps
        self.num_classes = int(maps.shape[0])
        self.output_size = (int(maps.shape[1]), int(maps.shape[2]))

    def band(self, start: int, stop: int) -> np.ndarray:
        return self.maps[:, start:stop].copy()


def test_ties_go_to_the_first_class_and_scores_count_one_extra_pixel():
    maps = np.zeros((3, 2, 2), dtype=np.float32)
    maps[2, 0, 0] = 1.0  # one pixel of class 2, the rest a three-way tie -> class 0
    labels = label_semantics(FixedRows(maps))
    np.testing.assert_array_equal(labels.label_map, [[2, 0], [0, 0]])
    assert labels.scores == pytest.approx(
        {0: 3 * 0.5 / 4, 2: float(torch.sigmoid(torch.ones(1))) / 2}
    )


def test_band_resizer_matches_interpolate_in_any_band():
    maps = torch.randn(3, 7, 5, generator=torch.Generator().manual_seed(1))
    full = F.interpolate(maps[None], size=(23, 11), mode="bilinear", align_corners=False)[0]
    resizer = BandResizer((7, 5), (23, 11))
    arrays = maps.numpy()
    np.testing.assert_allclose(resizer.band(arrays, 4, 9), full[:, 4:9], atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(resizer.band(arrays, 22, 23), full[:, 22:23], atol=1e-6, rtol=1e-6)
