"""The opt-in int8 mode: a quantised backbone (and head, on CPUs with VNNI/AMX-INT8), and its
calibration set."""

from __future__ import annotations

import pytest
import torch

from m2fp.engines.calibration import calibration_inputs, calibration_scene
from tests.conftest import golden_sizes
from tests.engines.conftest import relative_error


def test_calibration_scenes_are_deterministic_and_distinct():
    first = calibration_scene(3)
    assert first.tobytes() == calibration_scene(3).tobytes()
    assert first.tobytes() != calibration_scene(4).tobytes()
    assert first.tobytes() != calibration_scene(3, seed=1).tobytes()
    assert first.mode == "RGB"


def test_calibration_inputs_are_network_inputs(golden_network):
    inputs = calibration_inputs(
        3,
        pixel_mean=golden_network.pixel_mean,
        pixel_std=golden_network.pixel_std,
        min_size=128,
        max_size=256,
    )
    assert len(inputs) == 3
    for tensor in inputs:
        assert tensor.shape[:2] == (1, 3) and tensor.dtype == torch.float32
        assert tensor.shape[2] % 32 == 0 and tensor.shape[3] % 32 == 0
        assert min(tensor.shape[2:]) >= 128
    with pytest.raises(ValueError, match="at least 1"):
        calibration_inputs(
            0,
            pixel_mean=golden_network.pixel_mean,
            pixel_std=golden_network.pixel_std,
            min_size=128,
            max_size=256,
        )


@pytest.fixture(scope="module")
def golden_calibration(golden_network):
    """Four drawn calibration scenes at the golden model's sizes."""
    return calibration_inputs(
        4,
        pixel_mean=golden_network.pixel_mean,
        pixel_std=golden_network.pixel_std,
        min_size=golden_sizes()[0],
        max_size=golden_sizes()[1],
    )


@pytest.fixture(scope="module")
def int8_package(golden_calibration, fp32_package):
    pytest.importorskip("nncf", reason="int8 tests need m2fp[int8]")
    from m2fp.engines.int8 import quantize_package

    return quantize_package(fp32_package, golden_calibration)


def test_int8_package_layout(int8_package, fp32_package):
    from m2fp.engines.openvino_package import OpenVINOPackage

    assert int8_package.precision == "int8"
    assert list(int8_package.parts) == ["backbone", "head"]
    backbone_xml, _ = int8_package.parts["backbone"]
    assert b"FakeQuantize" in backbone_xml
    assert int8_package.parts["head"] == fp32_package.parts["head"]  # the head stays fp32
    assert OpenVINOPackage.from_bytes(int8_package.to_bytes()) == int8_package


def test_int8_leaves_only_the_first_convolution_in_fp32(int8_package):
    backbone = int8_package.models()["backbone"]
    convolutions = [op for op in backbone.get_ordered_ops() if op.get_type_name() == "Convolution"]

    def quantised(convolution) -> bool:
        """Whether the weights come from an int8 constant (through its dequantisation)."""
        node = convolution.input_value(1).get_node()
        while node.get_type_name() != "Constant":
            node = node.input_value(0).get_node()
        return node.get_element_type().get_type_name() == "i8"

    # the first sees the raw image and stays fp32; every later one runs in int8
    assert not quantised(convolutions[0])
    assert all(quantised(c) for c in convolutions[1:])
    assert int8_package.calibration["fp32_convolutions"] == 1


def test_int8_backbone_close_to_fp32(int8_package, golden_network, golden_batch):
    import openvino as ov

    backbone = int8_package.models()["backbone"]
    compiled = ov.Core().compile_model(backbone, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    res5 = torch.from_numpy(compiled(golden_batch.numpy())[compiled.outputs[3]])
    with torch.inference_mode():
        expected = golden_network.backbone(golden_batch)["res5"]
    error = relative_error(res5, expected)
    # quantised, so not equal; but a broken quantisation (wrong ranges, saturation) is far off
    assert 0 < error < 0.1


def test_int8_engine_runs_the_contract(int8_package, golden_network, golden_batch):
    from m2fp.engines.openvino_engine import OpenVINOEngine

    engine = OpenVINOEngine(package=int8_package)
    logits, masks = engine(golden_batch)
    with torch.inference_mode():
        expected_logits, expected_masks = golden_network(golden_batch)
    assert logits.shape == expected_logits.shape and masks.shape == expected_masks.shape
    assert relative_error(logits, expected_logits) < 0.2


def test_int8_refusals(int8_package, fp32_package, golden_batch):
    from m2fp.engines.int8 import quantize_backbone_graph, quantize_package

    with pytest.raises(ValueError, match="calibration"):
        quantize_backbone_graph(object(), [])
    with pytest.raises(ValueError, match="smooth_quant_alpha"):
        quantize_backbone_graph(object(), [golden_batch], smooth_quant_alpha=2.0)
    with pytest.raises(ValueError, match="fp32_convolutions"):
        quantize_backbone_graph(object(), [golden_batch], fp32_convolutions=-1)
    with pytest.raises(ValueError, match="fp32 package"):
        quantize_package(int8_package, [golden_batch])
    with pytest.raises(ValueError, match="backbone and the head"):
        quantize_package(fp32_package, [golden_batch], parts=("head",))


VNNI_CPU = frozenset(["avx2", "fma", "avx512f", "avx512_vnni"])
AMX_CPU = frozenset(["avx2", "avx512f", "amx_int8", "amx_tile"])
AVX2_CPU = frozenset(["avx2", "fma", "sse4_2"])  # AMD Zen 3


@pytest.mark.parametrize(
    ("flags", "parts"),
    [
        (VNNI_CPU, ("backbone", "head")),
        (AMX_CPU, ("backbone", "head")),
        (frozenset(["avx2", "avx_vnni"]), ("backbone", "head")),
        (AVX2_CPU, ("backbone",)),
        (frozenset(), ("backbone",)),
    ],
)
def test_head_quantised_only_with_int8_dot_products(flags, parts):
    from m2fp.engines.int8 import quantized_parts

    assert quantized_parts(flags) == parts


def _quantised_matmul(matmul) -> bool:
    """Whether a MatMul's weights come from an int8 constant (through dequantisation)."""
    node = matmul.input_value(1).get_node()
    while node.get_type_name() != "Constant":
        if node.get_input_size() == 0:
            return False
        node = node.input_value(0).get_node()
    return node.get_element_type().get_type_name() == "i8"


@pytest.fixture(scope="module")
def int8_head_package(golden_calibration, fp32_package):
    pytest.importorskip("nncf", reason="int8 tests need m2fp[int8]")
    from m2fp.engines.int8 import quantize_package

    return quantize_package(fp32_package, golden_calibration, parts=("backbone", "head"))


def test_head_int8_keeps_the_sampler_placement_fp32(int8_head_package, fp32_package):
    from m2fp.engines.int8 import sampler_placement

    head = int8_head_package.models()["head"]
    placement = set(sampler_placement(head))
    encoder_layers = 2  # tests/data/m2fp_tiny: sampling_offsets and attention_weights each
    assert len(placement) == 2 * encoder_layers
    matmuls = [op for op in head.get_ordered_ops() if op.get_type_name() == "MatMul"]
    quantised = {op.get_friendly_name() for op in matmuls if _quantised_matmul(op)}
    assert quantised and not quantised & placement
    assert b"FakeQuantize" not in fp32_package.parts["head"][0]
    assert int8_head_package.calibration["quantized"] == ["backbone", "head"]


@pytest.mark.parametrize("size", [(128, 192), (96, 320), (224, 160)])
def test_head_int8_runs_any_size_close_to_fp32(int8_head_package, golden_network, size):
    """Calibrated at one size, the quantised head keeps dynamic H and W: every input size
    compiles and stays near eager fp32 (a broken quantisation is far off)."""
    from m2fp.engines.openvino_engine import OpenVINOEngine

    engine = OpenVINOEngine(package=int8_head_package)
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    logits, masks = engine(images)
    with torch.inference_mode():
        expected_logits, expected_masks = golden_network(images)
    assert logits.shape == expected_logits.shape and masks.shape == expected_masks.shape
    assert 0 < relative_error(logits, expected_logits) < 0.2
    assert 0 < relative_error(masks, expected_masks) < 0.3


def test_convert_package_quantises_the_head_on_a_vnni_cpu(monkeypatch, golden_network):
    """The real choice: convert_package asks this CPU's flags (faked here both ways)."""
    pytest.importorskip("nncf", reason="int8 tests need m2fp[int8]")
    import m2fp.engines.int8 as int8
    from m2fp.compute.options import Precision
    from m2fp.engines.openvino_convert import convert_package

    seen = []
    monkeypatch.setattr(int8, "quantize_package", lambda *a, parts, **k: seen.append(parts))
    for flags in (VNNI_CPU, AVX2_CPU):
        monkeypatch.setattr("m2fp.engines.openvino_convert.cpu_flags", lambda flags=flags: flags)
        convert_package(
            golden_network,
            Precision.INT8,
            weights_sha256=None,
            min_size=golden_sizes()[0],
            max_size=golden_sizes()[1],
            scenes=1,
            fp32=object(),
        )
    assert seen == [("backbone", "head"), ("backbone",)]
