"""Building networks from ModelScope configs and presets."""

from __future__ import annotations

import copy

import pytest

from m2fp.build import build_model, preset
from m2fp.errors import ModelConfigError
from tests.conftest import golden_config


def test_r101_preset_has_the_official_size():
    model = build_model(preset("m2fp_r101_cihp"))
    count = sum(p.numel() for p in model.parameters())
    assert round(count / 1e6, 1) == 63.1
    assert not model.training


def test_unknown_preset():
    with pytest.raises(ModelConfigError, match="unknown preset"):
        preset("nope")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["backbone"].pop("depth"), "backbone.depth' is missing"),
        (lambda c: c["backbone"].update(depth=34), "unsupported ResNet depth"),
        (lambda c: c["decoder"].update(num_queries="100"), "wrong type"),
        (lambda c: c.update(classes=c["classes"][:-1]), "classes"),
        (lambda c: c.update(single_human=True), "single-human"),
        (lambda c: c.pop("encoder"), "section 'encoder'"),
    ],
)
def test_bad_configs_are_clear_errors(mutate, message):
    config = copy.deepcopy(golden_config())
    mutate(config)
    with pytest.raises((ModelConfigError, ValueError), match=message):
        build_model(config)


def test_empty_build_has_meta_parameters_and_real_constants():
    model = build_model(golden_config(), empty=True)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert model.pixel_mean.device.type == "cpu" and model.pixel_std.device.type == "cpu"
    assert model.pixel_mean.flatten().tolist() == pytest.approx([123.675, 116.28, 103.53])
    full = build_model(golden_config())
    shapes = {k: v.shape for k, v in full.state_dict().items()}
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
