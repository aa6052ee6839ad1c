"""Precision options: fp32 stays exact, bf16 agrees with it, bf16 is refused where the CPU has
no native bf16 and runs where it has (each rule checked on every CPU with the CPU's answer
faked, and on the CPU at hand for real)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from m2fp import HumanParser
from m2fp.compute.parser_options import ParserOptions
from m2fp.compute.precision import (
    Precision,
    _cuda_fp32_math,
    _restore_tf32_state,
    _tf32_state,
    check_precision,
    compute,
    native_bf16,
    prepare_model,
)
from m2fp.errors import PrecisionUnsupportedError
from m2fp.weights.loader import fill_skeleton
from tests.conftest import GOLDEN, golden_config, golden_options, golden_state_dict


def golden_network():
    return fill_skeleton(golden_config(), golden_state_dict())


def confident_parser() -> HumanParser:
    """The tiny golden network with a seeded class head and a scaled mask head, so queries are
    confident and paint several classes: the golden weights alone paint nothing, which would
    make agreement trivial."""
    model = golden_network()
    predictor = model.sem_seg_head.predictor
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = predictor.class_embed.weight
        weight.copy_(torch.randn(weight.shape, generator=generator) * 1.5)
        predictor.class_embed.bias.zero_()
        predictor.mask_embed.layers[-1].weight.mul_(3.0)
        predictor.mask_embed.layers[-1].bias.mul_(3.0)
    return HumanParser.from_config(model, golden_config(), options=golden_options())


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    image = Image.open(GOLDEN / "image.png").convert("RGB")
    return [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image.rotate(180)]


def test_fp32_preparation_keeps_the_checkpoint():
    model = golden_network()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_model(model, Precision.FP32)
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_bf16_agrees_with_exact(photos):
    """The 99% goal is measured on the R101 benchmark. This random tiny network's masks are
    noise-like (no trained features), so far more of its pixels sit on a class boundary that
    any rounding change can flip: bf16 reaches 98.2% on it."""
    parser = confident_parser()
    exact = [parser(p).label_map for p in photos]
    assert len(np.unique(np.concatenate([m.ravel() for m in exact]))) >= 3, "must paint classes"
    # the bf16 code path runs on any CPU, only slowly without native bf16: force it here
    parser.engine.precision = Precision.BF16
    agreement = np.mean(
        [(parser(p).label_map == m).mean() for p, m in zip(photos, exact, strict=True)]
    )
    assert agreement >= 0.97


@pytest.mark.skipif(native_bf16(), reason="this CPU has native bf16")
def test_bf16_is_refused_without_native_support():
    with pytest.raises(PrecisionUnsupportedError, match="bf16"):
        prepare_model(golden_network(), Precision.BF16)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_rule_follows_the_cpus_answer(monkeypatch, native):
    monkeypatch.setattr("m2fp.compute.precision.native_bf16", lambda: native)
    if native:
        assert prepare_model(golden_network(), Precision.BF16) is not None
    else:
        with pytest.raises(PrecisionUnsupportedError, match="native bf16"):
            prepare_model(golden_network(), Precision.BF16)


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16")
def test_bf16_is_accepted_and_agrees_where_the_cpu_has_native_bf16(photos):
    exact = confident_parser()
    # the same seeded network, asked for bf16 through the options as a user would
    parser = HumanParser.from_config(
        exact.model, golden_config(), options=replace(golden_options(), precision="bf16")
    )
    assert parser.describe_compute()["precision"] == "bf16"
    assert parser.engine.precision is Precision.BF16
    agreement = np.mean([(parser(p).label_map == exact(p).label_map).mean() for p in photos])
    assert agreement >= 0.97


def test_unknown_precision_is_a_value_error():
    with pytest.raises(ValueError, match="precision must be one of"):
        ParserOptions(precision="fp64")


def fake_gpus(monkeypatch, capabilities: dict[int, tuple[int, int]]) -> list[int]:
    """Pretend this machine has GPUs of the given compute capabilities; returns the log of the
    device indices asked about. ``is_bf16_supported`` answers True as PyTorch does on a T4 or
    V100 (emulation counted), so a rule that trusted it would pass the pre-Ampere cases."""
    asked: list[int] = []

    def capability(device=None):
        index = torch.device(device).index or 0
        asked.append(index)
        return capabilities[index]

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return asked


@pytest.mark.parametrize(
    ("capability", "accepted"), [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)]
)
def test_cuda_bf16_needs_the_devices_own_ampere_capability(monkeypatch, capability, accepted):
    asked = fake_gpus(monkeypatch, {0: capability})
    if accepted:
        check_precision(Precision.BF16, torch.device("cuda"))
    else:
        with pytest.raises(PrecisionUnsupportedError, match=r"bf16 needs an Ampere.*has 7"):
            check_precision(Precision.BF16, torch.device("cuda"))
    assert asked


def test_cuda_bf16_judges_the_chosen_gpu_not_gpu_0(monkeypatch):
    asked = fake_gpus(monkeypatch, {0: (9, 0), 1: (7, 5)})
    with pytest.raises(PrecisionUnsupportedError, match=r"this one has 7\.5"):
        check_precision(Precision.BF16, torch.device("cuda:1"))
    assert set(asked) == {1}
    fake_gpus(monkeypatch, {0: (7, 5), 1: (9, 0)})
    check_precision(Precision.BF16, torch.device("cuda:1"))


def read_every_tf32_switch() -> dict[str, object]:
    """What any code in the process may read while a CUDA forward runs (raises on a mix of
    the legacy and the new switches, torch >= 2.9)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    seen: dict[str, object] = {
        "matmul.allow_tf32": matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn.allow_tf32": cudnn.allow_tf32,
    }
    if hasattr(matmul, "fp32_precision"):
        seen["new"] = (matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
    return seen


@pytest.mark.parametrize(
    ("precision", "tf32"), [(Precision.FP32, False), (Precision.TF32, True), (Precision.FP16, True)]
)
def test_cuda_tf32_switches_are_readable_and_consistent_during_a_forward(precision, tf32):
    """The switches are set on the CPU too (they are plain process flags), so a CUDA forward's
    context is entered here without a GPU; fp16 is entered without its autocast."""
    before = read_every_tf32_switch()
    with _cuda_fp32_math(precision):
        during = read_every_tf32_switch()
    assert during["matmul.allow_tf32"] is tf32
    assert during["cudnn.allow_tf32"] is tf32  # convolutions and RNNs alike
    assert during["float32_matmul_precision"] == ("high" if tf32 else "highest")
    if "new" in during:
        matmul, conv, rnn = during["new"]
        assert matmul == ("tf32" if tf32 else "ieee")
        assert conv == rnn
    assert read_every_tf32_switch() == before


def test_cuda_forward_context_restores_a_users_own_new_api_setting():
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this torch has only the legacy TF32 switches")
    conv = torch.backends.cudnn.conv
    # the whole state, legacy booleans included: putting back only the two new values leaves
    # a state whose legacy readers raise "mix of the legacy and new APIs" in later tests
    saved = _tf32_state()
    try:
        matmul.fp32_precision, conv.fp32_precision = "tf32", "ieee"
        with compute(Precision.FP32, torch.device("cuda")):
            assert read_every_tf32_switch()["matmul.allow_tf32"] is False
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "ieee")
    finally:
        _restore_tf32_state(saved)
    read_every_tf32_switch()  # raises if the state left behind is mixed
