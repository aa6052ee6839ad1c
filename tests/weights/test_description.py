"""The parameter count without the network equals the network's own, for every preset."""

from __future__ import annotations

import pytest

from m2fp.build import PRESETS, build_model, preset
from m2fp.weights.description import parameter_count
from tests.conftest import golden_config


@pytest.mark.parametrize("config", [*PRESETS, "golden"])
def test_parameter_count_from_shapes_equals_the_networks(config):
    model = build_model(golden_config() if config == "golden" else preset(config), empty=True)
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    assert parameter_count(shapes) == sum(p.numel() for p in model.parameters())
    assert parameter_count(shapes) < sum(map(_count, shapes.values()))  # buffers left out


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for dimension in shape:
        total *= dimension
    return total
