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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

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
    values: torch.Tensor


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
        final_scores: torch.Tensor,
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
        selected = torch.nonzero((labels == cls) & (scores >= self._ins_score_thr)).flatten()
        # ascending score: the order ModelScope adds them in
        selected = [
            int(i) for i in selected[scores[selected].argsort()] if int(slots[i]) in regions
        ]
        if not selected:
            return None
        boxes = [regions[int(slots[i])] for i in selected]
        top, bottom = min(r[0].start for r in boxes), max(r[0].stop for r in boxes)
        left, right = min(r[1].start for r in boxes), max(r[1].stop for r in boxes)
        total = torch.zeros(bottom - top, right - left)
        times = torch.zeros(bottom - top, right - left)
        for i, (rows, cols) in zip(selected, boxes, strict=True):
            weighted = self._masks.window_of(int(slots[i])).logits.sigmoid().mul_(scores[i])
            hit = weighted > 0.5
            local = (
                slice(rows.start - top, rows.stop - top),
                slice(cols.start - left, cols.stop - left),
            )
            total[local] = torch.where(hit, weighted + total[local], total[local])
            times[local] += hit
        return ClassMap(
            rows=slice(top, bottom), cols=slice(left, right), values=total / times.clamp_(min=1)
        )


def measure_pass(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
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
        class_logits: Qx(K+1) logits, the last column "no object".
        mask_logits: QxH/4xW/4 mask logits.
        padded_size: (H, W) of the padded network input.
        input_size: (h, w) of the resized image within it.
        output_size: (H, W) of the original photo.
        num_parsing: number of semantic classes; class ``num_parsing`` is "Human".
        ins_score_thr: minimum instance score for pasting into the label map.
    """
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
    best = torch.zeros(output_size)
    best_label = torch.zeros(output_size, dtype=torch.uint8)
    for cls in range(num_parsing):
        found = class_map(cls)
        if found is None:
            continue
        region = (found.rows, found.cols)
        better = found.values > best[region]
        best[region] = torch.where(better, found.values, best[region])
        best_label[region][better] = cls
    return best_label.numpy(), best.numpy()


@dataclass(frozen=True)
class _Candidates:
    """The (query, label) pairs of the top-k class scores that can still reach a threshold.

    Attributes:
        scores: N class probabilities.
        labels: N class indices.
        slots: N indices into ``queries``.
        queries: the distinct query indices among the pairs, ascending.
    """

    scores: torch.Tensor
    labels: torch.Tensor
    slots: torch.Tensor
    queries: torch.Tensor

    @classmethod
    def select(cls, class_logits: torch.Tensor, ins_score_thr: float) -> _Candidates:
        """ModelScope's unsorted top-k over Qx(K) class probabilities, without the pairs
        below every threshold: final score = class score * mean mask probability <= class
        score, so they can be dropped before their mask is ever upsampled."""
        num_classes = class_logits.shape[1] - 1
        class_scores = class_logits.softmax(-1)[:, :-1]
        topk = min(TOPK_PER_IMAGE, class_scores.numel())
        scores, flat_index = class_scores.flatten().topk(topk, sorted=False)
        labels = flat_index % num_classes
        queries = torch.div(flat_index, num_classes, rounding_mode="floor")
        keep = scores >= min(PART_MIN_SCORE, HUMAN_MIN_SCORE, ins_score_thr)
        unique_queries, slots = torch.unique(queries[keep], return_inverse=True)
        return cls(scores=scores[keep], labels=labels[keep], slots=slots, queries=unique_queries)


class _QueryMasks:
    """Per distinct candidate query: its mask score, its mask at the original size if it can
    be returned, and the window it can paint into the label map (upsampled logits cached
    within ``CACHE_BYTES``, the rest recomputed when painting)."""

    def __init__(self, resampler: MaskResampler, mask_logits: torch.Tensor, queries: torch.Tensor):
        self.resampler = resampler
        self.mask_logits = mask_logits
        self.queries = queries
        self.mask_scores = torch.zeros(len(queries))
        self.full_masks: dict[int, CroppedMask] = {}
        self.regions: dict[int, tuple[slice, slice]] = {}
        self.cache: dict[int, _Window] = {}

    @classmethod
    def measure(
        cls,
        candidates: _Candidates,
        mask_logits: torch.Tensor,
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
            positive_f = positive.float()
            masks.mask_scores[slot] = (window.logits.sigmoid() * positive_f).sum() / (
                positive_f.sum() + 1e-6
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
                if cached_bytes + 4 * window.logits.numel() <= CACHE_BYTES:
                    masks.cache[slot] = window
                    cached_bytes += 4 * window.logits.numel()
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
    candidates: _Candidates, final_scores: torch.Tensor, masks: _QueryMasks, *, num_parsing: int
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

    logits: torch.Tensor  # (bottom - top) x (right - left)
    top: int
    left: int

    @classmethod
    def upsample(cls, resampler: MaskResampler, low: torch.Tensor) -> _Window | None:
        positive = low > 0
        low_rows = torch.nonzero(positive.any(1)).flatten()
        if low_rows.numel() == 0:
            return None
        low_cols = torch.nonzero(positive.any(0)).flatten()
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
