"""Images parsed ``batch_size`` at a time, in order, for whatever parses many (``m2fp parse``,
the Ray batch job of ``m2fp.batch``): each
image is read and decoded alone (a bad one is its own error, the others go on), the good ones
go to ``HumanParser.parse_upright_each`` together (a photo the device has no memory for is
its own error too).

A batch only ever holds photos of one network input size (``HumanParser.parse_batch``), so
results are those of parsing each photo alone."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from PIL import Image

from m2fp.errors import M2FPError
from m2fp.predictor import HumanParser
from m2fp.results.parsing_result import ParsingResult

Item = TypeVar("Item")


def parse_in_batches(
    parser: HumanParser,
    items: Iterable[Item],
    load: Callable[[Item], Image.Image],
    *,
    batch_size: int | None = None,
) -> Iterator[tuple[Item, ParsingResult | M2FPError]]:
    """Each item with its result, or the error that refused its image (unreadable, or too
    large for the device's memory even alone), in input order.

    Args:
        parser: parses the batches.
        items: what to parse, read lazily (``batch_size`` ahead).
        load: an item's upright RGB image; raises ``M2FPError`` for a bad one.
        batch_size: items per batch (default ``parser.batch_size``); 1 for a source that
            should not wait for more items (a watched folder).
    """
    pending = iter(items)
    while window := list(islice(pending, batch_size or parser.batch_size)):
        pictures: list[Image.Image] = []
        outcomes: list[M2FPError | None] = []
        for item in window:
            try:
                pictures.append(load(item))
                outcomes.append(None)
            except M2FPError as exc:
                outcomes.append(exc)
        results = iter(parser.parse_upright_each(pictures) if pictures else ())
        for item, error in zip(window, outcomes, strict=True):
            yield item, error if error is not None else next(results)
