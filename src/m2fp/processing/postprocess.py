"""ModelScope's multi-person parsing post-processing, computed without its memory trap.

ModelScope upsamples all Q query masks to the original photo size before anything else. Here
only queries whose class score could still yield a returned instance are upsampled, and each
only inside the window where its logits can be positive (bilinear resizing mixes neighbouring
values with non-negative weights, so outside the reach of its positive low-resolution pixels an
upsampled logit is <= 0: no mask pixel, no mask-score term, nothing pasted). The semantic label
map is built class by class with a running argmax over the classes' windows. Scores, masks and
the label map are those ModelScope computes, up to float rounding.

Frames: ``mask_logits`` QxH/4xW/4 of the padded input; ``input_size`` the resized image inside
the padding; ``output_size`` the original photo.

numpy on the CPU (float32, as PyTorch computes it): the torch engine's outputs and OpenVINO's
both arrive here as arrays, so the slim runtime without PyTorch runs this same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from m2fp.processing.activations import sigmoid, softmax
from m2fp.processing.masks import CroppedMask
from m2fp.processing.resample import MaskResampler

TOPK_PER_IMAGE = 100
PART_MIN_SCORE = 0.1  # parts: kept when score >= 0.1
HUMAN_MIN_SCORE = 0.1  # humans: kept when score > 0.1
CACHE_BYTES = 96 * 2**20  # upsampled windows kept for painting; the rest are recomputed


@dataclass(frozen=True)
class Instance:
    """A returned part or human instance.

    Attributes:
        label: class index (1..num_parsing-1 for parts, num_parsing for humans).
        score: class probability times mean mask probability, as ModelScope computes it.
        mask: the binary mask at the original size.
    """

    label: int
    score: float
    mask: CroppedMask


@dataclass(frozen=True)
class ParsedOutput:
    """Post-processed network output for one image.

    Attributes:
        parts: part instances (background excluded), score >= 0.1.
        humans: human instances, score > 0.1.
        label_map: HxW uint8 semantic labels (0..num_parsing-1) at the original size.
        semantic_max: HxW float32, the winning class probability per pixel.
    """

    parts: list[Instance]
    humans: list[Instance]
    label_map: np.ndarray
    semantic_max: np.ndarray


@dataclass(frozen=True)
class ClassMap:
    """One class's semantic probabilities inside the window where they can be positive.

    Attributes:
        rows, cols: the window in the original photo.
        values: (rows) x (cols) float32: the mean probability of the class's pasted instances.
    """

    rows: slice
    cols: slice
    values: np.ndarray


class PassOutput:
    """One network pass, post-processed up to what a label map is made of: the instances
    returned and, per class, its probability map (made on request, class by class, so only
    one exists at a time)."""

    def __init__(
        self,
        *,
        parts: list[Instance],
        humans: list[Instance],
        candidates: _Candidates,
        final_scores: np.ndarray,
        masks: _QueryMasks,
        ins_score_thr: float,
        num_parsing: int,
        output_size: tuple[int, int],
    ) -> None:
        self.parts = parts
        self.humans = humans
        self.num_parsing = num_parsing
        self.output_size = output_size
        self._candidates = candidates
        self._final_scores = final_scores
        self._masks = masks
        self._ins_score_thr = ins_score_thr

    def parsed(self) -> ParsedOutput:
        """The instances with the label map ModelScope paints from them."""
        label_map, semantic_max = paste_label_map(
            self.class_map, num_parsing=self.num_parsing, output_size=self.output_size
        )
        return ParsedOutput(
            parts=self.parts, humans=self.humans, label_map=label_map, semantic_max=semantic_max
        )

    def class_map(self, cls: int) -> ClassMap | None:
        """Per pixel, the mean over the class's instances above ``ins_score_thr`` of their
        probability where it exceeds 0.5 (ModelScope's ``paste_category_probs``); None where
        the class pastes nothing.

        Outside an instance's window its probability is <= 0.5, so it adds nothing there.
        """
        labels, scores, slots = (
            self._candidates.labels,
            self._final_scores,
            self._candidates.slots,
        )
        regions = self._masks.regions
        selected = np.flatnonzero((labels == cls) & (scores >= self._ins_score_thr))
        # ascending score: the order ModelScope adds them in
        selected = [
            int(i)
            for i in selected[scores[selected].argsort(kind="stable")]
            if int(slots[i]) in regions
        ]
        if not selected:
            return None
        boxes = [regions[int(slots[i])] for i in selected]
        top, bottom = min(r[0].start for r in boxes), max(r[0].stop for r in boxes)
        left, right = min(r[1].start for r in boxes), max(r[1].stop for r in boxes)
        total = np.zeros((bottom - top, right - left), dtype=np.float32)
        times = np.zeros((bottom - top, right - left), dtype=np.float32)
        for i, (rows, cols) in zip(selected, boxes, strict=True):
            weighted = sigmoid(self._masks.window_of(int(slots[i])).logits)
            weighted *= scores[i]
            hit = weighted > 0.5
            local = (
                slice(rows.start - top, rows.stop - top),
                slice(cols.start - left, cols.stop - left),
            )
            total[local] = np.where(hit, weighted + total[local], total[local])
            times[local] += hit
        return ClassMap(
            rows=slice(top, bottom),
            cols=slice(left, right),
            values=total / np.maximum(times, np.float32(1)),
        )


def measure_pass(
    class_logits: np.ndarray,
    mask_logits: np.ndarray,
    *,
    padded_size: tuple[int, int],
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    num_parsing: int,
    ins_score_thr: float,
) -> PassOutput:
    """One image's network output post-processed: its instances, and what its label map is
    made of (``PassOutput.parsed()`` paints it).

    Args:
        class_logits: Qx(K+1) float32 logits, the last column "no object".
        mask_logits: QxH/4xW/4 float32 mask logits.
        padded_size: (H, W) of the padded network input.
        input_size: (h, w) of the resized image within it.
        output_size: (H, W) of the original photo.
        num_parsing: number of semantic classes; class ``num_parsing`` is "Human".
        ins_score_thr: minimum instance score for pasting into the label map.
    """
    class_logits = np.asarray(class_logits, dtype=np.float32)
    mask_logits = np.asarray(mask_logits, dtype=np.float32)
    candidates = _Candidates.select(class_logits, ins_score_thr)
    resampler = MaskResampler(
        low_size=(int(mask_logits.shape[-2]), int(mask_logits.shape[-1])),
        padded_size=padded_size,
        input_size=input_size,
        output_size=output_size,
    )
    masks = _QueryMasks.measure(
        candidates,
        mask_logits,
        resampler,
        num_parsing=num_parsing,
        ins_score_thr=ins_score_thr,
    )
    final_scores = candidates.scores * masks.mask_scores[candidates.slots]
    parts, humans = _instances(candidates, final_scores, masks, num_parsing=num_parsing)
    return PassOutput(
        parts=parts,
        humans=humans,
        candidates=candidates,
        final_scores=final_scores,
        masks=masks,
        ins_score_thr=ins_score_thr,
        num_parsing=num_parsing,
        output_size=output_size,
    )


def paste_label_map(
    class_map: Callable[[int], ClassMap | None], *, num_parsing: int, output_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The argmax over classes of their probability maps (first class wins ties, as
    torch.argmax), class by class: HxW uint8 labels and HxW float32 winning probabilities.

    Outside a class's window its probability is 0 and cannot beat the running best (>= 0).
    """
    best = np.zeros(output_size, dtype=np.float32)
    best_label = np.zeros(output_size, dtype=np.uint8)
    for cls in range(num_parsing):
        found = class_map(cls)
        if found is None:
            continue
        region = (found.rows, found.cols)
        better = found.values > best[region]
        best[region] = np.where(better, found.values, best[region])
        best_label[region][better] = cls
    return best_label, best


@dataclass(frozen=True)
class _Candidates:
    """The (query, label) pairs of the top-k class scores that can still reach a threshold.

    Attributes:
        scores: N class probabilities.
        labels: N class indices.
        slots: N indices into ``queries``.
        queries: the distinct query indices among the pairs, ascending.
    """

    scores: np.ndarray
    labels: np.ndarray
    slots: np.ndarray
    queries: np.ndarray

    @classmethod
    def select(cls, class_logits: np.ndarray, ins_score_thr: float) -> _Candidates:
        """ModelScope's unsorted top-k over Qx(K) class probabilities, without the pairs
        below every threshold: final score = class score * mean mask probability <= class
        score, so they can be dropped before their mask is ever upsampled."""
        num_classes = class_logits.shape[1] - 1
        class_scores = softmax(class_logits)[:, :-1].ravel()
        topk = min(TOPK_PER_IMAGE, class_scores.size)
        flat_index = np.argpartition(-class_scores, topk - 1)[:topk]
        scores = class_scores[flat_index]
        labels = flat_index % num_classes
        queries = flat_index // num_classes
        keep = scores >= min(PART_MIN_SCORE, HUMAN_MIN_SCORE, ins_score_thr)
        unique_queries, slots = np.unique(queries[keep], return_inverse=True)
        return cls(scores=scores[keep], labels=labels[keep], slots=slots, queries=unique_queries)


class _QueryMasks:
    """Per distinct candidate query: its mask score, its mask at the original size if it can
    be returned, and the window it can paint into the label map (upsampled logits cached
    within ``CACHE_BYTES``, the rest recomputed when painting)."""

    def __init__(self, resampler: MaskResampler, mask_logits: np.ndarray, queries: np.ndarray):
        self.resampler = resampler
        self.mask_logits = mask_logits
        self.queries = queries
        self.mask_scores = np.zeros(len(queries), dtype=np.float32)
        self.full_masks: dict[int, CroppedMask] = {}
        self.regions: dict[int, tuple[slice, slice]] = {}
        self.cache: dict[int, _Window] = {}

    @classmethod
    def measure(
        cls,
        candidates: _Candidates,
        mask_logits: np.ndarray,
        resampler: MaskResampler,
        *,
        num_parsing: int,
        ins_score_thr: float,
    ) -> _QueryMasks:
        masks = cls(resampler, mask_logits, candidates.queries)
        cached_bytes = 0
        for slot, query in enumerate(candidates.queries.tolist()):
            window = _Window.upsample(resampler, mask_logits[query])
            if window is None:
                continue  # no positive pixel: mask score 0, no mask
            positive = window.logits > 0
            positive_f = positive.astype(np.float32)
            masks.mask_scores[slot] = (sigmoid(window.logits) * positive_f).sum() / (
                positive_f.sum() + np.float32(1e-6)
            )
            rows, cols = positive.any(1), positive.any(0)
            if not rows.any():
                continue
            # the same products as the final scores of measure_pass
            pair = candidates.slots == slot
            pair_scores = candidates.scores[pair] * masks.mask_scores[slot]
            pair_labels = candidates.labels[pair]
            # a superset of the parts and humans returned (whose float comparisons differ
            # from these float32 ones at the last bit), so every returned instance has its mask
            returned = (pair_labels != 0) & (pair_scores >= min(PART_MIN_SCORE, HUMAN_MIN_SCORE))
            if returned.any():
                masks.full_masks[slot] = CroppedMask.from_projections(
                    positive,
                    rows,
                    cols,
                    origin=(window.top, window.left),
                    size=resampler.output_size,
                )
            if ((pair_labels != num_parsing) & (pair_scores >= ins_score_thr)).any():
                masks.regions[slot] = window.region
                if cached_bytes + window.logits.nbytes <= CACHE_BYTES:
                    masks.cache[slot] = window
                    cached_bytes += window.logits.nbytes
        return masks

    def window_of(self, slot: int) -> _Window:
        """The upsampled window of a query that has one (it had positive pixels)."""
        cached = self.cache.get(slot)
        if cached is not None:
            return cached
        window = _Window.upsample(self.resampler, self.mask_logits[int(self.queries[slot])])
        assert window is not None  # nosec B101 # internal invariant, not a check of input (it had positive pixels when measured)
        return window


def _instances(
    candidates: _Candidates, final_scores: np.ndarray, masks: _QueryMasks, *, num_parsing: int
) -> tuple[list[Instance], list[Instance]]:
    """Parts (score >= 0.1, background excluded) and humans (score > 0.1), best first."""
    parts: list[Instance] = []
    humans: list[Instance] = []
    for i in range(len(final_scores)):
        label, score = int(candidates.labels[i]), float(final_scores[i])
        slot = int(candidates.slots[i])
        if label == num_parsing:
            if score > HUMAN_MIN_SCORE:
                humans.append(Instance(label=label, score=score, mask=masks.full_masks[slot]))
        elif label != 0 and score >= PART_MIN_SCORE:
            parts.append(Instance(label=label, score=score, mask=masks.full_masks[slot]))
    parts.sort(key=lambda inst: -inst.score)
    humans.sort(key=lambda inst: -inst.score)
    return parts, humans


@dataclass(frozen=True)
class _Window:
    """Upsampled logits of one query inside the window where they can be positive."""

    logits: np.ndarray  # (bottom - top) x (right - left), float32
    top: int
    left: int

    @classmethod
    def upsample(cls, resampler: MaskResampler, low: np.ndarray) -> _Window | None:
        positive = low > 0
        low_rows = np.flatnonzero(positive.any(1))
        if low_rows.size == 0:
            return None
        low_cols = np.flatnonzero(positive.any(0))
        top, bottom = resampler.support(int(low_rows[0]), int(low_rows[-1]) + 1, axis=0)
        left, right = resampler.support(int(low_cols[0]), int(low_cols[-1]) + 1, axis=1)
        if top >= bottom or left >= right:
            return None
        logits = resampler.window(low[None], (top, bottom), (left, right))[0]
        return cls(logits=logits, top=top, left=left)

    @property
    def region(self) -> tuple[slice, slice]:
        height, width = self.logits.shape
        return slice(self.top, self.top + height), slice(self.left, self.left + width)
