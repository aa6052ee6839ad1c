"""Opt-in int8: NNCF post-training quantisation of the backbone, and of the head's linear
layers on CPUs with int8 dot products.

An approximation, never the default. The backbone is where int8 pays everywhere (about half
the forward in fp32, all of it convolutions). The head (pixel decoder and transformer decoder:
linear layers, attention matmuls, a few convolutions) is quantised only where the CPU has
VNNI or AMX-INT8 (``m2fp.compute.cpu_features.vnni_units``): there an int8 matmul pays (the
seeded R101's head at 640x960: 0.54 s instead of 1.15 s in fp32, Sapphire Rapids), while on
plain AVX2 an int8 FullyConnected was no faster than fp32 (issue 14), so AVX2-only CPUs keep
the fp32 head. In the head, what must stay exact stays fp32: the two linear layers that place
the deformable sampler's points and weigh them (``sampling_offsets``, ``attention_weights``:
found as the matmuls feeding an embedding bag's rows or per-sample weights), and everything
that is not a matmul or convolution (NNCF quantises no gather, integer or softmax node).

What the quantisation does (each choice measured by ``benchmarks/bench_int8_variants.py``):
- weights per output channel, activations per tensor (symmetric; ranges from min/max over the
  calibration inputs), fast bias correction;
- SmoothQuant on the convolutions: per input channel, activation outliers are divided out and
  multiplied into the weights (which are quantised per channel anyway), so the per-tensor
  activation scale no longer has to span a few outlier channels;
- the stem's first convolution stays fp32: it sees the raw image, and its error reaches every
  later layer, and it is under 1% of the backbone's work. The stem's other two convolutions
  are not kept in fp32: there they took a quarter of the int8 backbone's time (OpenVINO's
  per-layer counters, R101 at 640x960) and lowered the res5 error on the seeded R101 only from
  2.3% to 2.1%.
Measured and not used: asymmetric activations (NNCF's MIXED preset), quantile ranges, 7-bit
weights against u8 x s8 saturation on CPUs without VNNI (NNCF's overflow fix beyond the first
layer: 3.5% instead of 2.3%): none lowered the res5 error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from m2fp.compute.cpu_features import vnni_units
from m2fp.engines.openvino_package import OpenVINOPackage, import_openvino, ir_to_bytes
from m2fp.errors import MissingExtraError

# convolutions left in fp32, counted from the input: the stem's first (DeepLabStem has three)
DEFAULT_FP32_CONVOLUTIONS = 1
DEFAULT_SMOOTH_QUANT_ALPHA = 0.95


def quantized_parts(flags: frozenset[str]) -> tuple[str, ...]:
    """The package parts int8 quantises on a CPU with these flags: the head too only where
    int8 dot products (VNNI, AMX-INT8) make its matmuls pay."""
    return ("backbone", "head") if vnni_units(flags) else ("backbone",)


def import_nncf():
    import_openvino()  # first: NNCF imports OpenVINO, whose telemetry import_openvino refuses
    try:
        import nncf
    except ImportError as exc:
        raise MissingExtraError(
            "int8 quantisation needs the optional packages: pip install 'm2fp[int8]'"
        ) from exc
    return nncf


def quantize_backbone_graph(
    backbone,
    calibration: Sequence[torch.Tensor],
    *,
    smooth_quant_alpha: float | None = DEFAULT_SMOOTH_QUANT_ALPHA,
    fp32_convolutions: int = DEFAULT_FP32_CONVOLUTIONS,
):
    """An int8 copy of an OpenVINO backbone graph (``convert_backbone``).

    Args:
        backbone: ``openvino.Model``, images -> res2..res5.
        calibration: network inputs 1x3xHxW (any sizes the graph accepts).
        smooth_quant_alpha: migration strength of SmoothQuant (0..1), None to skip it.
        fp32_convolutions: how many convolutions, counted from the input, stay unquantised.

    Returns: the quantised ``openvino.Model``.
    """
    if not calibration:
        raise ValueError("calibration needs at least one input")
    if smooth_quant_alpha is not None and not 0 <= smooth_quant_alpha <= 1:
        raise ValueError("smooth_quant_alpha must be within [0, 1]")
    if fp32_convolutions < 0:
        raise ValueError("fp32_convolutions must not be negative")
    nncf = import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

    convolutions = [
        op.get_friendly_name()
        for op in backbone.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    ]
    ignored = nncf.IgnoredScope(names=convolutions[:fp32_convolutions])
    advanced = nncf.AdvancedQuantizationParameters(
        smooth_quant_alphas=AdvancedSmoothQuantParameters(
            convolution=-1 if smooth_quant_alpha is None else smooth_quant_alpha, matmul=-1
        ),
    )
    return nncf.quantize(
        backbone,
        nncf.Dataset(list(calibration), lambda images: images.numpy()),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        # NNCF runs SmoothQuant only for this model type; the backbone has no attention, so
        # nothing else the type changes applies
        model_type=nncf.ModelType.TRANSFORMER if smooth_quant_alpha is not None else None,
        subset_size=len(calibration),
        fast_bias_correction=True,
        ignored_scope=ignored,
        advanced_parameters=advanced,
    )


def sampler_placement(head) -> list[str]:
    """Friendly names of the matmuls whose outputs reach a deformable sampler's rows or
    per-sample weights (the embedding bags' inputs 1 and up) without passing another matmul:
    the ``sampling_offsets`` and ``attention_weights`` linear layers of every encoder layer."""
    found, seen = set(), set()
    stack = [
        op.input_value(port).get_node()
        for op in head.get_ordered_ops()
        if op.get_type_name().startswith("EmbeddingBag")
        for port in range(1, op.get_input_size())
    ]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen:
            continue
        seen.add(name)
        if node.get_type_name() == "MatMul":
            found.add(name)
            continue
        stack.extend(node.input_value(port).get_node() for port in range(node.get_input_size()))
    return sorted(found)


def common_crop(calibration: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The calibration inputs cropped to the smallest height and width among them (top-left),
    so the head, which OpenVINO's CPU plugin compiles only for a static shape, sees one shape.
    Statistics are ranges of values, which a crop of a scene keeps realistic."""
    height = min(int(x.shape[2]) for x in calibration)
    width = min(int(x.shape[3]) for x in calibration)
    return [x[:, :, :height, :width].contiguous() for x in calibration]


def quantize_head_graph(head, features: Sequence[Sequence[np.ndarray]]):
    """An int8 copy of an OpenVINO head graph (``convert_head``): its matmuls and convolutions
    quantised, the sampler's placement layers (``sampler_placement``) left fp32.

    Args:
        head: ``openvino.Model``, res2..res5 -> class and mask logits, dynamic H and W.
        features: per calibration input, res2..res5 (1xCxH/4xW/4 .. 1xCxH/32xW/32 float32),
            all of one input size, as the (quantised) backbone computes them.

    Returns: the quantised ``openvino.Model``, with the head's dynamic H and W again.
    """
    if not features:
        raise ValueError("calibration needs at least one input")
    nncf = import_nncf()
    static = head.clone()
    static.reshape(
        {port: list(f.shape) for port, f in zip(static.inputs, features[0], strict=True)}
    )
    quantized = nncf.quantize(
        static,
        nncf.Dataset([list(f) for f in features]),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        # SmoothQuant off: measured on the seeded R101, alpha 0.5 changed class/mask logits
        # errors from 1.4%/4.2% to 1.3%/4.6%, no gain for its extra pass
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(features),
        fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=sampler_placement(static)),
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.quantization.advanced_parameters.AdvancedSmoothQuantParameters(
                convolution=-1, matmul=-1
            )
        ),
    )
    quantized.reshape(
        {
            port: [1, int(f.shape[1]), -1, -1]
            for port, f in zip(quantized.inputs, features[0], strict=True)
        }
    )
    return quantized


def backbone_features(backbone, calibration: Sequence[torch.Tensor]) -> list[list[np.ndarray]]:
    """res2..res5 of an OpenVINO backbone graph for each input, compiled once (f32)."""
    compiled = (
        import_openvino().Core().compile_model(backbone, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    )
    results = []
    for images in calibration:
        outputs = compiled(images.numpy())
        results.append([np.array(outputs[port]) for port in compiled.outputs])
    return results


def quantize_package(
    package: OpenVINOPackage,
    calibration: Sequence[torch.Tensor],
    *,
    smooth_quant_alpha: float | None = DEFAULT_SMOOTH_QUANT_ALPHA,
    fp32_convolutions: int = DEFAULT_FP32_CONVOLUTIONS,
    parts: Sequence[str] = ("backbone",),
    calibration_note: Mapping[str, Any] | None = None,
) -> OpenVINOPackage:
    """The int8 package of an fp32 package: its backbone quantised, and its head too if
    ``parts`` names it (``quantized_parts`` of the CPU that will run it).

    Args:
        package: an fp32 package (``convert_fp32``).
        calibration: network inputs, e.g. ``calibration_inputs(...)``; the head is calibrated
            on the quantised backbone's features of them, cropped to one size
            (``common_crop``).
        smooth_quant_alpha, fp32_convolutions: see ``quantize_backbone_graph``.
        parts: ``("backbone",)`` or ``("backbone", "head")``.
        calibration_note: what ``calibration`` is (e.g. the scenes and seed), recorded in the
            package with the quantisation options.
    """
    if package.precision != "fp32":
        raise ValueError("quantise an fp32 package")
    if tuple(parts) not in (("backbone",), ("backbone", "head")):
        raise ValueError("int8 quantises the backbone, or the backbone and the head")
    backbone = quantize_backbone_graph(
        package.models()["backbone"],
        calibration,
        smooth_quant_alpha=smooth_quant_alpha,
        fp32_convolutions=fp32_convolutions,
    )
    head = package.parts["head"]
    if "head" in parts:
        features = backbone_features(backbone, common_crop(calibration))
        head = ir_to_bytes(quantize_head_graph(package.models()["head"], features))
    return OpenVINOPackage(
        precision="int8",
        parts={"backbone": ir_to_bytes(backbone), "head": head},
        openvino_version=package.openvino_version,
        weights_sha256=package.weights_sha256,
        calibration={
            **(calibration_note or {}),
            "inputs": len(calibration),
            "smooth_quant_alpha": smooth_quant_alpha,
            "fp32_convolutions": fp32_convolutions,
            "quantized": list(parts),
        },
    )
