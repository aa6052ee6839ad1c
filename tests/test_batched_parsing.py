"""``parse_in_batches``: a photo that cannot be parsed (unreadable, or too large for the
device's memory even alone) is its own error; the other photos of its batch go on."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image

from m2fp import HumanParser
from m2fp.batched_parsing import parse_in_batches
from m2fp.errors import DeviceMemoryError, ImageError
from tests.conftest import golden_options
from tests.utils.same_parse import assert_same_parse


@pytest.fixture(scope="module")
def batch_parser(visible_model_dir):
    """The visible model (its label maps show several classes, so agreeing means something)."""
    options = replace(golden_options(), device="cpu", batch_size=4)
    return HumanParser.from_pretrained(visible_model_dir, options=options)


def test_an_out_of_memory_photo_fails_alone(
    batch_parser, visible_parser, golden_image_path, monkeypatch
):
    golden = Image.open(golden_image_path).convert("RGB")
    pictures = {
        "a.png": golden,
        "huge.png": golden.resize((120, 160)),
        "b.png": golden.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "bad.png": None,
        "c.png": golden.rotate(180),
    }
    huge = batch_parser._passes(pictures["huge.png"])[0].padded_size
    engine = batch_parser.engine

    def scarce(images):
        if tuple(images.shape[-2:]) == huge:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return engine(images)

    monkeypatch.setattr(batch_parser, "engine", scarce)

    def load(name):
        if pictures[name] is None:
            raise ImageError("corrupt", "the image is truncated or corrupt")
        return pictures[name]

    outcomes = dict(parse_in_batches(batch_parser, list(pictures), load))
    assert list(outcomes) == list(pictures)  # every item answered, in order
    assert isinstance(outcomes["huge.png"], DeviceMemoryError)
    assert isinstance(outcomes["bad.png"], ImageError)
    for name in ("a.png", "b.png", "c.png"):
        assert_same_parse(outcomes[name], visible_parser(pictures[name]))
