"""Where a command's model and its key come from: the flags, then the environment.

Standard library only (``m2fp.protection.keys`` needs no cipher), so resolving them costs
nothing before a command imports the network.
"""

from __future__ import annotations

from pathlib import Path

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.errors import ModelKeyError
from m2fp.protection.keys import MISSING_KEY, key_from_environment, read_key_file
from m2fp.weights.location import HOW_TO_GET, resolve_model_path


def model_path(explicit: str | None) -> Path:
    """``--model``, else ``$M2FP_MODEL``, else the cache directory; exit 2 if none exists.

    A path the user gave that does not exist is named as such (a typo is not "no weights
    found: download them"); only when nothing was given is the way to get weights told.
    """
    path = resolve_model_path(explicit)
    if path is None:
        raise CLIError(HOW_TO_GET, EXIT_USAGE)
    if not path.exists():
        given = "the model path" if explicit else "M2FP_MODEL's path"
        raise CLIError(f"{given} {path} does not exist", EXIT_USAGE)
    return path


def model_key(key_file: str | None) -> bytes | None:
    """The key from ``--key-file``, else from M2FP_MODEL_KEY_FILE / M2FP_MODEL_KEY."""
    if key_file:
        return read_key_file(Path(key_file))
    return key_from_environment()


def key_for(path: Path, key_file: str | None) -> bytes | None:
    """The key a model needs: none for a directory (so no key lookup, and none of its
    checks, runs for it), the resolved key for an encrypted file."""
    return model_key(key_file) if path.is_file() else None


def required_key(key_file: str | None) -> bytes:
    """``model_key``, which must exist."""
    key = model_key(key_file)
    if key is None:
        raise ModelKeyError(MISSING_KEY)
    return key
