"""A stand-in for HumanParser that answers every image with one drawn ParsingResult, so the
server's rendering of masks can be checked against pixels known by hand."""

from __future__ import annotations

from PIL import Image

from m2fp.results.parsing_result import ParsingResult
from tests.utils.stand_in_parser import StandInParser


class DrawnParser(StandInParser):
    """A model of ``result``'s classes whose every parse is ``result``.

    Attributes:
        calls: how many images it was asked to parse.
    """

    def __init__(self, result: ParsingResult) -> None:
        super().__init__(class_names=result.class_names, label_set=result.label_set)
        self.result = result
        self.calls = 0

    def parse_upright(self, picture: Image.Image) -> ParsingResult:
        self.calls += 1
        return self.result
