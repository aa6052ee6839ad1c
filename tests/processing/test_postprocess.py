"""Post-processing against a literal full-resolution transcription of ModelScope's algorithm,
on seeded random outputs confident enough to produce parts, humans and a painted label map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m2fp.processing.postprocess import measure_pass
from m2fp.processing.preprocess import target_size
from tests.utils.same_parse import assert_maps_agree

NUM_PARSING = 20


def reference(class_logits, mask_logits, padded, input_size, output, thr):
    """ModelScope's steps as written there: upsample everything, then score and paste."""
    masks = F.interpolate(mask_logits[None], size=padded, mode="bilinear", align_corners=False)
    masks = masks[:, :, : input_size[0], : input_size[1]]
    masks = F.interpolate(masks, size=output, mode="bilinear", align_corners=False)[0]
    num_classes = class_logits.shape[1] - 1
    scores = class_logits.softmax(-1)[:, :-1]
    labels = torch.arange(num_classes).repeat(class_logits.shape[0])
    top, index = scores.flatten().topk(min(100, scores.numel()), sorted=False)
    labels = labels[index]
    masks = masks[index // num_classes]
    binary = (masks > 0).float()
    mask_scores = (masks.sigmoid().flatten(1) * binary.flatten(1)).sum(1) / (
        binary.flatten(1).sum(1) + 1e-6
    )
    final = top * mask_scores
    semantic = []
    for cls in range(NUM_PARSING):
        sel = torch.where(labels == cls)[0]
        probs = torch.zeros(output)
        times = torch.zeros(output)
        for k in final[sel].argsort():
            if final[sel][k] < thr:
                continue
            p = masks[sel][k].sigmoid() * final[sel][k]
            probs = torch.where(p > 0.5, p + probs, probs)
            times += torch.where(p > 0.5, 1, 0)
        semantic.append(probs / torch.where(times == 0, 1, times))
    semantic = torch.stack(semantic)
    instances = []
    for i in range(len(final)):
        label, score = int(labels[i]), float(final[i])
        keep = score > 0.1 if label == NUM_PARSING else (label != 0 and score >= 0.1)
        if keep:
            instances.append((label, score, (masks[i] > 0).numpy()))
    return instances, semantic.argmax(0).numpy(), semantic.max(0).values.numpy()


def confident_outputs(seed: int, queries: int, mask_hw: tuple[int, int]):
    generator = torch.Generator().manual_seed(seed)
    class_logits = torch.randn(queries, NUM_PARSING + 2, generator=generator)
    # make every query sure of one class so that scores pass the thresholds
    winners = torch.randint(0, NUM_PARSING + 1, (queries,), generator=generator)
    class_logits[torch.arange(queries), winners] += 6.0
    # smooth blobs: low-frequency noise upsampled
    coarse = torch.randn(queries, 1, 4, 6, generator=generator) * 6 + 1
    mask_logits = F.interpolate(coarse, size=mask_hw, mode="bilinear", align_corners=False)[:, 0]
    return class_logits, mask_logits


@pytest.mark.parametrize(
    ("seed", "padded", "input_size", "output"),
    [
        (0, (64, 96), (64, 90), (100, 140)),  # padding cropped, then upsampled
        (1, (96, 64), (96, 64), (96, 64)),  # no padding, same size
        (2, (64, 64), (50, 64), (37, 47)),  # output smaller than the input
    ],
)
def test_matches_reference(seed, padded, input_size, output):
    class_logits, mask_logits = confident_outputs(seed, 30, (padded[0] // 4, padded[1] // 4))
    parsed = measure_pass(
        class_logits.numpy(),
        mask_logits.numpy(),
        padded_size=padded,
        input_size=input_size,
        output_size=output,
        num_parsing=NUM_PARSING,
        ins_score_thr=0.3,
    ).parsed()
    ref_instances, ref_argmax, ref_max = reference(
        class_logits, mask_logits, padded, input_size, output, 0.3
    )
    ours = [(i.label, i.score, i.mask.full()) for i in parsed.parts + parsed.humans]
    assert len(ours) == len(ref_instances) > 5
    for (label, score, mask), (ref_label, ref_score, ref_mask) in zip(
        sorted(ours, key=lambda t: t[1]), sorted(ref_instances, key=lambda t: t[1]), strict=True
    ):
        assert label == ref_label
        assert score == pytest.approx(ref_score, abs=1e-6)
        assert_maps_agree(mask, ref_mask)  # another float order: ties may round apart
    assert len(np.unique(ref_argmax)) > 3, "the reference should paint several classes"
    assert_maps_agree(parsed.label_map, ref_argmax)
    np.testing.assert_allclose(parsed.semantic_max, ref_max, atol=1e-6)


def test_parts_and_humans_sorted_and_thresholded():
    class_logits, mask_logits = confident_outputs(3, 30, (16, 16))
    parsed = measure_pass(
        class_logits.numpy(),
        mask_logits.numpy(),
        padded_size=(64, 64),
        input_size=(64, 64),
        output_size=(64, 64),
        num_parsing=NUM_PARSING,
        ins_score_thr=0.3,
    ).parsed()
    assert all(p.label not in (0, NUM_PARSING) and p.score >= 0.1 for p in parsed.parts)
    assert all(h.label == NUM_PARSING and h.score > 0.1 for h in parsed.humans)
    assert [p.score for p in parsed.parts] == sorted((p.score for p in parsed.parts), reverse=True)
    assert parsed.label_map.dtype == np.uint8 and parsed.label_map.shape == (64, 64)


def test_unconfident_queries_yield_nothing():
    class_logits = np.zeros((10, NUM_PARSING + 2), np.float32)  # every class score ~0.045
    mask_logits = np.ones((10, 8, 8), np.float32)
    parsed = measure_pass(
        class_logits,
        mask_logits,
        padded_size=(32, 32),
        input_size=(32, 32),
        output_size=(32, 32),
        num_parsing=NUM_PARSING,
        ins_score_thr=0.3,
    ).parsed()
    assert parsed.parts == [] and parsed.humans == []
    assert not parsed.label_map.any()


@pytest.mark.parametrize(
    ("hw", "sizes", "expected"),
    [
        ((100, 150), (128, 256), (128, 192)),
        ((640, 960), (640, 1333), (640, 960)),
        ((1000, 4000), (640, 1333), (333, 1333)),
        ((4000, 3000), (640, 1333), (853, 640)),
        ((480, 480), (640, 1333), (640, 640)),
        ((1, 3000), (640, 1333), (1, 1333)),
    ],
)
def test_target_size(hw, sizes, expected):
    assert target_size(*hw, *sizes) == expected
