"""What ``m2fp model info|verify`` report about a model: its weights' facts
(``description.describe_weights``) and the OpenVINO packages that travel with it.

With PyTorch the model is opened as a parser would (``open_model``: the weights parsed and
checked to fit the network the config describes, whose parameters are counted). Without it
(the slim runtime) the same report comes from what needs no network: the config, the
safetensors layout (names, dtypes, shapes, offsets: checked, and the parameter count), the
weights' sha256 and, for an ``.m2fp`` file, every chunk authenticated and every section hashed.
Only the fit of each key and shape to the network is not checked there; a ``.pt`` checkpoint,
a Fernet token or any other file that is no ``.m2fp`` (read, or told apart, with torch) gets
the one-line ``m2fp[torch]`` refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from m2fp.compute.options import Precision
from m2fp.engines.openvino_package import attachment_name, package_file_name
from m2fp.errors import TORCH_MISSING, MissingExtraError, ModelKeyError, missing_torch
from m2fp.model_config import validate_config
from m2fp.protection.keys import MISSING_KEY, parse_key
from m2fp.weights.description import describe_weights, parameter_count
from m2fp.weights.loader import open_model, openvino_package, sniff
from m2fp.weights.model_files import file_sha256, find_weights, read_config
from m2fp.weights.safetensors_header import MAX_LAYOUT_BYTES, tensor_layout

# the precisions an OpenVINO package can have, in the order reported
PACKAGED = (Precision.FP32, Precision.INT8)


def model_report(path: Path, key: bytes | None) -> dict[str, Any]:
    """The report of whatever ``path`` holds (see ``open_model``): ``describe_weights``'s
    keys and ``openvino_packages`` (precision -> the package's facts, where it is, whether it
    was made from these weights).

    Raises:
        as ``open_model``; ``MissingExtraError`` without torch only for a ``.pt`` checkpoint
        or a Fernet token.
    """
    if _torch_missing():
        return _report_without_network(path, key)
    with open_model(path, key=key) as weights:
        return _with_packages(path, weights.describe(), weights.attachments)


def _torch_missing() -> bool:
    try:
        import torch  # noqa: F401  (what open_model needs; importing it is what it costs)
    except ImportError as exc:
        if missing_torch(exc) is None:
            raise
        return True
    return False


def _with_packages(
    path: Path, report: dict[str, Any], attachments: Mapping[str, memoryview]
) -> dict[str, Any]:
    packages = {}
    for precision in PACKAGED:
        package = openvino_package(path, attachments, precision)
        if package is not None:
            where = (
                f"attachment {attachment_name(precision.value)}"
                if path.is_file()
                else package_file_name(precision.value)
            )
            packages[precision.value] = {
                **package.describe(),
                "where": where,
                "matches_weights": package.weights_sha256 == report["sha256"],
            }
    report["openvino_packages"] = packages
    return report


def _report_without_network(path: Path, key: bytes | None) -> dict[str, Any]:
    """``model_report`` from the config, the safetensors layout and the digest, with no
    network built."""
    if not path.is_file():
        config = read_config(path)
        weights = find_weights(path)
        if weights.suffix != ".safetensors":
            raise MissingExtraError(TORCH_MISSING)  # a pickle archive: torch reads it
        digest, size = file_sha256(weights)
        with weights.open("rb") as handle:
            head = handle.read(MAX_LAYOUT_BYTES)
        layout = tensor_layout(head, file_size=size)
        report = describe_weights(
            config=config,
            parameters=parameter_count({name: t.shape for name, t in layout.items()}),
            weights_file=weights.name,
            weights_bytes=size,
            sha256=digest,
        )
        return _with_packages(path, report, {})
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    from m2fp.protection.envelope_chunks import decrypted_sections
    from m2fp.protection.envelope_header import is_envelope

    if not is_envelope(sniff(path)):
        # a Fernet token holds a torch checkpoint: telling one apart is torch's side too
        raise MissingExtraError(TORCH_MISSING)
    # the whole file authenticated; only the weights' head and the packages are kept
    keep: dict[str, int | None] = {"weights": MAX_LAYOUT_BYTES}
    keep |= {attachment_name(precision.value): None for precision in PACKAGED}
    with decrypted_sections(path, parse_key(key), keep=keep) as (header, kept):
        validate_config(header.config)
        layout = tensor_layout(kept.pop("weights"), file_size=header.plaintext_size)
        report = describe_weights(
            config=header.config,
            parameters=parameter_count({name: t.shape for name, t in layout.items()}),
            weights_file=path.name,
            weights_bytes=header.plaintext_size,
            sha256=header.plaintext_sha256,
            protection=header.describe(),
        )
        # the packages are read while the kept bytes live (wiped when the block ends)
        return _with_packages(path, report, {name: memoryview(data) for name, data in kept.items()})
