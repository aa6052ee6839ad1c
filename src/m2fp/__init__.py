"""m2fp: human parsing (multi- and single-person) with M2FP in pure PyTorch.

The public names are imported on first use (PEP 562), so ``import m2fp.cli`` (and with it
``m2fp --help``) does not pay for torch; ``HumanParser`` itself imports no torch (it runs
OpenVINO packages on the slim runtime), ``build_model`` does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from m2fp.errors import missing_torch

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "HumanParser": "m2fp.predictor",
    "ParserOptions": "m2fp.compute.parser_options",
    "ParsingResult": "m2fp.results.parsing_result",
    "Part": "m2fp.results.parsing_result",
    "Person": "m2fp.results.parsing_result",
    "SinglePersonResult": "m2fp.results.single_person",
    "Task": "m2fp.task",
    "build_model": "m2fp.build",
}

__all__ = [
    "HumanParser",
    "ParserOptions",
    "ParsingResult",
    "Part",
    "Person",
    "SinglePersonResult",
    "Task",
    "__version__",
    "build_model",
]

if TYPE_CHECKING:
    from m2fp.build import build_model
    from m2fp.compute.parser_options import ParserOptions
    from m2fp.predictor import HumanParser
    from m2fp.results.parsing_result import ParsingResult, Part, Person
    from m2fp.results.single_person import SinglePersonResult
    from m2fp.task import Task


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'm2fp' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        missing = missing_torch(exc)
        if missing is None:
            raise
        raise missing from exc
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
