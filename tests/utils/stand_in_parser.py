"""The base of the server tests' stand-ins for ``HumanParser``: the interface the app calls,
so that ``create_app`` treats a stand-in exactly as a loaded model and needs no special case.

A stand-in decides what parsing answers (a drawn result, a gate, an error); everything else
is HumanParser's own code on the CPU: ``describe_compute`` (queue sizing, ``/readyz``) and
``release_device_memory`` (after a parse when idle) are HumanParser's methods, run on a
parser that computes on the CPU in fp32 one image at a time.
"""

from __future__ import annotations

import torch
from PIL import Image

from m2fp import HumanParser, ParserOptions
from m2fp.compute.threads import plan_threads
from m2fp.labels import LabelSet
from m2fp.results.parsing_result import ParsingResult
from m2fp.task import Task


class StandInParser:
    """What the server calls on a ``HumanParser``; subclasses say what ``parse_upright`` does.

    Attributes:
        class_names, label_set, task: those of the model the stand-in pretends to be.
        releases: how often the server handed device memory back after a parse.
    """

    def __init__(
        self, *, class_names: tuple[str, ...], label_set: LabelSet, task: Task = Task.MULTI_PERSON
    ) -> None:
        self.class_names = class_names
        self.label_set = label_set
        self.task = task
        self.options = ParserOptions(device="cpu")
        # what HumanParser keeps of the options asked for (describe_compute reports both)
        self.requested_precision = self.options.precision
        self.device = torch.device("cpu")
        self.batch_size = 1
        # what the thread plan would be, without resizing the test process's torch pool
        self.threads = plan_threads(self.options.threads)
        self.releases = 0

    describe_compute = HumanParser.describe_compute

    def release_device_memory(self) -> None:
        self.releases += 1
        HumanParser.release_device_memory(self)  # type: ignore[arg-type]

    def parse_upright(self, image: Image.Image) -> ParsingResult:
        raise NotImplementedError("a stand-in says what parsing answers")


def standing_in_for(parser: HumanParser) -> dict[str, object]:
    """The ``StandInParser`` arguments that make a stand-in pretend to be ``parser``."""
    return {"class_names": parser.class_names, "label_set": parser.label_set, "task": parser.task}
