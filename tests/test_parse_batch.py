"""HumanParser.parse_batch and the compute choices: a batch gives each photo the result it
gets alone (only same-size inputs share a batch, nothing is padded further); the parser says
where and how it computes; an impossible choice is refused before the model loads."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
import torch
from PIL import Image

from m2fp import HumanParser
from m2fp.compute.options import ComputeChoiceError
from m2fp.compute.parser_options import ParserOptionError
from m2fp.errors import DeviceMemoryError, DeviceUnavailableError, ImageError
from tests.conftest import golden_options
from tests.utils.same_parse import assert_same_parse


@pytest.fixture(scope="module")
def batch_parser(visible_model_dir):
    """The visible model (its label maps show several classes, so agreeing means something)."""
    options = replace(golden_options(), device="cpu", batch_size=4)
    return HumanParser.from_pretrained(visible_model_dir, options=options)


def photos(golden_image_path) -> list[Image.Image]:
    golden = Image.open(golden_image_path).convert("RGB")
    return [
        golden,
        golden.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        golden.resize((120, 160)),  # another input size: its own batch
        golden.rotate(180),
        golden.resize((64, 48)),
    ]


def test_batch_equals_one_at_a_time(batch_parser, visible_parser, golden_image_path, monkeypatch):
    images = photos(golden_image_path)
    alone = [visible_parser(image) for image in images]
    calls = []
    network = batch_parser._network
    monkeypatch.setattr(
        batch_parser, "_network", lambda batch: calls.append(batch.shape[0]) or network(batch)
    )
    batched = batch_parser.parse_batch(images)
    for result, reference in zip(batched, alone, strict=True):
        assert_same_parse(result, reference)  # a batch: other GEMM blockings
    # three same-size photos shared a batch; each other size ran alone, with no extra padding
    assert sorted(calls) == [1, 1, 3]


def test_a_bad_image_refuses_the_whole_call(batch_parser, golden_image_path):
    with pytest.raises(ImageError):
        batch_parser.parse_batch([golden_image_path, b"not an image"])
    assert batch_parser.parse_batch([]) == []


def test_describe_compute(batch_parser, tiny_parser):
    compute = batch_parser.describe_compute()
    assert compute.pop("threads") >= 1 and compute.pop("threads_source")
    assert compute.pop("cpu_affinity") >= 1 and "cpu_quota" in compute
    compute.pop("cpu_quota")
    assert compute == {
        "device": "cpu",
        "engine": "torch",
        "precision": "fp32",
        "accuracy": "exact",
        "batch_size": 4,
    }
    assert tiny_parser.describe_compute()["batch_size"] == 1  # the CPU's default


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_refused_before_loading(tiny_model_dir):
    with pytest.raises(DeviceUnavailableError, match="device cuda was asked for"):
        HumanParser.from_pretrained(
            tiny_model_dir, options=replace(golden_options(), device="cuda")
        )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"precision": "int8"}, "engine openvino only"),
        ({"engine": "openvino", "device": "cuda"}, "runs on the CPU"),
        ({"device": "cpu", "precision": "fp16"}, "needs a CUDA device"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_impossible_options(values, message):
    # compute choices are ComputeChoiceError, a batch size out of range is a ParserOptionError
    with pytest.raises((ComputeChoiceError, ParserOptionError), match=message):
        replace(golden_options(), **values)


class ScarceMemory:
    """An engine on a device with little memory: more than two inputs in one call, or any
    input of ``huge`` padded size, raise PyTorch's out-of-memory error."""

    def __init__(self, engine, huge: tuple[int, int]) -> None:
        self.engine = engine
        self.huge = huge
        self.calls: list[int] = []

    def __call__(self, images: torch.Tensor):
        self.calls.append(images.shape[0])
        if images.shape[0] > 2 or tuple(images.shape[-2:]) == self.huge:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return self.engine(images)


def scarce_memory_parser(batch_parser, monkeypatch, huge_photo) -> ScarceMemory:
    scarce = ScarceMemory(batch_parser.engine, batch_parser._passes(huge_photo)[0].padded_size)
    monkeypatch.setattr(batch_parser, "engine", scarce)
    return scarce


def test_out_of_memory_loses_only_the_photo_that_does_not_fit(
    batch_parser, visible_parser, golden_image_path, monkeypatch
):
    images = photos(golden_image_path)
    huge = images[2]
    scarce = scarce_memory_parser(batch_parser, monkeypatch, huge)
    handling: list[object] = []
    monkeypatch.setattr(
        batch_parser, "release_device_memory", lambda: handling.append(sys.exc_info()[0])
    )
    outcomes = batch_parser.parse_upright_each(images)
    assert isinstance(outcomes[2], DeviceMemoryError)
    assert "ran out of memory" in str(outcomes[2])
    assert outcomes[2].__traceback__ is None  # its frames (and their tensors) are not kept
    for index in (0, 1, 3, 4):  # the other three of its window of 4, and the next window
        assert_same_parse(outcomes[index], visible_parser(images[index]))
    # the three same-size photos were split to fit (3 -> 1 + 2) before the window's retry
    assert scarce.calls[:3] == [3, 1, 2]
    # memory was handed back after each failure, outside the except block (whose traceback
    # still held the failed forward's activations)
    assert handling and set(handling) == {None}


def test_out_of_memory_for_one_photo_is_raised_by_parse_batch(
    batch_parser, golden_image_path, monkeypatch
):
    images = photos(golden_image_path)
    scarce_memory_parser(batch_parser, monkeypatch, images[2])
    with pytest.raises(DeviceMemoryError, match="lower max_size"):
        batch_parser.parse_upright_batch(images)
    assert len(batch_parser.parse_upright_batch([images[0], images[1]])) == 2
