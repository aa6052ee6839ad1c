"""Golden tiny models with their class head pinned, so that classes reach the label map.

With their random weights the golden models' class scores stay low: the multi-person model
pastes no instance and the single-person model paints (almost) one class. Pinning makes every
query say one of the chosen classes (picked by its features, so different queries say
different ones) and sharpens the final mask logits (x20: their sign, hence the decoder's
attention masks, is unchanged), so that instances score high and several classes show.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

HEAD = "sem_seg_head.predictor."


def pinned_head(
    state: Mapping[str, torch.Tensor], biases: Mapping[int, float], *, weighted: tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """A copy of ``state`` whose class head only knows ``biases`` (class -> bias), the classes
    in ``weighted`` keeping 3x their feature weights."""
    pinned = dict(state)
    weight = state[HEAD + "class_embed.weight"]
    pinned_weight = weight * 0
    pinned_bias = state[HEAD + "class_embed.bias"] * 0
    for label in weighted:
        pinned_weight[label] = weight[label] * 3
    for label, bias in biases.items():
        pinned_bias[label] = bias
    pinned[HEAD + "class_embed.weight"] = pinned_weight
    pinned[HEAD + "class_embed.bias"] = pinned_bias
    for name in ("weight", "bias"):
        key = HEAD + f"mask_embed.layers.2.{name}"
        pinned[key] = state[key] * 20
    return pinned
