"""Building networks from ModelScope configs and presets."""

from __future__ import annotations

import copy

import pytest
import torch

from m2fp.build import build_model, preset
from m2fp.errors import ModelConfigError
from m2fp.labels import CIHP_CLASSES
from m2fp.model_config import single_person_input_size
from m2fp.task import Task, task_of
from tests.conftest import LIP_GOLDEN, golden_config


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
        (lambda c: c.update(single_human=True), "single-person models with 'parsing_on'"),
        (lambda c: c.update(single_human="yes"), "true or false"),
        (lambda c: c.update(parsing_on=False), "need 'parsing_on'"),
        (lambda c: c.update(classes=["Background", *c["classes"][1:-1], "Cat"]), "'Human'"),
        (lambda c: c.update(classes=["Cat", *c["classes"][1:]]), "neither"),
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


def test_lip_preset_is_the_same_network_with_twenty_classes():
    from m2fp.labels import LIP_CLASSES

    config = preset("m2fp_r101_lip")
    model = build_model(config, empty=True)
    cihp = build_model(preset("m2fp_r101_cihp"), empty=True)
    assert model.num_classes == 20 and tuple(config["classes"]) == LIP_CLASSES
    assert single_person_input_size(config) == (384, 512)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    cihp_shapes = {k: v.shape for k, v in cihp.state_dict().items()}
    differ = {k for k in shapes if shapes[k] != cihp_shapes[k]}
    assert differ == {
        "sem_seg_head.predictor.class_embed.weight",
        "sem_seg_head.predictor.class_embed.bias",
    }
    # the golden LIP config has the same keys, with smaller numbers
    golden = golden_config(LIP_GOLDEN)
    assert set(golden) <= set(config) and golden["input_single_human"]
    assert task_of(config) is task_of(golden) is Task.SINGLE_PERSON


def lip_config() -> dict:
    return copy.deepcopy(golden_config(LIP_GOLDEN))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(parsing_on=True), "'parsing_on' are not supported"),
        (lambda c: c.update(semantic_on=False), "need 'semantic_on'"),
        (lambda c: c.pop("sem_seg_postprocess_before_inference"), "before_inference' false"),
        (lambda c: c.pop("input_single_human"), "input_single_human.sizes"),
        (lambda c: c.update(input_single_human={"sizes": []}), "input_single_human.sizes"),
        (lambda c: c.update(input_single_human={"sizes": [[96]]}), "input_single_human.sizes"),
        (lambda c: c.update(input_single_human={"sizes": [[0, 128]]}), "from 1 to 4096"),
        (lambda c: c.update(input_single_human={"sizes": [[96, 5000]]}), "from 1 to 4096"),
        (lambda c: c.update(input_single_human={"sizes": [[96.0, 128]]}), "whole numbers"),
        (lambda c: c.update(input_single_human={"sizes": [[True, 128]]}), "whole numbers"),
        (lambda c: c["decoder"].update(num_classes=21), "does not match"),
    ],
)
def test_bad_single_person_configs_are_clear_errors(mutate, message):
    config = lip_config()
    mutate(config)
    with pytest.raises(ModelConfigError, match=message):
        build_model(config, empty=True)


def test_single_human_defaults_to_true_as_in_modelscope():
    config = lip_config()
    del config["single_human"]
    assert task_of(config) is Task.SINGLE_PERSON
    build_model(config, empty=True)
    assert task_of(golden_config()) is Task.MULTI_PERSON


def test_a_single_person_model_with_the_multi_person_classes_is_refused():
    config = lip_config()
    config["classes"] = list(CIHP_CLASSES)
    config["decoder"]["num_classes"] = len(CIHP_CLASSES)
    with pytest.raises(ModelConfigError, match="paints every class"):
        build_model(config, empty=True)


def test_empty_build_skips_initialisers_and_writes_nothing(tmp_path):
    """No parameter initialiser runs for an empty skeleton: on the meta device nn.Embedding's
    normal_ would import torch._dynamo, which costs seconds and makes a cache directory
    under $TMPDIR (a server's start-up must leave /tmp empty)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from m2fp.build import build_model, preset\n"
        "model = build_model(preset('m2fp_r101_cihp'), empty=True)\n"
        "assert {p.device.type for p in model.parameters()} == {'meta'}\n"
        "assert 'torch._dynamo' not in sys.modules\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert list(tmp_path.iterdir()) == []


def test_random_init_still_runs_outside_empty_builds():
    first, second = build_model(golden_config()), build_model(golden_config())
    weight = first.sem_seg_head.predictor.query_feat.weight
    assert weight.std() > 0.5  # nn.Embedding's normal_ init ran
    assert not torch.equal(weight, second.sem_seg_head.predictor.query_feat.weight)
