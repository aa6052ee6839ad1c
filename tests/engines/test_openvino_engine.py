"""The OpenVINO fp32 engine computes what eager PyTorch computes, for every input shape."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from m2fp.errors import CheckpointError
from tests.engines.conftest import relative_error

ov = pytest.importorskip("openvino", reason="OpenVINO engine tests need m2fp[openvino]")

from m2fp.engines.openvino_engine import OpenVINOEngine  # noqa: E402
from m2fp.engines.openvino_package import (  # noqa: E402
    OpenVINOPackage,
    ir_from_bytes,
    ir_to_bytes,
)


@pytest.fixture(scope="module")
def engine(fp32_package):
    return OpenVINOEngine(package=OpenVINOPackage.from_bytes(fp32_package.to_bytes()))


def test_golden_parity(engine, golden_batch, golden_expected):
    logits, masks = engine(golden_batch)
    np.testing.assert_allclose(logits[0].numpy(), golden_expected["pred_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(masks[0].numpy(), golden_expected["pred_masks"], atol=1e-4, rtol=0)


def test_golden_parity_without_torch(openvino_model_dir, golden_batch, golden_expected, tmp_path):
    """The package read and run by a process where torch cannot be imported, numpy in and
    out: what the slim runtime does."""
    from tests.utils.without_torch import run_without_torch

    np.save(tmp_path / "input.npy", golden_batch.numpy())
    proc = run_without_torch(
        f"""
        from pathlib import Path

        import numpy as np

        from m2fp.engines.openvino_engine import OpenVINOEngine
        from m2fp.engines.openvino_package import OpenVINOPackage, package_file_name

        data = (Path({str(openvino_model_dir)!r}) / package_file_name("fp32")).read_bytes()
        engine = OpenVINOEngine(package=OpenVINOPackage.from_bytes(data))
        logits, masks = engine.infer(np.load({str(tmp_path / "input.npy")!r}))
        assert isinstance(logits, np.ndarray) and logits.dtype == np.float32
        np.savez({str(tmp_path / "out.npz")!r}, logits=logits, masks=masks)
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["logits"][0], golden_expected["pred_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["masks"][0], golden_expected["pred_masks"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(64, 64), (96, 320), (320, 96), (224, 160)])
def test_every_shape_matches_eager(engine, golden_network, size):
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    with torch.inference_mode():
        expected = golden_network(images)
    for ours, theirs in zip(engine(images), expected, strict=True):
        assert ours.shape == theirs.shape and ours.dtype == torch.float32
        assert relative_error(ours, theirs) < 1e-4


def test_compiled_shapes_bounded_least_recently_used(fp32_package):
    engine = OpenVINOEngine(package=fp32_package, max_shapes=2)
    for size in ((64, 64), (64, 96), (64, 64), (96, 64)):
        engine(torch.zeros(1, 3, *size))
    assert engine.cached_shapes == [(64, 64), (96, 64)]


def test_concurrent_calls(engine, golden_network):
    inputs = [torch.randn(1, 3, 64 + 32 * (i % 2), 96) for i in range(4)]
    with torch.inference_mode():
        expected = [golden_network(x)[1] for x in inputs]
    results: dict[int, torch.Tensor] = {}

    def run(index: int) -> None:
        results[index] = engine(inputs[index])[1]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, masks in enumerate(expected):
        assert relative_error(results[index], masks) < 1e-4


def test_refuses_inputs_outside_the_contract(engine):
    with pytest.raises(ValueError, match="torch engine"):
        engine(torch.zeros(1, 3, 32, 640))
    with pytest.raises(ValueError, match="multiples of 32"):
        engine(torch.zeros(1, 3, 64, 100))


def test_constructor_checks(fp32_package):
    with pytest.raises(ValueError, match="max_shapes"):
        OpenVINOEngine(package=fp32_package, max_shapes=0)
    with pytest.raises(ValueError, match="num_threads"):
        OpenVINOEngine(package=fp32_package, num_threads=0)


def test_package_round_trip(fp32_package):
    data = fp32_package.to_bytes()
    again = OpenVINOPackage.from_bytes(data)
    assert again == fp32_package
    assert again.precision == "fp32" and list(again.parts) == ["backbone", "head"]
    assert again.to_bytes() == data


def test_package_views_what_it_may_and_copies_what_it_may_not(fp32_package):
    """The graphs are views of immutable bytes or of a buffer handed over (no 242 MB copy at
    a slim start-up); a writable buffer not handed over (decrypted plaintext wiped later) is
    copied, so wiping it leaves the package whole."""
    data = fp32_package.to_bytes()
    for source, owned, shared in [
        (data, False, True),
        (bytearray(data), True, True),
        (bytearray(data), False, False),
    ]:
        package = OpenVINOPackage.from_bytes(source, owned=owned)
        weights = package.parts["backbone"][1]
        assert (
            np.shares_memory(np.frombuffer(weights, np.uint8), np.frombuffer(source, np.uint8))
            is shared
        )
        if isinstance(source, bytearray):
            source[:] = bytes(len(source))  # what wiping decrypted plaintext does
            assert (package.to_bytes() == data) is not shared
    # a handed-over buffer's views stay writable: OpenVINO shares only writable memory
    owned = OpenVINOPackage.from_bytes(bytearray(data), owned=True)
    assert not owned.parts["backbone"][1].readonly
    assert OpenVINOPackage.from_bytes(data).parts["backbone"][1].readonly
    # graphs read from shared memory compute what graphs read from a copy compute
    engine = OpenVINOEngine(package=owned)
    reference = OpenVINOEngine(package=OpenVINOPackage.from_bytes(data))
    images = np.random.default_rng(0).standard_normal((1, 3, 64, 96), dtype=np.float32)
    for got, expected in zip(engine.infer(images), reference.infer(images), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: b"NOTAPKG!" + d[8:],
        lambda d: d[:-1],
        lambda d: d + b"\0",
        lambda d: d[:8] + (10**9).to_bytes(8, "little") + d[16:],
        lambda d: d[:16] + b"[" + d[17:],
    ],
    ids=["magic", "truncated", "trailing", "header_length", "header_json"],
)
def test_package_refuses_damaged_bytes(fp32_package, damage):
    with pytest.raises(CheckpointError, match="OpenVINO package"):
        OpenVINOPackage.from_bytes(damage(fp32_package.to_bytes()))


def test_package_refuses_a_wrong_layout(fp32_package):
    with pytest.raises(ValueError, match="holds"):
        OpenVINOPackage(
            precision="fp32", parts={"head": fp32_package.parts["head"]}, openvino_version="x"
        )


def test_ir_serialised_in_memory_only(monkeypatch, tmp_path):
    """IR goes through memory files: the only things on disk are links, removed after."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    parameter = ov.opset13.parameter([1, 4], np.float32, name="x")
    weights = ov.opset13.constant(np.arange(4, dtype=np.float32).reshape(1, 4))
    model = ov.Model([ov.opset13.add(parameter, weights)], [parameter], "tiny")
    xml, weights_bytes = ir_to_bytes(model)
    assert list(tmp_path.iterdir()) == []
    assert xml.startswith(b"<?xml") and len(weights_bytes) == 16
    compiled = ov.Core().compile_model(ir_from_bytes(xml, weights_bytes), "CPU")
    out = compiled(np.ones((1, 4), np.float32))[0]
    np.testing.assert_array_equal(out, [[1, 2, 3, 4]])


def test_threads_and_pinning_reach_the_compiled_model(fp32_package):
    engine = OpenVINOEngine(package=fp32_package, num_threads=1, pinning=False)
    backbone, _ = engine.compiled(128, 192)
    assert int(backbone.get_property("INFERENCE_NUM_THREADS")) == 1
    assert backbone.get_property("ENABLE_CPU_PINNING") is False
