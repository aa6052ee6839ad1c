"""Images parsed ``batch_size`` at a time, in order, for the commands that parse many: each
image is read and decoded alone (a bad one is its own error, the others go on), the good ones
go to ``HumanParser.parse_upright_batch`` together."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from PIL import Image

from m2fp.errors import M2FPError
from m2fp.predictor import HumanParser, ImageInput
from m2fp.result import ParsingResult

Item = TypeVar("Item")


def parse_in_batches(
    parser: HumanParser, items: Iterable[tuple[Item, ImageInput]]
) -> Iterator[tuple[Item, ParsingResult | M2FPError]]:
    """Each item with its result, or the error that refused its image, in input order.

    Args:
        parser: parses ``parser.batch_size`` images per call.
        items: (what the caller reports the image as, the image), read lazily.
    """
    pending = iter(items)
    while window := list(islice(pending, parser.batch_size)):
        pictures: list[Image.Image] = []
        outcomes: list[M2FPError | None] = []
        for _, image in window:
            try:
                pictures.append(parser.load_image(image))
                outcomes.append(None)
            except M2FPError as exc:
                outcomes.append(exc)
        results = iter(parser.parse_upright_batch(pictures))
        for (item, _), error in zip(window, outcomes, strict=True):
            yield item, error if error is not None else next(results)
