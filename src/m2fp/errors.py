"""Exceptions that carry a message safe to show a user: no paths of theirs, no data."""

from __future__ import annotations


class M2FPError(Exception):
    """Base class: ``str(error)`` is one clear line."""


class ModelConfigError(M2FPError):
    """The model configuration is missing, malformed or unsupported."""


class CheckpointError(M2FPError):
    """Weights are missing, unreadable, tampered with, or do not fit the network."""


class ModelNotFoundError(CheckpointError):
    """No weights where they were expected."""


class ModelKeyError(CheckpointError):
    """The model key is missing, malformed, stored unsafely, or does not open the file.

    Messages never contain the key or any part of it.
    """


class IntegrityError(CheckpointError):
    """A protected weights file was truncated, extended, modified or fails its pinned hash."""


class ImageError(M2FPError):
    """An input image was refused.

    Attributes:
        kind: a short machine-readable reason (``unsupported_format``, ``too_large`` ...).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PrecisionUnsupportedError(M2FPError, ValueError):
    """The requested precision cannot run (fast) on this device."""


class DeviceUnavailableError(M2FPError, ValueError):
    """The device asked for (``cuda``, ``cuda:N``, ``mps``) does not exist on this machine."""


class DeviceMemoryError(M2FPError):
    """The device ran out of memory for a single image (a batch is split and retried first)."""


class MissingExtraError(M2FPError, ImportError):
    """An optional package a feature needs is not installed (the message names the extra)."""


TORCH_MISSING = (
    "this needs PyTorch, which the slim runtime (m2fp[runtime]) leaves out: "
    "pip install 'm2fp[torch]'"
)


def missing_torch(exc: ImportError) -> MissingExtraError | None:
    """``exc`` as the ``MissingExtraError`` naming ``m2fp[torch]`` when what failed to import
    is torch (or a torch submodule); None for anything else."""
    name = exc.name or ""
    if isinstance(exc, ModuleNotFoundError) and (name == "torch" or name.startswith("torch.")):
        return MissingExtraError(TORCH_MISSING)
    return None
