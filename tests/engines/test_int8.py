"""The opt-in int8 mode: a quantised backbone with an fp32 head, and its calibration set."""

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
def int8_package(golden_network, fp32_package):
    pytest.importorskip("nncf", reason="int8 tests need m2fp[int8]")
    from m2fp.engines.int8 import quantize_package

    calibration = calibration_inputs(
        4,
        pixel_mean=golden_network.pixel_mean,
        pixel_std=golden_network.pixel_std,
        min_size=golden_sizes()[0],
        max_size=golden_sizes()[1],
    )
    return quantize_package(fp32_package, calibration)


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


def test_int8_refusals(int8_package, golden_batch):
    from m2fp.engines.int8 import quantize_backbone_graph, quantize_package

    with pytest.raises(ValueError, match="calibration"):
        quantize_backbone_graph(object(), [])
    with pytest.raises(ValueError, match="smooth_quant_alpha"):
        quantize_backbone_graph(object(), [golden_batch], smooth_quant_alpha=2.0)
    with pytest.raises(ValueError, match="fp32_convolutions"):
        quantize_backbone_graph(object(), [golden_batch], fp32_convolutions=-1)
    with pytest.raises(ValueError, match="fp32 package"):
        quantize_package(int8_package, [golden_batch])
