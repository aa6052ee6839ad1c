"""Where the model is looked for when the user does not say."""

from __future__ import annotations

import os
from pathlib import Path

MODEL_ID = "damo/cv_resnet101_image-multiple-human-parsing"
MODEL_DIR_NAME = "cv_resnet101_image-multiple-human-parsing"
HOW_TO_GET = (
    "no M2FP weights found: run 'm2fp model download' (or pass --model DIR / set M2FP_MODEL)"
)


def default_model_dir() -> Path:
    """``$M2FP_HOME/<model>`` or ``~/.cache/m2fp/<model>``."""
    home = os.environ.get("M2FP_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "m2fp"
    return base / MODEL_DIR_NAME


def resolve_model_path(explicit: str | os.PathLike | None) -> Path | None:
    """The first of: the explicit path, ``$M2FP_MODEL``, the default directory if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("M2FP_MODEL")
    if env:
        return Path(env)
    default = default_model_dir()
    return default if default.exists() else None
