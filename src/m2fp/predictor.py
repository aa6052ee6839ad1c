"""HumanParser: image in, ParsingResult out. Stateless per call, safe to share between threads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from m2fp.checkpoint import load_model
from m2fp.errors import ImageError
from m2fp.imaging import DEFAULT_MAX_PIXELS, decode_image, prepare_image
from m2fp.modeling.m2fp import M2FP
from m2fp.processing.postprocess import parse_outputs
from m2fp.processing.preprocess import resize, to_input_tensor
from m2fp.result import ParsingResult, assemble

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image


class HumanParser:
    """Multi-person human parsing with an M2FP network.

    Args:
        model: the network (eval mode, ModelScope key names).
        class_names: class names, index = label id, "Human" last.
        ins_score_thr: instance score needed to paint the label map.
        min_size: short side of the network input.
        max_size: upper bound of the network input's long side.
        max_pixels: images declaring more pixels are refused before decoding.
    """

    def __init__(
        self,
        *,
        model: M2FP,
        class_names: tuple[str, ...],
        ins_score_thr: float,
        min_size: int = 640,
        max_size: int = 1333,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if min_size <= 0 or max_size < min_size:
            raise ValueError("need 0 < min_size <= max_size")
        if len(class_names) != model.num_classes:
            raise ValueError("class_names does not match the network's classes")
        self.model = model.eval()
        self.class_names = tuple(class_names)
        self.num_parsing = len(class_names) - 1
        self.ins_score_thr = ins_score_thr
        self.min_size = min_size
        self.max_size = max_size
        self.max_pixels = max_pixels

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        min_size: int = 640,
        max_size: int = 1333,
        expected_sha256: str | None = None,
        key: bytes | str | None = None,
    ) -> HumanParser:
        """Load a ModelScope model directory (``configuration.json`` plus weights), or an
        encrypted ``.m2fp`` / Fernet-wrapped weights file opened in memory with ``key``."""
        model, config, _ = load_model(Path(path), key=key, expected_sha256=expected_sha256)
        return cls.from_config(model, config, min_size=min_size, max_size=max_size)

    @classmethod
    def from_config(
        cls, model: M2FP, config: dict[str, Any], *, min_size: int = 640, max_size: int = 1333
    ) -> HumanParser:
        """Wrap a loaded network using the ``model`` section it was built from."""
        return cls(
            model=model,
            class_names=tuple(config["classes"]),
            ins_score_thr=float(config.get("parsing_ins_score_thr", 0.5)),
            min_size=min_size,
            max_size=max_size,
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
            return decode_image(image, max_pixels=self.max_pixels)
        try:
            data = Path(image).read_bytes()
        except OSError as exc:
            raise ImageError("unreadable", "the image file could not be read") from exc
        return decode_image(data, max_pixels=self.max_pixels)

    def __call__(self, image: ImageInput) -> ParsingResult:
        """Parse one image. See ``ParsingResult``."""
        picture = self.load_image(image)
        resized = resize(picture, self.min_size, self.max_size)
        batch = to_input_tensor(
            resized, self.model.pixel_mean, self.model.pixel_std, self.model.size_divisibility
        )
        with torch.inference_mode():
            class_logits, mask_logits = self.model(batch)
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
