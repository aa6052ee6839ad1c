"""Convert the network to OpenVINO graphs (fp32, exact) from its exported program.

Conversion is the slow step (tens of seconds for R101: ``torch.export`` plus OpenVINO's
frontend), so it is done once and its result kept as an ``OpenVINOPackage``; loading a package
is a read from memory plus one compile per input shape (``OpenVINOEngine``).
"""

from __future__ import annotations

from m2fp.engines.export import export_backbone, export_head
from m2fp.engines.openvino_package import OpenVINOPackage, _openvino
from m2fp.modeling.m2fp import M2FP


def convert_backbone(model: M2FP):
    """The backbone as an ``openvino.Model``: ``images`` -> res2..res5."""
    return _openvino().convert_model(export_backbone(model))


def convert_head(model: M2FP):
    """Pixel and transformer decoders as an ``openvino.Model``: res2..res5 -> outputs."""
    return _openvino().convert_model(export_head(model))


def convert_fp32(model: M2FP) -> OpenVINOPackage:
    """An exact fp32 package of ``model``: its backbone and head graphs."""
    return OpenVINOPackage.from_models(
        "fp32", {"backbone": convert_backbone(model), "head": convert_head(model)}
    )
