"""Convert the network to OpenVINO graphs (fp32, exact) from its exported program.

Conversion is the slow step (tens of seconds for R101: ``torch.export`` plus OpenVINO's
frontend), so it is done once and its result kept as an ``OpenVINOPackage``; loading a package
is a read from memory plus one compile per input shape (``OpenVINOEngine``).
"""

from __future__ import annotations

from m2fp.engines.export import export_backbone, export_head, export_network
from m2fp.engines.openvino_package import OpenVINOPackage, _openvino
from m2fp.modeling.m2fp import M2FP


def convert_network(model: M2FP):
    """The whole network as one ``openvino.Model``, input ``images`` 1x3x?x? float32."""
    return _openvino().convert_model(export_network(model))


def convert_backbone(model: M2FP):
    """The backbone as an ``openvino.Model``: ``images`` -> res2..res5."""
    return _openvino().convert_model(export_backbone(model))


def convert_head(model: M2FP):
    """Pixel and transformer decoders as an ``openvino.Model``: res2..res5 -> outputs."""
    return _openvino().convert_model(export_head(model))


def convert_fp32(model: M2FP) -> OpenVINOPackage:
    """An exact fp32 package of ``model`` (the ``network`` graph)."""
    return OpenVINOPackage.from_models("fp32", {"network": convert_network(model)})
