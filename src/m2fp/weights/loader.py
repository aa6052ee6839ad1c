"""The one way to open a model: a ModelScope directory, an encrypted ``.m2fp`` file or a
Fernet-wrapped checkpoint, always as one checked ``ModelWeights`` record.

Every caller (``HumanParser.from_pretrained``, ``m2fp model info|verify``, the server) goes
through ``open_model``: config validated, weights read without any pickle code path, the
sha256 pin checked, keys and shapes checked against the network the config describes. Protected
files are decrypted in memory only; their plaintext buffer is wiped when the block ends.

``load_model`` decides what a parser needs: for the OpenVINO engine with a package of the
precision asked for (beside the weights, or inside the envelope) only the config and the package,
the weights hashed but neither parsed nor built into a network, and torch never imported (the
slim runtime); otherwise the network, which needs torch (``MissingExtraError`` naming
``m2fp[torch]`` without it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from m2fp.compute.options import Precision
from m2fp.engines.openvino_package import (
    OpenVINOPackage,
    attachment_name,
    package_file_name,
    read_owned,
)
from m2fp.errors import CheckpointError, ModelKeyError, missing_torch
from m2fp.model_config import validate_config
from m2fp.protection.keys import MISSING_KEY, parse_key
from m2fp.weights.model_files import file_sha256, find_weights, read_config
from m2fp.weights.sha256_pin import check_pin

if TYPE_CHECKING:
    import torch

    from m2fp.modeling.m2fp import M2FP
    from m2fp.weights.checkpoint import ModelWeights

SNIFF_BYTES = 8


class LoadedModel(NamedTuple):
    """A network ready for inference and where it came from.

    Attributes:
        model: the network, eval mode, ModelScope parameter names, conv weights channels-last
            (the layout inference runs in); None when the OpenVINO package is all that runs.
        config: its ``model`` config section.
        sha256: the weights' digest (see ``ModelWeights.sha256``).
        openvino: the converted OpenVINO package asked for, if the model has one (beside
            the weights, or inside the envelope).
    """

    model: M2FP | None
    config: dict[str, Any]
    sha256: str
    openvino: OpenVINOPackage | None = None


@contextmanager
def open_model(
    path: Path, *, key: bytes | str | None = None, expected_sha256: str | None = None
) -> Iterator[ModelWeights]:
    """Open whatever ``path`` holds, for the duration of a ``with`` block.

    Args:
        path: a model directory, an ``.m2fp`` file, or a Fernet token file with
            ``configuration.json`` beside it.
        key: the model key of a protected file (raw 32 bytes, or base64/hex text).
        expected_sha256: pin for the weights in the clear.

    Raises:
        ModelNotFoundError: no directory or no weights in it.
        ModelConfigError: the config is missing or unsupported.
        ModelKeyError: a protected file without its key, or with another one.
        IntegrityError: pin mismatch, or a protected file truncated, extended or modified.
        CheckpointError: anything else that makes the weights unusable (refused pickle,
            keys or shapes that do not fit...).
        MissingExtraError: torch is not installed (reading weights needs it).
    """
    try:
        from m2fp.weights.checkpoint import open_model_dir, require_safe_torch
    except ImportError as exc:
        raise (missing_torch(exc) or exc) from None
    require_safe_torch()
    if not path.is_file():
        yield open_model_dir(path, expected_sha256=expected_sha256)
        return
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    with _open_protected(path, key, expected_sha256) as weights:
        yield weights


@contextmanager
def _open_protected(
    path: Path, key: bytes | str, expected_sha256: str | None
) -> Iterator[ModelWeights]:
    # the cipher modules need the crypto extra: imported only for protected files
    from m2fp.protection.envelope_chunks import decrypted_payload
    from m2fp.protection.envelope_header import is_envelope
    from m2fp.protection.fernet_compat import decrypt_checkpoint, is_fernet_token
    from m2fp.weights.checkpoint import fitted_weights
    from m2fp.weights.safetensors_view import tensors_from_safetensors

    raw_key = parse_key(key)
    prefix = sniff(path)
    if is_envelope(prefix):
        with decrypted_payload(path, raw_key, expected_sha256=expected_sha256) as (header, data):
            view = memoryview(data)
            sections = {name: view[start:stop] for name, start, stop, _ in header.sections()}
            state_dict = tensors_from_safetensors(sections.pop("weights"))
            yield fitted_weights(
                config=header.config,
                state_dict=state_dict,
                sha256=header.plaintext_sha256,
                kind="m2fp",
                weights_file=path.name,
                weights_bytes=header.plaintext_size,
                protection=header.describe(),
                attachments=sections,
            )
        return
    if not is_fernet_token(prefix):
        raise not_a_model(path)
    config = read_config(path.parent)
    state_dict, digest, size = decrypt_checkpoint(path, raw_key)
    try:
        check_pin(digest, expected_sha256)
        yield fitted_weights(
            config=config,
            state_dict=state_dict,
            sha256=digest,
            kind="fernet",
            weights_file=path.name,
            weights_bytes=size,
            protection={"format": "fernet", "cipher": "Fernet (AES-128-CBC + HMAC-SHA256)"},
        )
    finally:
        # the tensors can be cleared; the token's decrypted bytes (immutable) only dropped
        import torch

        with torch.no_grad():
            for tensor in state_dict.values():
                tensor.zero_()


def model_config(path: Path, *, key: bytes | str | None = None) -> dict[str, Any]:
    """The validated ``model`` config section of whatever ``path`` holds (see
    ``open_model``), without reading the weights or building the network: for a caller that
    needs only the model's classes before anything heavy starts (the batch driver refusing
    output options the model cannot make, while its actors load the model).

    An ``.m2fp`` file's header (where its config lives) is taken only once its first chunk
    authenticates with ``key`` (every chunk's AAD holds the whole header); the plaintext of
    that chunk is wiped at once. A Fernet token's config is the ``configuration.json``
    beside it, as ``open_model`` reads it.

    Raises:
        ModelNotFoundError, ModelConfigError: as ``open_model``.
        ModelKeyError: a protected file without its key, or with another one.
        IntegrityError: an ``.m2fp`` header that is corrupt or does not authenticate.
        CheckpointError: a file that is no model.
    """
    if not path.is_file():
        return read_config(path)
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    from m2fp.protection.envelope_header import is_envelope, open_envelope
    from m2fp.protection.fernet_compat import is_fernet_token

    prefix = sniff(path)
    if is_envelope(prefix):
        from m2fp.protection.envelope_chunks import decrypt_chunks

        with open_envelope(path) as (stream, header):
            chunks = decrypt_chunks(stream, header, parse_key(key))
            next(chunks)
            chunks.close()  # its ``finally`` wipes the plaintext buffer
        validate_config(header.config)
        return header.config
    if not is_fernet_token(prefix):
        raise not_a_model(path)
    return read_config(path.parent)


def not_a_model(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path.name} is neither a model directory, an .m2fp file nor a Fernet-wrapped checkpoint"
    )


def sniff(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise CheckpointError(f"{path.name} could not be read: {exc.strerror}") from None


def fill_skeleton(
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    skeleton: M2FP | None = None,
    device: torch.device | None = None,
    channels_last: bool = False,
) -> M2FP:
    """The network of ``config`` owning copies of ``state_dict`` (checked to fit).

    The skeleton (``skeleton``, or one built here) is empty (meta device) and takes the copies
    as its parameters, so no parameter is initialised at random only to be overwritten.
    Copies, because the tensors are views of a read buffer (dropped after loading) or of
    decrypted plaintext (wiped); each is made once, straight into its final place: on
    ``device`` (default the CPU) and, with ``channels_last``, 4-D conv weights in the layout
    inference runs in (``m2fp.compute.precision.prepare_model`` then has nothing left to do).
    """
    import torch

    from m2fp.build import build_model

    model = build_model(config, empty=True) if skeleton is None else skeleton
    expected = model.state_dict()
    owned = {
        name: _copy(tensor, expected[name].dtype, device, channels_last)
        for name, tensor in state_dict.items()
    }
    model.load_state_dict(owned, strict=True, assign=True)
    return model.eval().to(device or torch.device("cpu"))


def _copy(
    tensor: torch.Tensor, dtype: torch.dtype, device: torch.device | None, channels_last: bool
) -> torch.Tensor:
    import torch

    layout = torch.channels_last if channels_last and tensor.dim() == 4 else torch.contiguous_format
    target = torch.empty(tensor.shape, dtype=dtype, device=device or "cpu", memory_format=layout)
    return target.copy_(tensor)


def load_model(
    path: Path,
    *,
    key: bytes | str | None = None,
    expected_sha256: str | None = None,
    device: torch.device | None = None,
    openvino: Precision | None = None,
    network: bool = False,
) -> LoadedModel:
    """What a parser needs from whatever ``path`` holds (see ``open_model``): the network
    ready for inference on ``device`` (default the CPU, conv weights channels-last), or with
    ``openvino`` and a package of that precision, the package alone (``model`` None): the
    weights hashed (pin and package checked against the digest) but not parsed, no network
    built, torch not imported.

    Args:
        openvino: the OpenVINO engine's package precision: ``openvino_<precision>.ovpkg`` in a
            model directory, or the attachment ``openvino_<precision>`` of an ``.m2fp`` file.
            None: the network only (the torch engine, export, quantisation).
        network: build the network even where the package is there (quantising int8 from
            the fp32 package calibrates with both).

    Raises:
        CheckpointError: as ``open_model``, or an OpenVINO package that does not parse.
        MissingExtraError: the network is needed (no such package) and torch is missing.
    """
    if openvino is not None and not network:
        packaged = _package_only(path, key, expected_sha256, openvino)
        if packaged is not None:
            return packaged
    with open_model(path, key=key, expected_sha256=expected_sha256) as weights:
        model = fill_skeleton(
            weights.config,
            weights.state_dict,
            skeleton=weights.skeleton,
            device=device,
            channels_last=True,
        )
        package = (
            None if openvino is None else openvino_package(path, weights.attachments, openvino)
        )
        return LoadedModel(
            model=model, config=weights.config, sha256=weights.sha256, openvino=package
        )


def openvino_package(
    path: Path, attachments: Mapping[str, memoryview], precision: Precision
) -> OpenVINOPackage | None:
    """The OpenVINO package of ``precision`` that travels with the weights ``path`` holds,
    if any: one of the envelope's ``attachments`` (``ModelWeights.attachments``), or the
    file beside the weights.

    Raises:
        CheckpointError: it does not parse (``OpenVINOPackage.from_bytes``).
    """
    attached = attachments.get(attachment_name(precision))
    if attached is not None:
        return OpenVINOPackage.from_bytes(attached)
    beside = path / package_file_name(precision) if path.is_dir() else None
    if beside is None or not beside.is_file():
        return None
    return _read_package(beside)


def _package_only(
    path: Path, key: bytes | str | None, expected_sha256: str | None, precision: Precision
) -> LoadedModel | None:
    """The config and the OpenVINO package of ``precision`` that ``path`` holds, without the
    network; None when it holds no such package (a Fernet token never does)."""
    if not path.is_file():
        beside = path / package_file_name(precision)
        if not beside.is_file():
            return None
        config = read_config(path)
        digest, _ = file_sha256(find_weights(path))
        check_pin(digest, expected_sha256)
        return LoadedModel(model=None, config=config, sha256=digest, openvino=_read_package(beside))
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    from m2fp.protection.envelope_chunks import decrypted_sections
    from m2fp.protection.envelope_header import is_envelope, open_envelope

    if not is_envelope(sniff(path)):
        return None
    name = attachment_name(precision)
    with open_envelope(path) as (_, header):
        if name not in {section[0] for section in header.sections()}:
            return None
    # every chunk authenticated and every section hashed; only the package's bytes are kept,
    # and handed over to the package, which views its graphs in them (no copy)
    with decrypted_sections(
        path, parse_key(key), keep={name: None}, expected_sha256=expected_sha256, hand_over={name}
    ) as (header, kept):
        validate_config(header.config)
        package = OpenVINOPackage.from_bytes(kept[name], owned=True)
        return LoadedModel(
            model=None, config=header.config, sha256=header.plaintext_sha256, openvino=package
        )


def _read_package(file: Path) -> OpenVINOPackage:
    try:
        data = read_owned(file)
    except OSError as exc:
        raise CheckpointError(f"{file.name} could not be read: {exc.strerror or exc}") from None
    return OpenVINOPackage.from_bytes(data, owned=True)
