"""HumanParser: image in, ParsingResult out. Stateless per call, safe to share between threads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from m2fp.build import DEFAULT_INS_SCORE_THR
from m2fp.errors import ImageError
from m2fp.imaging import decode_image, prepare_image
from m2fp.loader import load_model
from m2fp.modeling.m2fp import M2FP
from m2fp.parser_options import ParserOptions
from m2fp.precision import compute, prepare_model
from m2fp.processing.postprocess import parse_outputs
from m2fp.processing.preprocess import resize, to_input_tensor
from m2fp.result import ParsingResult, assemble

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image
DEFAULT_OPTIONS = ParserOptions()


class HumanParser:
    """Multi-person human parsing with an M2FP network.

    Args:
        model: the network (eval mode, ModelScope key names); prepared for
            ``options.precision`` in place.
        class_names: class names, index = label id, "Human" last.
        ins_score_thr: instance score needed to paint the label map.
        options: input sizes, pixel bound and precision (see ``ParserOptions``).

    The library never trims the process heap: a process that wants its idle RSS back after a
    parse calls ``m2fp.memory.release_free_memory`` itself (the CLI and the server do).
    """

    def __init__(
        self,
        *,
        model: M2FP,
        class_names: tuple[str, ...],
        ins_score_thr: float,
        options: ParserOptions = DEFAULT_OPTIONS,
    ) -> None:
        if len(class_names) != model.num_classes:
            raise ValueError("class_names does not match the network's classes")
        self.options = options
        self.model = prepare_model(model, options.precision)
        self.class_names = tuple(class_names)
        self.num_parsing = len(class_names) - 1
        self.ins_score_thr = ins_score_thr

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
        """Wrap a loaded network using the ``model`` section it was built from."""
        return cls(
            model=model,
            class_names=tuple(config["classes"]),
            ins_score_thr=float(config.get("parsing_ins_score_thr", DEFAULT_INS_SCORE_THR)),
            options=options,
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
        resized, batch = self.preprocess(picture)
        class_logits, mask_logits = self.forward(batch)
        return self.postprocess(class_logits, mask_logits, picture, resized, batch)

    def preprocess(self, picture: Image.Image) -> tuple[Image.Image, torch.Tensor]:
        """The resized picture and the normalised, padded 1x3xHpxWp network input."""
        resized = resize(picture, self.options.min_size, self.options.max_size)
        batch = to_input_tensor(
            resized, self.model.pixel_mean, self.model.pixel_std, self.model.size_divisibility
        )
        return resized, batch

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
        """Instances, persons and label map at the size of ``picture``."""
        with torch.inference_mode():
            parsed = parse_outputs(
                class_logits[0],
                mask_logits[0],
                padded_size=(int(batch.shape[-2]), int(batch.shape[-1])),
                input_size=(resized.height, resized.width),
                output_size=(picture.height, picture.width),
                num_parsing=self.num_parsing,
                ins_score_thr=self.ins_score_thr,
            )
        return assemble(parsed, picture, self.class_names)
