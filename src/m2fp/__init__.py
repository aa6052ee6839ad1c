"""m2fp: multi-person human parsing with M2FP in pure PyTorch."""

from m2fp.build import build_model
from m2fp.predictor import HumanParser
from m2fp.result import ParsingResult, Part, Person

__version__ = "0.1.0"

__all__ = ["HumanParser", "ParsingResult", "Part", "Person", "__version__", "build_model"]
