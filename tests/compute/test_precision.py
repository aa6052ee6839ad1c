"""Precision options: fp32 stays exact, bf16 agrees with it, bf16 is refused where the CPU has
no native bf16 and runs where it has (each rule checked on every CPU with the CPU's answer
faked, and on the CPU at hand for real).

bf16's agreement is judged in units of bf16's own rounding, never against a figure measured on
one CPU: the forced bf16 path runs on every CPU (native kernels or oneDNN's slow reference
ones round to the same 8 significant bits), and the path a user gets is checked the same way
where the CPU accepts it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

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
from tests.conftest import GOLDEN, LIP_GOLDEN, golden_config, golden_options, golden_state_dict

# bf16 keeps 8 significant bits: one rounding moves a value by at most EPS/2 of itself
# (EPS = 2**-7, the spacing of bf16 numbers at 1.0), whatever the CPU's kernels. Autocast
# rounds the inputs of every convolution and linear layer, so the network's outputs drift
# from fp32 by a few EPS of their own scale (1.1-5.2 EPS on the multi-person tiny model
# here, with AMX; 1.1-4.9 with oneDNN limited to AVX2, as on Zen 3). A correct bf16 path
# stays within 16 EPS on any CPU; one that computes in a narrower format, or computes
# something else, does not.
BF16_EPS = torch.finfo(torch.bfloat16).eps
BF16_DRIFT = 16 * BF16_EPS
# the output heads run in float32 under autocast (``m2fp.modeling.transformer_decoder``)
FP32_HEADS = ("sem_seg_head.predictor.class_embed", "sem_seg_head.predictor.mask_embed.")


def golden_network(golden: Path = GOLDEN):
    return fill_skeleton(golden_config(golden), golden_state_dict(golden))


def confident_parser(golden: Path = GOLDEN) -> HumanParser:
    """A tiny golden network with a seeded class head and a scaled mask head, so queries are
    confident and paint several classes: the golden weights alone paint nothing, which would
    make agreement trivial."""
    model = golden_network(golden)
    predictor = model.sem_seg_head.predictor
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = predictor.class_embed.weight
        weight.copy_(torch.randn(weight.shape, generator=generator) * 1.5)
        predictor.class_embed.bias.zero_()
        predictor.mask_embed.layers[-1].weight.mul_(3.0)
        predictor.mask_embed.layers[-1].bias.mul_(3.0)
    return HumanParser.from_config(model, golden_config(golden), options=golden_options())


def forced_bf16(parser: HumanParser) -> HumanParser:
    """``parser`` running the bf16 code path, which runs on any CPU (only slowly without
    native bf16, where ``prepare_model`` refuses it to users)."""
    parser.engine.precision = Precision.BF16
    return parser


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    image = Image.open(GOLDEN / "image.png").convert("RGB")
    return [image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image.rotate(180)]


@pytest.fixture(scope="module")
def lip_photos() -> list[Image.Image]:
    image = Image.open(LIP_GOLDEN / "image.png").convert("RGB")
    flipped, upside_down = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), image.rotate(180)
    return [image, flipped, upside_down, image.resize((300, 310))]


def network_outputs(parser: HumanParser, photo: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The multi-person network's float32 class logits Qx(K+1) and mask logits QxHp/4xWp/4."""
    _, batch = parser._preprocess(photo)
    class_logits, mask_logits = parser._forward(batch)
    return np.asarray(class_logits[0]), np.asarray(mask_logits[0])


def drift(ours: np.ndarray, exact: np.ndarray) -> float:
    """The largest difference, relative to the largest exact value."""
    return float(np.abs(ours - exact).max() / np.abs(exact).max())


def assert_within_bf16_rounding(rounded: HumanParser, exact: HumanParser, photos) -> None:
    for photo in photos:
        outputs = zip(network_outputs(rounded, photo), network_outputs(exact, photo), strict=True)
        for name, (ours, theirs) in zip(("class logits", "mask logits"), outputs, strict=True):
            assert 0 < drift(ours, theirs) <= BF16_DRIFT, (name, drift(ours, theirs) / BF16_EPS)


def photo_probabilities(parser: HumanParser, photo: Image.Image) -> np.ndarray:
    """The single-person semantic map KxHxW at the photo's size, whose argmax is the label
    map."""
    (one,) = parser._passes(photo)
    ((class_logits, mask_logits),) = parser._run([one])
    output_size = (photo.height, photo.width)
    return parser._semantic_map(one, class_logits, mask_logits, output_size).band(0, photo.height)


def test_fp32_preparation_keeps_the_checkpoint():
    model = golden_network()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_model(model, Precision.FP32)
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_bf16_runs_every_layer_in_bf16_but_the_output_heads(photos):
    """Dropping autocast on a stage, or running another half format, makes that stage's
    layers answer in another dtype; the heads stay float32 on purpose."""
    parser = forced_bf16(confident_parser())
    layers = {
        name: module
        for name, module in parser.model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    }
    answered: dict[str, torch.dtype] = {}
    hooks = [
        module.register_forward_hook(
            lambda _, __, out, name=name: answered.update({name: out.dtype})
        )
        for name, module in layers.items()
    ]
    try:
        class_logits, mask_logits = parser._forward(parser._preprocess(photos[0])[1])
    finally:
        for hook in hooks:
            hook.remove()
    assert answered.keys() == layers.keys()  # every layer ran
    heads = {name for name in layers if name.startswith(FP32_HEADS)}
    assert len(heads) == 4  # class_embed and the mask MLP's three layers
    assert {name for name, dtype in answered.items() if dtype is torch.float32} == heads
    assert {dtype for name, dtype in answered.items() if name not in heads} == {torch.bfloat16}
    assert class_logits.dtype == mask_logits.dtype == np.float32  # handed back on the host


def test_bf16_outputs_stay_within_bf16_rounding_of_exact(photos):
    """The machine-independent form of "bf16 agrees with exact": the network's outputs, which
    everything after them (scores, masks, label maps) is exact fp32 math of."""
    assert_within_bf16_rounding(forced_bf16(confident_parser()), confident_parser(), photos)


def test_bf16_labels_agree_wherever_fp32_is_decided_beyond_bf16s_error(lip_photos):
    """A pixel whose fp32 top-2 class margin exceeds twice bf16's error on its class
    probabilities cannot change label; the rest sit on a class boundary that any rounding
    may move (1-2% of this random network's pixels), so they are left out rather than
    counted against a threshold measured on one CPU."""
    exact, rounded = confident_parser(LIP_GOLDEN), forced_bf16(confident_parser(LIP_GOLDEN))
    decided_labels: set[int] = set()
    for photo in lip_photos:
        probabilities = photo_probabilities(exact, photo)
        error = np.abs(photo_probabilities(rounded, photo) - probabilities).max(axis=0)
        top = np.sort(probabilities, axis=0)
        decided = top[-1] - top[-2] > 2 * error
        labels, exact_labels = rounded(photo).label_map, exact(photo).label_map
        assert np.array_equal(labels[decided], exact_labels[decided])
        assert decided.mean() >= 0.5, decided.mean()  # 65-72% here
        decided_labels |= set(np.unique(exact_labels[decided]).tolist())
    assert len(decided_labels) >= 2, "must paint classes"


@pytest.mark.skipif(native_bf16(), reason="this CPU has native bf16")
def test_bf16_is_refused_without_native_support():
    with pytest.raises(PrecisionUnsupportedError, match="bf16"):
        prepare_model(golden_network(), Precision.BF16)


def test_bf16_is_refused_for_real_where_onednn_has_no_bf16_kernels():
    """The refusal of an AVX2-only CPU (Zen 3), for real on any CPU: oneDNN limited to AVX2
    (its own switch, read at start-up, hence a child) has no bf16 kernels, as there."""
    child = """
import sys
import torch
from m2fp.compute.precision import Precision, check_precision
from m2fp.errors import PrecisionUnsupportedError
try:
    check_precision(Precision.BF16, torch.device("cpu"))
except PrecisionUnsupportedError as error:
    print(error)
    sys.exit(0)
sys.exit("bf16 was accepted")
"""
    environment = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    result = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "native bf16" in result.stdout


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
    assert_within_bf16_rounding(parser, exact, photos)


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
