"""Choosing the sampler for an export never changes the network that serves requests."""

from __future__ import annotations

import torch

from m2fp.engines.export import Sampler, with_sampler
from m2fp.modeling.ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn_sample,
    ms_deform_attn_sample_grid,
)


def _samplers(model):
    return {m.sampler for m in model.modules() if isinstance(m, MSDeformAttn)}


def test_grid_sampler_on_a_copy(golden_network, golden_batch):
    twin = with_sampler(golden_network, Sampler.GRID)
    assert twin is not golden_network
    assert _samplers(twin) == {ms_deform_attn_sample_grid}
    assert _samplers(golden_network) == {ms_deform_attn_sample}
    with torch.inference_mode():
        for ours, theirs in zip(twin(golden_batch), golden_network(golden_batch), strict=True):
            torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_gather_is_the_network_itself(golden_network):
    assert with_sampler(golden_network, Sampler.GATHER) is golden_network
