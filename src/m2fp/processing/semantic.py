"""The single-person model's post-processing: semantic map, label map and class scores.

ModelScope (``M2FP.postprocess`` with ``single_human`` and ``semantic_on``, then
``ImageHumanParsingPipeline.postprocess``):

1. mask logits QxH/4xW/4 are resized bilinearly to the padded input HpxWp;
2. semantic map KxHpxWp = einsum(softmax(class logits)[:, :-1], sigmoid(masks)): per class,
   the class probabilities of all queries weighted by their mask probabilities;
3. the network input (before ``size_divisibility`` padding) is kept, the ``crop_box`` cut out
   of it, and that KxhXw map resized bilinearly to the original photo;
4. label map = argmax over classes (first class on ties); per class present (background
   included) score = sum(mask * sigmoid(semantic[c])) / (sum(mask) + 1).

Step 3 is where memory goes: K maps at the photo size (20 x 12 MP x 4 B is ~1 GB). Here the
map stays at crop size (``SemanticMap``) and the photo-size rows are made a band at a time
(``BandResizer``), labelled and scored, and dropped. ``label_semantics`` takes any source of
such rows, so flip test-time augmentation (``m2fp.processing.flip``) can average two.

Frames: mask logits (H/4 of the padded input) -> padded input -> network input -> crop box ->
original photo.

numpy on the CPU, float32 (float64 sums) as PyTorch computes it: both engines' outputs arrive
here as arrays, so the slim runtime without PyTorch runs this same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from m2fp.processing.activations import sigmoid, softmax
from m2fp.processing.resample import BandResizer

BAND_VALUES = 8 * 2**20  # floats per band of photo-size rows (32 MB of float32)


def semantic_probabilities(
    class_logits: np.ndarray, mask_logits: np.ndarray, padded_size: tuple[int, int]
) -> np.ndarray:
    """Steps 1-2: the KxHpxWp float32 semantic map of one image.

    Args:
        class_logits: Qx(K+1) float32, the last column "no object".
        mask_logits: QxH/4xW/4 float32.
        padded_size: (Hp, Wp) of the padded network input.
    """
    mask_logits = np.asarray(mask_logits, dtype=np.float32)
    class_probs = softmax(np.asarray(class_logits, dtype=np.float32))[:, :-1]
    resizer = BandResizer(mask_logits.shape[-2:], padded_size)
    masks = sigmoid(resizer.band(mask_logits, 0, padded_size[0]))
    # the einsum "qc,qhw->chw" as one matrix product (BLAS): KxQ @ QxHpWp
    flat = class_probs.T @ masks.reshape(masks.shape[0], -1)
    return flat.reshape(-1, *padded_size)


class SemanticRows(Protocol):
    """Photo-size semantic probabilities, a band of rows at a time."""

    num_classes: int
    output_size: tuple[int, int]

    def band(self, start: int, stop: int) -> np.ndarray:
        """Kx(stop - start)xW float32 probabilities of rows ``start:stop`` of the photo."""
        ...


class SemanticMap:
    """Step 3: the semantic map inside the crop box, resized to the photo band by band.

    Args:
        probabilities: KxHpxWp from ``semantic_probabilities``.
        input_size: (h, w) of the network input inside its ``size_divisibility`` padding.
        crop_box: (x0, y0, x1, y1) of the photo in the network input, ends exclusive.
        output_size: (H, W) of the original photo.
    """

    def __init__(
        self,
        probabilities: np.ndarray,
        *,
        input_size: tuple[int, int],
        crop_box: tuple[int, int, int, int],
        output_size: tuple[int, int],
    ) -> None:
        x0, y0, x1, y1 = crop_box
        inside = probabilities[:, : input_size[0], : input_size[1]]
        self.crop = np.ascontiguousarray(inside[:, y0:y1, x0:x1], dtype=np.float32)
        self.num_classes = int(probabilities.shape[0])
        self.output_size = output_size
        self.resizer = BandResizer((y1 - y0, x1 - x0), output_size)

    def band(self, start: int, stop: int) -> np.ndarray:
        return self.resizer.band(self.crop, start, stop)


@dataclass(frozen=True)
class SemanticLabels:
    """Step 4 for one photo.

    Attributes:
        label_map: HxW uint8, the winning class per pixel (0 = background).
        scores: class index -> ModelScope's score, for every class in ``label_map``,
            background included, ascending class index.
    """

    label_map: np.ndarray
    scores: dict[int, float]


def band_rows(num_classes: int, width: int) -> int:
    """Rows per band: ``BAND_VALUES`` floats of K photo-size rows, at least one row."""
    return max(1, BAND_VALUES // max(1, num_classes * width))


def label_semantics(rows: SemanticRows) -> SemanticLabels:
    """Step 4: argmax and scores over photo-size rows, a band at a time.

    Sums are float64, as ModelScope's numpy sum of a float64 mask times the float32 map.
    """
    height, width = rows.output_size
    num_classes = rows.num_classes
    label_map = np.empty((height, width), dtype=np.uint8)
    sums = np.zeros(num_classes, dtype=np.float64)
    counts = np.zeros(num_classes, dtype=np.int64)
    step = band_rows(num_classes, width)
    for start in range(0, height, step):
        stop = min(height, start + step)
        probabilities = rows.band(start, stop)
        labels = probabilities.argmax(0)
        chosen = sigmoid(np.take_along_axis(probabilities, labels[None], axis=0)[0])
        flat = labels.ravel()
        sums += np.bincount(flat, weights=chosen.ravel().astype(np.float64), minlength=num_classes)
        counts += np.bincount(flat, minlength=num_classes)
        label_map[start:stop] = labels.astype(np.uint8)
    present = np.flatnonzero(counts).tolist()
    scores = {c: float(sums[c] / (counts[c] + 1)) for c in present}
    return SemanticLabels(label_map=label_map, scores=scores)
