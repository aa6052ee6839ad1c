"""Which task a model does, decided from its config in this one place.

ModelScope publishes two M2FP checkpoints. The multi-person model
(``damo/cv_resnet101_image-multiple-human-parsing``, CIHP) finds person and part instances
and paints the label map from them. The single-person model
(``damo/cv_resnet101_image-single-human-parsing``, LIP) assumes one person, centred in a fixed
input (``input_single_human``), and labels every pixel from the semantic map. Standard library
only, so the CLI and the server settings can name the tasks without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from m2fp.errors import ModelConfigError


class Task(str, Enum):
    """What a parse computes; the value is how the CLI, the JSON and the API name it."""

    MULTI_PERSON = "multi-person"
    SINGLE_PERSON = "single-person"


def task_of(config: Mapping[str, Any]) -> Task:
    """The task of a ModelScope ``model`` config section.

    ``single_human`` decides; ModelScope's ``M2FP`` constructor defaults it to true, so a
    config without it is a single-person model (``build.validate_config`` then checks the rest
    fits). Anything but a boolean is refused.

    Raises:
        ModelConfigError: ``single_human`` is present but not a boolean.
    """
    single = config.get("single_human", True)
    if not isinstance(single, bool):
        raise ModelConfigError("model config: 'single_human' must be true or false")
    return Task.SINGLE_PERSON if single else Task.MULTI_PERSON
