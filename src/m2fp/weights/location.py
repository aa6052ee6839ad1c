"""The models on the ModelScope hub, and where a model is looked for when the user does not
say. Standard library only: the CLI resolves paths before it imports torch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HubModel:
    """One of ModelScope's M2FP checkpoints.

    Attributes:
        model_id: the hub's id.
        revision: the revision downloaded by default.
    """

    model_id: str
    revision: str

    @property
    def dir_name(self) -> str:
        """Its directory under the cache: the id without the owner."""
        return self.model_id.rpartition("/")[2]


# ``m2fp model download --model NAME``; multi first: it is the default everywhere
HUB_MODELS: dict[str, HubModel] = {
    "multi": HubModel("damo/cv_resnet101_image-multiple-human-parsing", "v1.0.1"),
    # no tagged revision of the single-person model is known here: its main branch
    "single": HubModel("damo/cv_resnet101_image-single-human-parsing", "master"),
}
DEFAULT_HUB_MODEL = "multi"
HOW_TO_GET = (
    "no M2FP weights found: run 'm2fp model download' (or pass --model DIR / set M2FP_MODEL)"
)


def default_model_dir(name: str = DEFAULT_HUB_MODEL) -> Path:
    """``$M2FP_HOME/<model>`` or ``~/.cache/m2fp/<model>`` for a ``HUB_MODELS`` name."""
    home = os.environ.get("M2FP_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "m2fp"
    return base / HUB_MODELS[name].dir_name


def resolve_model_path(explicit: str | os.PathLike | None) -> Path | None:
    """The first of: the explicit path, ``$M2FP_MODEL``, the first downloaded model in the
    cache (the multi-person one, else the single-person one)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("M2FP_MODEL")
    if env:
        return Path(env)
    for name in HUB_MODELS:
        default = default_model_dir(name)
        if default.exists():
            return default
    return None
