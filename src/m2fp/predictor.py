"""HumanParser: image in, ParsingResult out. Stateless per call, safe to share between threads.

It runs either of ModelScope's M2FP models, the task read from the model's config
(``m2fp.task``): the multi-person model (resize, instances, persons) or the single-person
model (centred fixed-size input, semantic map), each optionally with flip test-time
augmentation (``m2fp.processing.flip``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from m2fp.build import DEFAULT_INS_SCORE_THR, single_person_input_size
from m2fp.errors import ImageError
from m2fp.imaging import decode_image, prepare_image
from m2fp.labels import LabelSet, label_set_of
from m2fp.loader import load_model
from m2fp.modeling.m2fp import M2FP
from m2fp.parser_options import ParserOptions
from m2fp.precision import compute, prepare_model
from m2fp.processing.centre_pad import centre_pad
from m2fp.processing.flip import AveragedRows, MirroredRows, merge_passes, mirror_image
from m2fp.processing.postprocess import PassOutput, measure_pass
from m2fp.processing.preprocess import resize, to_input_tensor
from m2fp.processing.semantic import SemanticMap, label_semantics, semantic_probabilities
from m2fp.result import ParsingResult, assemble
from m2fp.single_person_result import assemble_semantic
from m2fp.task import Task, task_of

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image
DEFAULT_OPTIONS = ParserOptions()


class HumanParser:
    """Human parsing with an M2FP network, multi-person or single-person.

    Args:
        model: the network (eval mode, ModelScope key names); prepared for
            ``options.precision`` in place.
        class_names: class names, index = label id; the multi-person model's end with
            "Human".
        ins_score_thr: instance score needed to paint the label map (multi-person).
        options: input sizes, pixel bound, precision and flip (see ``ParserOptions``).
        single_person_size: (width, height) of the single-person model's fixed input; None
            (the default) for the multi-person model. ``options.min_size``/``max_size`` only
            apply to the multi-person model.

    The library never trims the process heap: a process that wants its idle RSS back after a
    parse calls ``m2fp.memory.release_free_memory`` itself (the CLI and the server do).
    """

    def __init__(
        self,
        *,
        model: M2FP,
        class_names: tuple[str, ...],
        ins_score_thr: float = DEFAULT_INS_SCORE_THR,
        options: ParserOptions = DEFAULT_OPTIONS,
        single_person_size: tuple[int, int] | None = None,
    ) -> None:
        if len(class_names) != model.num_classes:
            raise ValueError("class_names does not match the network's classes")
        self.options = options
        self.model = prepare_model(model, options.precision)
        self.class_names = tuple(class_names)
        self.label_set: LabelSet = label_set_of(self.class_names)
        self.task = Task.MULTI_PERSON if single_person_size is None else Task.SINGLE_PERSON
        self.single_person_size = single_person_size
        self.num_parsing = len(self.label_set.names)
        self.ins_score_thr = ins_score_thr
        # per class, its left/right counterpart; "Human" (multi-person) stays itself
        self.mirrored = (*self.label_set.mirrored(), *range(self.num_parsing, len(class_names)))

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        options: ParserOptions = DEFAULT_OPTIONS,
        key: bytes | str | None = None,
        expected_sha256: str | None = None,
    ) -> HumanParser:
        """Load a ModelScope model directory (``configuration.json`` plus weights), or an
        encrypted ``.m2fp`` / Fernet-wrapped weights file opened in memory with ``key``
        (see ``m2fp.loader.open_model``)."""
        loaded = load_model(Path(path), key=key, expected_sha256=expected_sha256)
        return cls.from_config(loaded.model, loaded.config, options=options)

    @classmethod
    def from_config(
        cls, model: M2FP, config: dict[str, Any], *, options: ParserOptions = DEFAULT_OPTIONS
    ) -> HumanParser:
        """Wrap a loaded network using the ``model`` section it was built from (validated:
        ``build.validate_config``)."""
        single = task_of(config) is Task.SINGLE_PERSON
        return cls(
            model=model,
            class_names=tuple(config["classes"]),
            ins_score_thr=float(config.get("parsing_ins_score_thr", DEFAULT_INS_SCORE_THR)),
            options=options,
            single_person_size=single_person_input_size(config) if single else None,
        )

    def load_image(self, image: ImageInput) -> Image.Image:
        """Any accepted input as an upright RGB PIL image.

        Raises:
            ImageError: unreadable, unsupported or too large.
        """
        if isinstance(image, Image.Image):
            return prepare_image(image)
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ImageError("unsupported_format", "arrays must be HxWx3 uint8 RGB")
            return Image.fromarray(np.ascontiguousarray(image), mode="RGB")
        if isinstance(image, bytes):
            return decode_image(image, max_pixels=self.options.max_pixels)
        try:
            data = Path(image).read_bytes()
        except OSError as exc:
            raise ImageError("unreadable", "the image file could not be read") from exc
        return decode_image(data, max_pixels=self.options.max_pixels)

    def __call__(self, image: ImageInput) -> ParsingResult:
        """Parse one image. See ``ParsingResult``."""
        return self.parse_upright(self.load_image(image))

    def parse_upright(self, picture: Image.Image) -> ParsingResult:
        """Parse an image that is already upright RGB without metadata, as
        ``m2fp.imaging.decode_image`` returns it: no second normalising pass.

        Raises:
            ValueError: ``picture`` is not an RGB image.
        """
        if picture.mode != "RGB":
            raise ValueError("parse_upright needs an RGB image; call the parser instead")
        if self.task is Task.SINGLE_PERSON:
            return self._parse_single_person(picture)
        if self.options.flip:
            return self._parse_flipped(picture)
        resized, batch = self.preprocess(picture)
        class_logits, mask_logits = self.forward(batch)
        return self.postprocess(class_logits, mask_logits, picture, resized, batch)

    def preprocess(self, picture: Image.Image) -> tuple[Image.Image, torch.Tensor]:
        """Multi-person model: the resized picture and the normalised, padded 1x3xHpxWp
        network input."""
        resized = resize(picture, self.options.min_size, self.options.max_size)
        return resized, self._input_tensor(resized)

    def _input_tensor(self, image: Image.Image) -> torch.Tensor:
        return to_input_tensor(
            image, self.model.pixel_mean, self.model.pixel_std, self.model.size_divisibility
        )

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Network outputs in float32: class logits 1xQx(K+1), mask logits 1xQxHp/4xWp/4."""
        with compute(self.options.precision):
            # channels-last like the conv weights (see m2fp.precision.prepare_model)
            class_logits, mask_logits = self.model(
                batch.contiguous(memory_format=torch.channels_last)
            )
        return class_logits.float(), mask_logits.float()

    def postprocess(
        self,
        class_logits: torch.Tensor,
        mask_logits: torch.Tensor,
        picture: Image.Image,
        resized: Image.Image,
        batch: torch.Tensor,
    ) -> ParsingResult:
        """Multi-person model: instances, persons and label map at the size of ``picture``."""
        with torch.inference_mode():
            parsed = self._measure(class_logits, mask_logits, picture, resized, batch).parsed()
        return assemble(parsed, picture, self.class_names)

    def _measure(
        self,
        class_logits: torch.Tensor,
        mask_logits: torch.Tensor,
        picture: Image.Image,
        resized: Image.Image,
        batch: torch.Tensor,
    ) -> PassOutput:
        return measure_pass(
            class_logits[0],
            mask_logits[0],
            padded_size=(int(batch.shape[-2]), int(batch.shape[-1])),
            input_size=(resized.height, resized.width),
            output_size=(picture.height, picture.width),
            num_parsing=self.num_parsing,
            ins_score_thr=self.ins_score_thr,
        )

    def _multi_person_pass(self, picture: Image.Image) -> PassOutput:
        resized, batch = self.preprocess(picture)
        class_logits, mask_logits = self.forward(batch)
        with torch.inference_mode():
            return self._measure(class_logits, mask_logits, picture, resized, batch)

    def _parse_flipped(self, picture: Image.Image) -> ParsingResult:
        """Multi-person model with flip test-time augmentation."""
        direct = self._multi_person_pass(picture)
        mirrored = self._multi_person_pass(mirror_image(picture))
        with torch.inference_mode():
            parsed = merge_passes(
                direct,
                mirrored,
                mirror=self.mirrored,
                num_parsing=self.num_parsing,
                output_size=(picture.height, picture.width),
            )
        return assemble(parsed, picture, self.class_names)

    def _single_person_pass(self, picture: Image.Image) -> SemanticMap:
        """The single-person model's semantic map of ``picture``, at crop size."""
        assert self.single_person_size is not None
        centred = centre_pad(picture, *self.single_person_size)
        batch = self._input_tensor(centred.image)
        class_logits, mask_logits = self.forward(batch)
        with torch.inference_mode():
            probabilities = semantic_probabilities(
                class_logits[0], mask_logits[0], (int(batch.shape[-2]), int(batch.shape[-1]))
            )
        return SemanticMap(
            probabilities,
            input_size=(centred.image.height, centred.image.width),
            crop_box=centred.crop_box,
            output_size=(picture.height, picture.width),
        )

    def _parse_single_person(self, picture: Image.Image) -> ParsingResult:
        rows = self._single_person_pass(picture)
        if self.options.flip:
            mirrored = self._single_person_pass(mirror_image(picture))
            rows = AveragedRows(rows, MirroredRows(mirrored, self.label_set.mirrored()))
        with torch.inference_mode():
            labels = label_semantics(rows)
        return assemble_semantic(labels, picture, self.class_names)
