"""ModelScope's multi-person parsing post-processing, computed without its memory trap.

ModelScope upsamples all Q query masks to the original photo size before anything else. Here
only queries whose class score could still yield a returned instance are upsampled, in chunks
of bounded size, and the semantic label map is built class by class with a running argmax.
Scores, masks and the label map are those ModelScope computes.

Frames: ``mask_logits`` QxH/4xW/4 of the padded input; ``input_size`` the resized image inside
the padding; ``output_size`` the original photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from m2fp.processing.masks import CroppedMask

TOPK_PER_IMAGE = 100
PART_MIN_SCORE = 0.1  # parts: kept when score >= 0.1
HUMAN_MIN_SCORE = 0.1  # humans: kept when score > 0.1
CHUNK_BYTES = 96 * 2**20  # upper bound of float32 upsampled masks held at once


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


def upsample_masks(
    mask_logits: torch.Tensor,
    padded_size: tuple[int, int],
    input_size: tuple[int, int],
    output_size: tuple[int, int],
) -> torch.Tensor:
    """NxH/4xW/4 logits -> NxHxW logits at the original size.

    Same two steps as ModelScope: to the padded input, crop the padding, then to the original.
    """
    x = F.interpolate(mask_logits[None], size=padded_size, mode="bilinear", align_corners=False)
    x = x[:, :, : input_size[0], : input_size[1]]
    if tuple(input_size) != tuple(output_size):
        x = F.interpolate(x, size=output_size, mode="bilinear", align_corners=False)
    return x[0]


def _chunks(count: int, height: int, width: int, padded: tuple[int, int]) -> list[slice]:
    per_mask = 4 * (height * width + padded[0] * padded[1])
    step = max(1, CHUNK_BYTES // per_mask)
    return [slice(i, min(i + step, count)) for i in range(0, count, step)]


def parse_outputs(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    *,
    padded_size: tuple[int, int],
    input_size: tuple[int, int],
    output_size: tuple[int, int],
    num_parsing: int,
    ins_score_thr: float,
) -> ParsedOutput:
    """Instances and label map from one image's network output.

    Args:
        class_logits: Qx(K+1) logits, the last column "no object".
        mask_logits: QxH/4xW/4 mask logits.
        padded_size: (H, W) of the padded network input.
        input_size: (h, w) of the resized image within it.
        output_size: (H, W) of the original photo.
        num_parsing: number of semantic classes; class ``num_parsing`` is "Human".
        ins_score_thr: minimum instance score for pasting into the label map.
    """
    num_classes = class_logits.shape[1] - 1
    class_scores = class_logits.softmax(-1)[:, :-1]
    topk = min(TOPK_PER_IMAGE, class_scores.numel())
    scores, flat_index = class_scores.flatten().topk(topk, sorted=False)
    labels = flat_index % num_classes
    queries = torch.div(flat_index, num_classes, rounding_mode="floor")

    # final score = class score * mean mask probability <= class score, so anything below every
    # threshold can be dropped before its mask is ever upsampled
    keep = scores >= min(PART_MIN_SCORE, HUMAN_MIN_SCORE, ins_score_thr)
    scores, labels, queries = scores[keep], labels[keep], queries[keep]
    unique_queries, query_slot = torch.unique(queries, return_inverse=True)

    height, width = output_size
    mask_scores = torch.zeros(len(unique_queries))
    full_masks: dict[int, CroppedMask] = {}
    for chunk in _chunks(len(unique_queries), height, width, padded_size):
        logits = upsample_masks(
            mask_logits[unique_queries[chunk]], padded_size, input_size, output_size
        )
        positive = logits > 0
        probs = logits.sigmoid()
        positive_f = positive.flatten(1).float()
        mask_scores[chunk] = (probs.flatten(1) * positive_f).sum(1) / (positive_f.sum(1) + 1e-6)
        rows, cols = positive.any(2), positive.any(1)
        for offset in torch.nonzero(rows.any(1)).flatten().tolist():
            full_masks[chunk.start + offset] = CroppedMask.from_projections(
                positive[offset], rows[offset], cols[offset]
            )

    final_scores = scores * mask_scores[query_slot]
    parts: list[Instance] = []
    humans: list[Instance] = []
    for i in range(len(final_scores)):
        label, score, slot = int(labels[i]), float(final_scores[i]), int(query_slot[i])
        if label == num_parsing:
            if score > HUMAN_MIN_SCORE:
                humans.append(Instance(label=label, score=score, mask=full_masks[slot]))
        elif label != 0 and score >= PART_MIN_SCORE:
            parts.append(Instance(label=label, score=score, mask=full_masks[slot]))

    label_map, semantic_max = _paste_semantics(
        mask_logits,
        labels=labels,
        scores=final_scores,
        queries=queries,
        num_parsing=num_parsing,
        ins_score_thr=ins_score_thr,
        padded_size=padded_size,
        input_size=input_size,
        output_size=output_size,
    )
    parts.sort(key=lambda inst: -inst.score)
    humans.sort(key=lambda inst: -inst.score)
    return ParsedOutput(parts=parts, humans=humans, label_map=label_map, semantic_max=semantic_max)


def _paste_semantics(
    mask_logits: torch.Tensor,
    *,
    labels: torch.Tensor,
    scores: torch.Tensor,
    queries: torch.Tensor,
    num_parsing: int,
    ins_score_thr: float,
    padded_size: tuple[int, int],
    input_size: tuple[int, int],
    output_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, average the probabilities of its instances above ``ins_score_thr`` where they
    exceed 0.5, then take the argmax over classes (first class wins ties, as torch.argmax)."""
    height, width = output_size
    best = torch.zeros(output_size)
    best_label = torch.zeros(output_size, dtype=torch.uint8)
    for cls in range(num_parsing):
        selected = torch.nonzero((labels == cls) & (scores >= ins_score_thr)).flatten()
        if selected.numel() == 0:
            continue
        # ascending score: the order ModelScope adds them in
        selected = selected[scores[selected].argsort()]
        total = torch.zeros(output_size)
        times = torch.zeros(output_size)
        for chunk in _chunks(len(selected), height, width, padded_size):
            idx = selected[chunk]
            logits = upsample_masks(mask_logits[queries[idx]], padded_size, input_size, output_size)
            weighted = logits.sigmoid_().mul_(scores[idx][:, None, None])
            hit = weighted > 0.5
            # ModelScope adds instances one by one; a sum over dim 0 equals that up to rounding
            total += torch.where(hit, weighted, 0.0).sum(0)
            times += hit.sum(0)
        category = total / times.clamp_(min=1)
        better = category > best
        best = torch.where(better, category, best)
        best_label[better] = cls
    return best_label.numpy(), best.numpy()
