"""``precision="fast"``: the choice logic with fake CPU flags, and the real choice here."""

from __future__ import annotations

import pytest

from m2fp.compute.cpu_features import cpu_flags
from m2fp.compute.fast import choose_fast
from m2fp.compute.options import CAVEAT, ComputeChoiceError, Engine, Precision, check_compute
from m2fp.errors import PrecisionUnsupportedError

SAPPHIRE_RAPIDS = frozenset(
    ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8"]
)
ZEN3 = frozenset(["avx2", "fma", "sse4_2"])
CASCADE_LAKE = frozenset(["avx2", "avx512f", "avx512_vnni"])
ALDER_LAKE = frozenset(["avx2", "avx_vnni"])


@pytest.mark.parametrize("engine", list(Engine))
def test_native_bf16_chooses_bf16(engine):
    choice = choose_fast(engine=engine, device_kind="cpu", flags=SAPPHIRE_RAPIDS)
    assert choice.precision is Precision.BF16
    assert "avx512_bf16" in choice.reason and "amx_bf16" in choice.reason


@pytest.mark.parametrize("flags", [CASCADE_LAKE, ALDER_LAKE])
def test_vnni_without_bf16_chooses_int8_on_openvino(flags):
    choice = choose_fast(engine=Engine.OPENVINO, device_kind="cpu", flags=flags)
    assert choice.precision is Precision.INT8


def test_vnni_without_bf16_on_torch_is_refused_pointing_at_openvino():
    with pytest.raises(PrecisionUnsupportedError) as caught:
        choose_fast(engine=Engine.TORCH, device_kind="cpu", flags=CASCADE_LAKE)
    message = str(caught.value)
    assert "avx512_bf16" in message and "--engine openvino" in message and "\n" not in message


@pytest.mark.parametrize("engine", list(Engine))
def test_avx2_only_is_refused_naming_the_missing_features(engine):
    with pytest.raises(PrecisionUnsupportedError) as caught:
        choose_fast(engine=engine, device_kind="cpu", flags=ZEN3)
    message = str(caught.value)
    assert "avx512_bf16" in message and "amx_bf16" in message and "use fp32" in message
    if engine is Engine.OPENVINO:
        assert "avx512_vnni" in message


def test_cuda_prefers_bf16_else_fp16():
    bf16 = choose_fast(engine=Engine.TORCH, device_kind="cuda", flags=ZEN3, cuda_bf16=lambda: True)
    fp16 = choose_fast(engine=Engine.TORCH, device_kind="cuda", flags=ZEN3, cuda_bf16=lambda: False)
    assert (bf16.precision, fp16.precision) == (Precision.BF16, Precision.FP16)


def test_fast_is_never_the_default_nor_exact():
    from m2fp.compute.parser_options import ParserOptions

    assert ParserOptions().precision is Precision.FP32
    assert not Precision.FAST.exact
    assert CAVEAT[Precision.BF16] and CAVEAT[Precision.INT8] and CAVEAT[Precision.FP32] is None


def test_fast_on_mps_is_refused():
    with pytest.raises(ComputeChoiceError, match="fast is not supported on mps"):
        check_compute("mps", Engine.TORCH, Precision.FAST)


def test_the_real_choice_on_this_machine():
    """On a CPU with native bf16 (this project's Sapphire Rapids) fast is bf16 on both
    engines; elsewhere it is int8 on OpenVINO with VNNI, or refused."""
    flags = cpu_flags()
    for engine in Engine:
        if {"avx512_bf16", "amx_bf16"} & flags:
            assert choose_fast(engine=engine, device_kind="cpu", flags=flags).precision is (
                Precision.BF16
            )
        elif engine is Engine.OPENVINO and {"avx512_vnni", "avx_vnni", "amx_int8"} & flags:
            assert choose_fast(engine=engine, device_kind="cpu", flags=flags).precision is (
                Precision.INT8
            )
        else:
            with pytest.raises(PrecisionUnsupportedError):
                choose_fast(engine=engine, device_kind="cpu", flags=flags)
