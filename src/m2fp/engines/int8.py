"""Opt-in int8: NNCF post-training quantisation of the backbone, the head left in fp32.

An approximation, never the default. The backbone is where int8 pays (about half the forward
in fp32, all of it convolutions); the deformable encoder and the masked decoder stay fp32:
quantising them too gained little and cost far more accuracy (issue 14's measurements).

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

import torch

from m2fp.engines.openvino_package import OpenVINOPackage, ir_to_bytes
from m2fp.errors import MissingExtraError

# convolutions left in fp32, counted from the input: the stem's first (DeepLabStem has three)
DEFAULT_FP32_CONVOLUTIONS = 1
DEFAULT_SMOOTH_QUANT_ALPHA = 0.95


def _nncf():
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
    nncf = _nncf()
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


def quantize_package(
    package: OpenVINOPackage,
    calibration: Sequence[torch.Tensor],
    *,
    smooth_quant_alpha: float | None = DEFAULT_SMOOTH_QUANT_ALPHA,
    fp32_convolutions: int = DEFAULT_FP32_CONVOLUTIONS,
    calibration_note: Mapping[str, Any] | None = None,
) -> OpenVINOPackage:
    """The int8 package of an fp32 package: its backbone quantised, its head as it was.

    Args:
        package: an fp32 package (``convert_fp32``).
        calibration: network inputs, e.g. ``calibration_inputs(...)``.
        smooth_quant_alpha, fp32_convolutions: see ``quantize_backbone_graph``.
        calibration_note: what ``calibration`` is (e.g. the scenes and seed), recorded in the
            package with the quantisation options.
    """
    if package.precision != "fp32":
        raise ValueError("quantise an fp32 package")
    backbone = quantize_backbone_graph(
        package.models()["backbone"],
        calibration,
        smooth_quant_alpha=smooth_quant_alpha,
        fp32_convolutions=fp32_convolutions,
    )
    return OpenVINOPackage(
        precision="int8",
        parts={"backbone": ir_to_bytes(backbone), "head": package.parts["head"]},
        openvino_version=package.openvino_version,
        weights_sha256=package.weights_sha256,
        calibration={
            **(calibration_note or {}),
            "inputs": len(calibration),
            "smooth_quant_alpha": smooth_quant_alpha,
            "fp32_convolutions": fp32_convolutions,
        },
    )
