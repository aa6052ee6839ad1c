"""Convert the network to OpenVINO graphs (fp32, exact) from its exported program, and make the
int8 package from the fp32 one (its head quantised too where this CPU has VNNI/AMX-INT8,
``m2fp.engines.int8.quantized_parts``).

Conversion is the slow step (tens of seconds for R101: ``torch.export`` plus OpenVINO's
frontend; quantising the backbone takes minutes), so it is done once and its result kept as an
``OpenVINOPackage`` (``m2fp model export --format openvino``); loading a package is a read
from memory plus one compile per input shape (``OpenVINOEngine``).
"""

from __future__ import annotations

from m2fp.compute.cpu_features import cpu_flags
from m2fp.compute.options import Precision
from m2fp.engines.calibration import DEFAULT_SCENES, DEFAULT_SEED, calibration_inputs
from m2fp.engines.export import export_backbone, export_head
from m2fp.engines.openvino_package import OpenVINOPackage, import_openvino
from m2fp.modeling.m2fp import M2FP


def convert_backbone(model: M2FP):
    """The backbone as an ``openvino.Model``: ``images`` -> res2..res5."""
    return import_openvino().convert_model(export_backbone(model))


def convert_head(model: M2FP):
    """Pixel and transformer decoders as an ``openvino.Model``: res2..res5 -> outputs."""
    return import_openvino().convert_model(export_head(model))


def convert_fp32(model: M2FP, *, weights_sha256: str | None = None) -> OpenVINOPackage:
    """An exact fp32 package of ``model``: its backbone and head graphs."""
    return OpenVINOPackage.from_models(
        "fp32",
        {"backbone": convert_backbone(model), "head": convert_head(model)},
        weights_sha256=weights_sha256,
    )


def convert_package(
    model: M2FP,
    precision: Precision,
    *,
    weights_sha256: str | None,
    min_size: int,
    max_size: int,
    scenes: int = DEFAULT_SCENES,
    single_person_size: tuple[int, int] | None = None,
    fp32: OpenVINOPackage | None = None,
) -> OpenVINOPackage:
    """The package ``precision`` needs: fp32 converted, or int8 quantised from the fp32 one
    (``fp32`` if given, else converted first).

    Args:
        model: the network (CPU, fp32).
        precision: ``fp32`` or ``int8``.
        weights_sha256: recorded in the package (``OpenVINOPackage.weights_sha256``).
        min_size, max_size: the input sizes the calibration scenes are prepared at (those of
            the parser that will run it).
        scenes: calibration scenes drawn for int8 (``m2fp.engines.calibration``).
        single_person_size: the single-person model's fixed (width, height) input, where
            the scenes are centred instead of resized.
        fp32: an fp32 package of the same weights, to quantise instead of converting again.
    """
    if precision not in (Precision.FP32, Precision.INT8):
        raise ValueError(f"OpenVINO packages are fp32 or int8, not {precision.value}")
    if fp32 is None:
        fp32 = convert_fp32(model, weights_sha256=weights_sha256)
    if precision is Precision.FP32:
        return fp32
    from m2fp.engines.int8 import quantize_package, quantized_parts  # nncf: the int8 extra

    calibration = calibration_inputs(
        scenes,
        pixel_mean=model.pixel_mean,
        pixel_std=model.pixel_std,
        min_size=min_size,
        max_size=max_size,
        single_person_size=single_person_size,
    )
    note = {"scenes": scenes, "seed": DEFAULT_SEED}
    if single_person_size is None:
        note.update(min_size=min_size, max_size=max_size)
    else:
        note.update(single_person_size=list(single_person_size))
    return quantize_package(
        fp32, calibration, parts=quantized_parts(cpu_flags()), calibration_note=note
    )
