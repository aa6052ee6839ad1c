"""The converted form of a network for OpenVINO, as bytes: convert once, load fast, from memory.

A package holds two OpenVINO IR graphs (xml + bin each) with dynamic height and width: the
``backbone`` (fp32, or int8 in the int8 mode) and the ``head`` (fp32, or in the int8 mode
its matmuls int8 where the CPU that quantised it has VNNI/AMX-INT8). Two graphs, not one, so
that int8 quantises and calibrates each half on its own terms (the head at one static shape)
and both precisions share one conversion; the backbone's outputs feed the head without a
copy. It is serialised to one
byte string so it can travel inside an encrypted ``.m2fp`` envelope: writing and reading go
through memory only (``memfd`` files and ``Core.read_model(model=..., weights=Tensor)``), never
through a plaintext file on disk.

Layout: ``MAGIC``, the header length (8 bytes, little-endian), a JSON header (``format``,
``precision``, ``openvino`` version, the ``weights_sha256`` it was converted from, how an int8
backbone was ``calibration``-ed, and per part its ``name`` and xml/bin lengths), then each
part's xml and bin bytes in header order. Nothing is unpickled and every length is checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from m2fp.errors import CheckpointError, MissingExtraError

MAGIC = b"M2FPOVP1"
# where a package travels with its weights: a file in the model directory, or an attachment
# of the .m2fp envelope (m2fp.protection.envelope_header)
PACKAGE_SUFFIX = ".ovpkg"
FORMAT = 1
MAX_HEADER = 1 << 16
PRECISIONS = ("fp32", "int8")
PARTS = ("backbone", "head")


# the package each OpenVINO precision runs from: bf16 compiles the fp32 graphs (its backbone
# for bf16, m2fp.engines.openvino_engine), so it needs no package of its own
RUNS_FROM = {"fp32": "fp32", "bf16": "fp32", "int8": "int8"}


def package_precision(precision: str) -> str:
    """The package precision (``fp32``/``int8``) that ``precision`` runs from.

    Raises:
        ValueError: not a precision of the OpenVINO engine.
    """
    value = getattr(precision, "value", precision)
    if value not in RUNS_FROM:
        raise ValueError(f"the OpenVINO engine does not run in {value}")
    return RUNS_FROM[value]


OPENVINO_MISSING = "the OpenVINO engine needs the optional package: pip install 'm2fp[openvino]'"


def import_openvino():
    """The ``openvino`` module, imported with OpenVINO's usage telemetry refused.

    With ``openvino-telemetry`` installed (a dependency of the ``openvino`` wheel), every
    ``import openvino`` writes a client ID and usage stats under ``$HOME/intel`` and queues
    analytics events unless the user opted out. A service for photos of people sends nothing
    to anyone it was not asked to, so the telemetry module is made unimportable before the
    first import: OpenVINO (and NNCF, imported after it) then use their own no-op stubs.
    Every import of OpenVINO in m2fp goes through here.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    try:
        import openvino
    except ImportError as exc:
        raise MissingExtraError(OPENVINO_MISSING) from exc
    return openvino


def attachment_name(precision: str) -> str:
    """The envelope attachment holding the package of ``precision`` (``fp32``, ``int8``)."""
    return f"openvino_{getattr(precision, 'value', precision)}"


def package_file_name(precision: str) -> str:
    """The file in a model directory holding the package of ``precision``."""
    return attachment_name(precision) + PACKAGE_SUFFIX


def packages_beside(model_dir: Path, weights_sha256: str) -> dict[str, OpenVINOPackage]:
    """The packages exported into a model directory (precision -> package), each checked to
    belong to the weights with this digest.

    Raises:
        CheckpointError: one does not parse, or belongs to other weights.
    """
    packages = {}
    for precision in PRECISIONS:
        path = model_dir / package_file_name(precision)
        if path.is_file():
            package = OpenVINOPackage.from_bytes(read_owned(path), owned=True)
            packages[precision] = package.check(precision, weights_sha256)
    return packages


def read_owned(path: Path) -> bytearray:
    """A package file's bytes in a buffer of its own, to hand over to ``from_bytes`` (whose
    graphs then share it with OpenVINO instead of being copied).

    Raises:
        OSError: it cannot be read, or changed size while being read.
    """
    with path.open("rb") as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        if handle.readinto(data) != len(data) or handle.read(1):
            raise OSError(f"{path.name} changed while being read")
    return data


def _read_fd(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 26))
        if not chunk:
            raise OSError("memory file ended early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def ir_to_bytes(model) -> tuple[bytes, bytes]:
    """(xml, bin) of an ``openvino.Model``, weights as they are (no fp16 compression).

    OpenVINO serialises to paths only; the paths are links to anonymous memory files (Linux
    ``memfd_create``), so the plaintext weights never reach a disk.
    """
    ov = import_openvino()
    if not hasattr(os, "memfd_create"):
        raise OSError("serialising an OpenVINO model in memory needs Linux (memfd_create)")
    xml_fd = os.memfd_create("m2fp-ir-xml", os.MFD_CLOEXEC)
    bin_fd = os.memfd_create("m2fp-ir-bin", os.MFD_CLOEXEC)
    try:
        # OpenVINO insists on an .xml name: links with that name point at the memory files
        with tempfile.TemporaryDirectory(prefix="m2fp-ir-") as links:
            xml_path, bin_path = Path(links, "model.xml"), Path(links, "model.bin")
            xml_path.symlink_to(f"/proc/self/fd/{xml_fd}")
            bin_path.symlink_to(f"/proc/self/fd/{bin_fd}")
            ov.serialize(model, str(xml_path), str(bin_path))
        return _read_fd(xml_fd), _read_fd(bin_fd)
    finally:
        os.close(xml_fd)
        os.close(bin_fd)


def ir_from_bytes(xml: bytes | memoryview, weights: bytes | memoryview, core=None):
    """An ``openvino.Model`` read from memory by ``core`` (default: a new ``openvino.Core``;
    each costs a plugin registry, so a caller reading several graphs passes its own).

    Writable ``weights`` (a package's handed-over buffer, ``OpenVINOPackage.from_bytes``) are
    shared with the model, not copied (OpenVINO shares only writable memory; copying R101's
    242 MB took 0.15 s of a slim start-up): they must then outlive the model. Read-only
    weights are copied into OpenVINO's own tensor."""
    ov = import_openvino()
    array = np.frombuffer(weights, dtype=np.uint8)
    tensor = ov.Tensor(array, shared_memory=array.flags.writeable) if len(array) else ov.Tensor()
    return (core or ov.Core()).read_model(model=str(xml, "utf-8"), weights=tensor)


@dataclasses.dataclass(frozen=True)
class OpenVINOPackage:
    """Serialised OpenVINO graphs of one network.

    Attributes:
        precision: ``fp32`` (exact) or ``int8`` (quantised, an approximation).
        parts: part name -> (IR xml, IR bin): bytes, or views of the one buffer the package
            was parsed from (``from_bytes``): read-only, or writable where that buffer was
            handed over, so that ``models`` shares it with OpenVINO.
        openvino_version: the OpenVINO that converted it (IR is read by the same or newer).
        weights_sha256: the sha256 of the weights it was converted from (``ModelWeights``),
            so that a package is never run beside other weights; None if unknown.
        calibration: for int8, how the backbone was calibrated (scenes, seed, options).
    """

    precision: str
    parts: Mapping[str, tuple[bytes | memoryview, bytes | memoryview]]
    openvino_version: str
    weights_sha256: str | None = None
    calibration: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown package precision {self.precision!r}")
        if tuple(self.parts) != PARTS:
            raise ValueError(f"a package holds the graphs {PARTS}, in that order")

    @classmethod
    def from_models(
        cls,
        precision: str,
        models: Mapping[str, object],
        *,
        weights_sha256: str | None = None,
        calibration: Mapping[str, Any] | None = None,
    ) -> OpenVINOPackage:
        """Serialise ``openvino.Model`` graphs (name -> model) into a package."""
        ov = import_openvino()
        parts = {name: ir_to_bytes(model) for name, model in models.items()}
        return cls(
            precision=precision,
            parts=parts,
            openvino_version=ov.get_version(),
            weights_sha256=weights_sha256,
            calibration=calibration,
        )

    def check(self, precision: str, weights_sha256: str | None) -> OpenVINOPackage:
        """This package, if it is ``precision``'s and was converted from the weights with
        this digest (when both digests are known).

        Raises:
            CheckpointError: another precision, or converted from other weights.
        """
        if self.precision != precision:
            raise CheckpointError(
                f"the OpenVINO package is {self.precision}, not {precision}; export the "
                f"{precision} package ('m2fp model export --format openvino --precision "
                f"{precision}')"
            )
        if weights_sha256 and self.weights_sha256 and self.weights_sha256 != weights_sha256:
            raise CheckpointError(
                "the OpenVINO package was converted from other weights; export it again "
                "('m2fp model export --format openvino')"
            )
        return self

    def describe(self) -> dict[str, Any]:
        """Public facts for ``m2fp model info``: everything but the graphs."""
        return {
            "precision": self.precision,
            "openvino": self.openvino_version,
            "weights_sha256": self.weights_sha256,
            "calibration": dict(self.calibration) if self.calibration else None,
            "bytes": sum(len(xml) + len(weights) for xml, weights in self.parts.values()),
        }

    def models(self, core=None) -> dict[str, object]:
        """The graphs as ``openvino.Model`` objects, read from memory by ``core`` (default:
        one new ``openvino.Core`` for all). Graphs of a handed-over buffer share its memory
        (``ir_from_bytes``): keep the package while they, or models compiled from them, live."""
        core = core or import_openvino().Core()
        return {
            name: ir_from_bytes(xml, weights, core) for name, (xml, weights) in self.parts.items()
        }

    def to_bytes(self) -> bytes:
        header = {
            "format": FORMAT,
            "precision": self.precision,
            "openvino": self.openvino_version,
            "weights_sha256": self.weights_sha256,
            "calibration": dict(self.calibration) if self.calibration else None,
            "parts": [
                {"name": name, "xml": len(xml), "bin": len(weights)}
                for name, (xml, weights) in self.parts.items()
            ],
        }
        encoded = json.dumps(header, sort_keys=True).encode()
        chunks = [MAGIC, len(encoded).to_bytes(8, "little"), encoded]
        for xml, weights in self.parts.values():
            chunks += [xml, weights]
        return b"".join(chunks)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, owned: bool = False
    ) -> OpenVINOPackage:
        """Parse ``to_bytes`` output.

        The graphs are views of ``data``, not copies (a fp32 R101 package is 242 MB, and
        copying it out cost a seventh of a slim replica's start-up), where that is safe:
        ``data`` is immutable ``bytes`` (read-only views), or ``owned`` says the caller hands
        its buffer over (it neither changes nor wipes it afterwards; the package keeps it
        alive, and its writable views let OpenVINO share it too). A writable buffer not handed
        over (a view of decrypted plaintext that is wiped later) is copied.

        Raises:
            CheckpointError: not a package, truncated, extended or malformed.
        """
        view = memoryview(data).cast("B")
        if not (view.readonly or owned):
            view = memoryview(bytes(view))
        start = len(MAGIC) + 8
        if len(view) < start or bytes(view[: len(MAGIC)]) != MAGIC:
            raise CheckpointError("not an m2fp OpenVINO package")
        size = int.from_bytes(view[len(MAGIC) : start], "little")
        if size > MAX_HEADER or start + size > len(view):
            raise CheckpointError("OpenVINO package: bad header length")
        try:
            header = json.loads(bytes(view[start : start + size]))
            if header["format"] != FORMAT:
                raise CheckpointError(f"OpenVINO package format {header['format']} unsupported")
            spans = [(p["name"], int(p["xml"]), int(p["bin"])) for p in header["parts"]]
            precision, version = str(header["precision"]), str(header["openvino"])
            weights_sha256, calibration = header.get("weights_sha256"), header.get("calibration")
            if weights_sha256 is not None and not isinstance(weights_sha256, str):
                raise TypeError("weights_sha256")
            if calibration is not None and not isinstance(calibration, dict):
                raise TypeError("calibration")
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError("OpenVINO package: malformed header") from exc
        offset, parts = start + size, {}
        for name, xml_len, bin_len in spans:
            if xml_len < 0 or bin_len < 0 or offset + xml_len + bin_len > len(view):
                raise CheckpointError("OpenVINO package: truncated")
            xml = view[offset : offset + xml_len]
            weights = view[offset + xml_len : offset + xml_len + bin_len]
            parts[str(name)] = (xml, weights)
            offset += xml_len + bin_len
        if offset != len(view):
            raise CheckpointError("OpenVINO package: unexpected trailing bytes")
        try:
            return cls(
                precision=precision,
                parts=parts,
                openvino_version=version,
                weights_sha256=weights_sha256,
                calibration=calibration,
            )
        except ValueError as exc:
            raise CheckpointError(f"OpenVINO package: {exc}") from exc
