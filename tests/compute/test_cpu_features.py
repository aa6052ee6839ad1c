"""Which fast CPU units this machine has: flags read from ``/proc/cpuinfo`` text (fake files
and fake flag sets), and on the CPU at hand checked against what oneDNN says of it."""

from __future__ import annotations

import pytest

from m2fp.compute import cpu_features
from m2fp.compute.cpu_features import bf16_units, cpu_flags, parse_cpu_flags, vnni_units
from m2fp.compute.precision import native_bf16

SAPPHIRE_RAPIDS = frozenset(
    ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8"]
)
ZEN3 = frozenset(["avx2", "fma", "sse4_2"])
ZEN4 = frozenset(["avx2", "avx512f", "avx512_bf16", "avx512_vnni"])
CASCADE_LAKE = frozenset(["avx2", "avx512f", "avx512_vnni"])
ALDER_LAKE = frozenset(["avx2", "avx_vnni"])


@pytest.fixture
def fake_cpuinfo(monkeypatch, tmp_path):
    """Point ``cpu_flags`` at a file of the test's own (its cache emptied before and after)."""
    path = tmp_path / "cpuinfo"
    monkeypatch.setattr(cpu_features, "CPUINFO", path)
    cpu_flags.cache_clear()
    yield path
    cpu_flags.cache_clear()


@pytest.mark.parametrize(
    ("flags", "bf16", "vnni"),
    [
        (SAPPHIRE_RAPIDS, ("avx512_bf16", "amx_bf16"), ("avx512_vnni", "avx_vnni", "amx_int8")),
        (ZEN4, ("avx512_bf16",), ("avx512_vnni",)),
        (CASCADE_LAKE, (), ("avx512_vnni",)),
        (ALDER_LAKE, (), ("avx_vnni",)),
        (ZEN3, (), ()),
        (frozenset(), (), ()),
    ],
    ids=["sapphire_rapids", "zen4", "cascade_lake", "alder_lake", "zen3", "none"],
)
def test_units_are_named_from_the_flags(flags, bf16, vnni):
    assert (bf16_units(flags), vnni_units(flags)) == (bf16, vnni)


def test_the_first_processors_flags_are_read():
    text = (
        "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 amx_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2 amx_bf16 avx512_vnni\n"
    )
    assert parse_cpu_flags(text) == frozenset({"fpu", "avx2", "amx_bf16"})
    # an ARM cpuinfo names its flags "Features": no x86 unit is claimed
    assert parse_cpu_flags("processor : 0\nFeatures : fp asimd bf16\n") == frozenset()


def test_a_fake_cpuinfo_file_is_read(fake_cpuinfo):
    fake_cpuinfo.write_text("processor\t: 0\nflags\t\t: avx2 avx512_vnni\n", encoding="ascii")
    assert cpu_flags() == frozenset({"avx2", "avx512_vnni"})
    assert vnni_units(cpu_flags()) == ("avx512_vnni",) and bf16_units(cpu_flags()) == ()


def test_a_missing_cpuinfo_means_no_units(fake_cpuinfo):
    assert not fake_cpuinfo.exists()
    assert cpu_flags() == frozenset()


def test_this_cpus_bf16_flags_agree_with_onednn():
    """Where cpuinfo names native bf16, oneDNN must have bf16 kernels here too (the torch
    engine's own check, ``native_bf16``); on an AVX2-only CPU (Zen 3) neither claims it."""
    flags = cpu_flags()
    if bf16_units(flags):
        assert native_bf16()
    if "avx512f" not in flags:
        assert not bf16_units(flags) and not native_bf16()
