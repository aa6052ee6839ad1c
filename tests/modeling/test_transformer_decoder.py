"""The decoder's output heads compute in float32 under autocast: class logits, mask logits and
the attention blocks decided by their sign."""

from __future__ import annotations

import pytest
import torch

from m2fp.weights.loader import fill_skeleton
from tests.conftest import golden_config, golden_state_dict


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_output_heads_run_in_float32_under_autocast(dtype):
    model = fill_skeleton(golden_config(), golden_state_dict()).eval()
    decoder = model.sem_seg_head.predictor
    seen: dict[str, set[torch.dtype]] = {
        "class head": set(),
        "mask head": set(),
        "blocks": set(),
        "queries": set(),
    }

    def recorder(name):
        def hook(module, args, output):
            seen[name].update((args[0].dtype, output.dtype))

        return hook

    decoder.class_embed.register_forward_hook(recorder("class head"))
    decoder.transformer_ffn_layers[0].linear1.register_forward_hook(recorder("queries"))
    for layer in decoder.mask_embed.layers:
        layer.register_forward_hook(recorder("mask head"))
    real_block = decoder.attention_block

    def block(masks):
        seen["blocks"].add(masks.dtype)
        return real_block(masks)

    decoder.attention_block = block
    torch.manual_seed(0)
    images = torch.randn(1, 3, 64, 96)
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype):
        class_logits, mask_logits = model(images)
    # the layers before the heads did run at the lower precision: the check is not vacuous
    assert dtype in seen.pop("queries")
    assert class_logits.dtype == mask_logits.dtype == torch.float32
    assert seen == {name: {torch.float32} for name in seen}
