"""HumanParser: image in, ParsingResult out. Stateless per call, safe to share between threads.

It runs either of ModelScope's M2FP models, the task read from the model's config
(``m2fp.task``): the multi-person model (resize, instances, persons) or the single-person
model (centred fixed-size input, semantic map), each optionally with flip test-time
augmentation (``m2fp.processing.flip``), on the engine, device and precision its options
choose (``m2fp.engines.selection``).

Each photo becomes one network input (two with flip), a *pass*. ``parse_batch`` runs the
passes of several photos together, batched only among passes of exactly the same padded input
size: M2FP's attention sees the whole input, padding included, so padding a photo further to
share a batch would change its result. Photos of one size (a camera's photos, video frames)
batch fully; with flip a photo and its mirror image always share one batch.

Where each step runs: the PIL resize (the exact bilinear resize ModelScope's pipeline does),
normalisation and padding on the CPU in numpy (``to_input_array``, one implementation for every
engine); the network on the device; everything after it on the CPU in numpy
(``m2fp.processing``), the same code for every engine: only the logits cross to the host
(~15 MB of mask logits per photo), the multi-person instances are a sequence of small
data-dependent steps (top-k, one window per query, thresholds read back) each of which would
wait for a GPU, and the slim runtime without
PyTorch runs that same code on OpenVINO's outputs.

This module never imports torch itself: with ``engine="openvino"`` and a model that holds an
OpenVINO package, the parser is numpy end to end and runs where PyTorch is not installed
(``pip install "m2fp[runtime]"``); torch comes in only through what needs it (the torch engine,
CUDA or MPS devices, a checkpoint-only model), and a torch-less install asking for that gets
one ``MissingExtraError`` naming ``m2fp[torch]``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from m2fp.compute.device import (
    Device,
    HostDevice,
    default_batch_size,
    describe_device,
    release_device_memory,
    resolve_device,
)
from m2fp.compute.options import ACCURACY, CAVEAT, Engine, Precision, check_compute
from m2fp.compute.parser_options import ParserOptions
from m2fp.compute.precision import resolve_precision
from m2fp.compute.threads import apply_torch_threads, plan_threads
from m2fp.engines.network_input import SIZE_DIVISIBILITY
from m2fp.engines.openvino_package import OpenVINOPackage, package_precision
from m2fp.engines.selection import NetworkEngine, build_engine
from m2fp.errors import DeviceMemoryError, ImageError
from m2fp.imaging.decoder import decode_image, prepare_image
from m2fp.labels import LabelSet, label_set_of
from m2fp.model_config import (
    DEFAULT_INS_SCORE_THR,
    PIXEL_MEAN,
    PIXEL_STD,
    single_person_input_size,
)
from m2fp.processing.centre_pad import centre_pad
from m2fp.processing.flip import AveragedRows, MirroredRows, merge_passes, mirror_image
from m2fp.processing.postprocess import PassOutput, measure_pass
from m2fp.processing.preprocess import resize, to_input_array
from m2fp.processing.semantic import (
    SemanticMap,
    SemanticRows,
    label_semantics,
    semantic_probabilities,
)
from m2fp.results.parsing_result import ParsingResult, assemble
from m2fp.results.single_person import assemble_semantic
from m2fp.task import Task, task_of
from m2fp.weights.loader import load_model

if TYPE_CHECKING:
    from m2fp.modeling.m2fp import M2FP

ImageInput = str | os.PathLike | bytes | np.ndarray | Image.Image
DEFAULT_OPTIONS = ParserOptions()
logger = logging.getLogger(__name__)


def _package_precision(options: ParserOptions, device: Device) -> Precision | None:
    """The OpenVINO package ``options`` run from (None: the torch engine needs none)."""
    if options.engine is not Engine.OPENVINO:
        return None
    precision, _ = resolve_precision(options.precision, options.engine, device)
    return Precision(package_precision(precision))


@dataclass(frozen=True)
class _Pass:
    """One network input of one photo: the photo itself, or its mirror image.

    Attributes:
        images: 1x3xHpxWp float32, normalised and zero-padded (``to_input_array``).
        input_size: (h, w) of the image inside the padding.
        crop_box: single-person model: (x0, y0, x1, y1) of the photo in the centred input.
    """

    images: np.ndarray
    input_size: tuple[int, int]
    crop_box: tuple[int, int, int, int] | None = None

    @property
    def padded_size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])


class HumanParser:
    """Human parsing with an M2FP network, multi-person or single-person.

    Args:
        model: the network (eval mode, ModelScope key names, fp32 on the CPU); the engine
            takes it over: moved to the device and prepared for the precision in place.
            None: ``engine="openvino"`` from ``openvino_package`` alone, without torch (no
            fallback for input sizes the package does not cover).
        class_names: class names, index = label id; the multi-person model's end with
            "Human".
        ins_score_thr: instance score needed to paint the label map (multi-person).
        options: input sizes, pixel bound, device, engine, precision, batch size and flip
            (see ``ParserOptions``).
        single_person_size: (width, height) of the single-person model's fixed input; None
            (the default) for the multi-person model. ``options.min_size``/``max_size`` only
            apply to the multi-person model.
        openvino_package: the converted network for ``engine="openvino"``; converted at
            construction when None (minutes for R101, see ``m2fp.engines.selection``).
        weights_sha256: the weights' digest, checked against the package's.

    Raises:
        ComputeChoiceError: the options' device, engine and precision cannot go together on
            the device ``auto`` resolved to.
        DeviceUnavailableError: the device asked for is not on this machine.
        PrecisionUnsupportedError: the device cannot run the precision.
        CheckpointError: an OpenVINO package of another precision or other weights.
        MissingExtraError: a torch device (``engine="torch"``, cuda, mps) without torch.
        ValueError: no ``model`` for the torch engine or without ``openvino_package``.

    The library never trims the process heap: a process that wants its idle RSS back after a
    parse calls ``m2fp.compute.memory.release_free_memory`` itself (the CLI and the server do), and
    ``release_device_memory`` for the GPU's.
    """

    def __init__(
        self,
        *,
        model: M2FP | None,
        class_names: tuple[str, ...],
        ins_score_thr: float = DEFAULT_INS_SCORE_THR,
        options: ParserOptions = DEFAULT_OPTIONS,
        single_person_size: tuple[int, int] | None = None,
        openvino_package: OpenVINOPackage | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        if model is not None and len(class_names) != model.num_classes:
            raise ValueError("class_names does not match the network's classes")
        self.device = resolve_device(options.device, options.engine)
        check_compute(str(self.device), options.engine, options.precision)
        # "fast" becomes a precision here, once; options keep what was computed with
        self.requested_precision = options.precision
        precision, why = resolve_precision(options.precision, options.engine, self.device)
        if why is not None:
            logger.info(
                "precision fast: %s on this machine (%s); %s",
                precision.value,
                why,
                CAVEAT[precision],
            )
        options = dataclasses.replace(options, precision=precision)
        self.options = options
        # threads that fit the container (cgroup quota, affinity) unless options.threads
        self.threads = plan_threads(options.threads)
        if model is not None:  # torch's pool: the torch engine, or OpenVINO's fallback
            apply_torch_threads(self.threads)
        self.engine: NetworkEngine = build_engine(
            model,
            options=options,
            device=self.device,
            threads=self.threads,
            package=openvino_package,
            weights_sha256=weights_sha256,
            single_person_size=single_person_size,
        )
        self.model = model
        # caught by _network: the device had no memory for a batch (read once: a test may
        # wrap the engine)
        self._out_of_memory = self.engine.out_of_memory
        # what results were computed with (the batch job's Parquet rows record it)
        self.weights_sha256 = weights_sha256
        self.batch_size = options.batch_size or default_batch_size(self.device)
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
        (see ``m2fp.weights.loader.open_model``). For the OpenVINO engine the converted package of
        ``options.precision`` is taken from beside the weights or from inside the envelope
        when there is one (``m2fp model export --format openvino``); with one, the network
        is not built and torch not imported (``m2fp.weights.loader.load_model``).

        Raises:
            MissingExtraError: torch is needed (the torch engine, a GPU, a model without a
                package of the precision asked for) and not installed."""
        device = resolve_device(options.device, options.engine)
        loaded = load_model(
            Path(path),
            key=key,
            expected_sha256=expected_sha256,
            # the weights are copied from the file's buffer straight to the device
            device=None if isinstance(device, HostDevice) else device,
            openvino=_package_precision(options, device),
        )
        return cls.from_config(
            loaded.model,
            loaded.config,
            options=options,
            openvino_package=loaded.openvino,
            weights_sha256=loaded.sha256,
        )

    @classmethod
    def from_config(
        cls,
        model: M2FP | None,
        config: dict[str, Any],
        *,
        options: ParserOptions = DEFAULT_OPTIONS,
        openvino_package: OpenVINOPackage | None = None,
        weights_sha256: str | None = None,
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
            openvino_package=openvino_package,
            weights_sha256=weights_sha256,
        )

    def describe_compute(self) -> dict[str, Any]:
        """Where and how this parser computes, for logs and ``/readyz``: device (and GPU),
        engine, precision, whether that is exact or an approximation, batch size, threads
        (and what decided them)."""
        precision = self.options.precision
        requested = {}
        if self.requested_precision is not precision:
            requested["requested_precision"] = self.requested_precision.value
        return {
            **describe_device(self.device),
            "engine": self.options.engine.value,
            "precision": precision.value,
            **requested,
            "accuracy": ACCURACY[precision],
            **({"caveat": CAVEAT[precision]} if CAVEAT[precision] else {}),
            "batch_size": self.batch_size,
            **self.threads.describe(),
        }

    def release_device_memory(self) -> None:
        """Hand the GPU memory PyTorch caches for this parser's device back to the driver
        (nothing on the CPU). The next parse allocates it again, so call it when idle."""
        release_device_memory(self.device)

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
        except FileNotFoundError:
            # the caller's own path, in the caller's own process: naming it is no leak
            raise ImageError("not_found", f"{image}: the file does not exist") from None
        except OSError as exc:
            raise ImageError("unreadable", "the image file could not be read") from exc
        return decode_image(data, max_pixels=self.options.max_pixels)

    def __call__(self, image: ImageInput) -> ParsingResult:
        """Parse one image. See ``ParsingResult``."""
        return self.parse_upright(self.load_image(image))

    def parse_batch(self, images: Sequence[ImageInput]) -> list[ParsingResult]:
        """Parse several images, batching the network where their inputs have the same size
        (see the module docstring); the results are those of parsing each alone, up to
        float rounding.

        Raises:
            ImageError: an image is unreadable (nothing is parsed then; load them one by
                one with ``load_image`` to skip bad ones, then ``parse_upright_batch``).
        """
        return self.parse_upright_batch([self.load_image(image) for image in images])

    def parse_upright(self, picture: Image.Image) -> ParsingResult:
        """Parse an image that is already upright RGB without metadata, as
        ``m2fp.imaging.decoder.decode_image`` returns it: no second normalising pass.

        Raises:
            ValueError: ``picture`` is not an RGB image.
        """
        return self.parse_upright_batch([picture])[0]

    def parse_upright_batch(self, pictures: Sequence[Image.Image]) -> list[ParsingResult]:
        """``parse_upright`` for several images: ``batch_size`` photos at a time are prepared,
        their passes run in batches of equal input size, and post-processed.

        Raises:
            ValueError: a picture is not an RGB image.
            DeviceMemoryError: the device has no memory for one of the pictures even alone
                (``parse_upright_each`` parses the others and returns it in its place).
        """
        results = []
        for outcome in self.parse_upright_each(pictures):
            if isinstance(outcome, DeviceMemoryError):
                raise outcome
            results.append(outcome)
        return results

    def parse_upright_each(
        self, pictures: Sequence[Image.Image]
    ) -> list[ParsingResult | DeviceMemoryError]:
        """``parse_upright_batch``, with a picture the device has no memory for even alone
        returned as its ``DeviceMemoryError``, in its place: the window of ``batch_size``
        photos it was in is parsed again photo by photo, so the others still get results.

        Raises:
            ValueError: a picture is not an RGB image.
        """
        if any(picture.mode != "RGB" for picture in pictures):
            raise ValueError("parse_upright needs an RGB image; call the parser instead")
        outcomes: list[ParsingResult | DeviceMemoryError] = []
        for start in range(0, len(pictures), self.batch_size):
            window = pictures[start : start + self.batch_size]
            try:
                outcomes.extend(self._parse_window(window))
                continue
            except DeviceMemoryError as exc:
                if len(window) == 1:
                    outcomes.append(exc.with_traceback(None))  # its frames hold tensors
                    continue
            for picture in window:
                try:
                    outcomes.extend(self._parse_window([picture]))
                except DeviceMemoryError as exc:
                    outcomes.append(exc.with_traceback(None))
        return outcomes

    def _parse_window(self, window: Sequence[Image.Image]) -> list[ParsingResult]:
        plans = [self._passes(picture) for picture in window]
        outputs = iter(self._run([p for passes in plans for p in passes]))
        return [
            self._finish(picture, passes, [next(outputs) for _ in passes])
            for picture, passes in zip(window, plans, strict=True)
        ]

    def _passes(self, picture: Image.Image) -> list[_Pass]:
        pictures = [picture, mirror_image(picture)] if self.options.flip else [picture]
        if self.task is Task.SINGLE_PERSON:
            assert self.single_person_size is not None  # nosec B101 # narrows the type; single-person models have it
            passes = []
            for image in pictures:
                centred = centre_pad(image, *self.single_person_size)
                passes.append(
                    _Pass(
                        images=self._input_array(centred.image),
                        input_size=(centred.image.height, centred.image.width),
                        crop_box=centred.crop_box,
                    )
                )
            return passes
        resized = [self._preprocess(image) for image in pictures]
        return [_Pass(images=x, input_size=(r.height, r.width)) for r, x in resized]

    def _run(self, passes: list[_Pass]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Network outputs of every pass (Qx(K+1) and QxH/4xW/4, float32 on the host),
        batched by padded input size in chunks of at most ``batch_size``."""
        outputs: list[Any] = [None] * len(passes)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, one in enumerate(passes):
            groups.setdefault(one.padded_size, []).append(index)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                images = np.concatenate([passes[i].images for i in chunk])
                class_logits, mask_logits = self._network(images)
                for row, index in enumerate(chunk):
                    outputs[index] = (class_logits[row], mask_logits[row])
        return outputs

    def _network(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The engine on a Bx3xHpxWp batch, its outputs float32 on the host; a batch the
        device has no memory for is split in halves (each image's result does not depend on
        its batch).

        Raises:
            DeviceMemoryError: no memory for a single image.
        """
        try:
            class_logits, mask_logits = self.engine(images)
            return _host_array(class_logits), _host_array(mask_logits)
        except self._out_of_memory:
            pass  # released outside the handler: its traceback holds the forward's tensors
        self.release_device_memory()
        if images.shape[0] == 1:
            raise DeviceMemoryError(
                f"{self.device} ran out of memory for one {images.shape[-2]}x"
                f"{images.shape[-1]} input; lower max_size (or min_size)"
            )
        half = images.shape[0] // 2
        first, second = self._network(images[:half]), self._network(images[half:])
        return np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])

    def _finish(
        self,
        picture: Image.Image,
        passes: list[_Pass],
        outputs: list[tuple[np.ndarray, np.ndarray]],
    ) -> ParsingResult:
        output_size = (picture.height, picture.width)
        if self.task is Task.SINGLE_PERSON:
            rows = [
                self._semantic_map(one, logits, masks, output_size)
                for one, (logits, masks) in zip(passes, outputs, strict=True)
            ]
            source: SemanticRows = rows[0]
            if len(rows) == 2:
                source = AveragedRows(rows[0], MirroredRows(rows[1], self.label_set.mirrored()))
            return assemble_semantic(label_semantics(source), picture, self.class_names)
        measured = [
            self._measure_pass(one, logits, masks, output_size)
            for one, (logits, masks) in zip(passes, outputs, strict=True)
        ]
        if len(measured) == 1:
            parsed = measured[0].parsed()
        else:
            parsed = merge_passes(
                *measured,
                mirror=self.mirrored,
                num_parsing=self.num_parsing,
                output_size=output_size,
            )
        return assemble(parsed, picture, self.class_names)

    def _preprocess(self, picture: Image.Image) -> tuple[Image.Image, np.ndarray]:
        """Multi-person model: the resized picture and the normalised, padded 1x3xHpxWp
        network input."""
        resized = resize(picture, self.options.min_size, self.options.max_size)
        return resized, self._input_array(resized)

    def _input_array(self, image: Image.Image) -> np.ndarray:
        return to_input_array(image, PIXEL_MEAN, PIXEL_STD, SIZE_DIVISIBILITY)

    def _forward(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs in float32 on the host: class logits BxQx(K+1), mask logits
        BxQxHp/4xWp/4, of a batch array (or a tensor on the torch engine's device)."""
        class_logits, mask_logits = self.engine(batch)
        return _host_array(class_logits), _host_array(mask_logits)

    def _postprocess(
        self,
        class_logits: Any,
        mask_logits: Any,
        picture: Image.Image,
        resized: Image.Image,
        batch: Any,
    ) -> ParsingResult:
        """Multi-person model: instances, persons and label map at the size of ``picture``,
        from ``_forward``'s outputs for ``_preprocess(picture)``. The three steps of one
        parse, kept apart for the benchmarks that time each and the parity tests that compare
        the network's raw outputs; not part of the public API."""
        one = _Pass(images=batch, input_size=(resized.height, resized.width))
        output_size = (picture.height, picture.width)
        parsed = self._measure_pass(one, class_logits[0], mask_logits[0], output_size)
        return assemble(parsed.parsed(), picture, self.class_names)

    def _measure_pass(
        self,
        one: _Pass,
        class_logits: np.ndarray,
        mask_logits: np.ndarray,
        output_size: tuple[int, int],
    ) -> PassOutput:
        return measure_pass(
            _host_array(class_logits),
            _host_array(mask_logits),
            padded_size=one.padded_size,
            input_size=one.input_size,
            output_size=output_size,
            num_parsing=self.num_parsing,
            ins_score_thr=self.ins_score_thr,
        )

    def _semantic_map(
        self,
        one: _Pass,
        class_logits: np.ndarray,
        mask_logits: np.ndarray,
        output_size: tuple[int, int],
    ) -> SemanticMap:
        """The single-person semantic map of one pass, kept at crop size: exact fp32 math on
        the CPU whatever the network's precision."""
        assert one.crop_box is not None  # nosec B101 # narrows the type; single-person passes have a crop box
        probabilities = semantic_probabilities(
            _host_array(class_logits), _host_array(mask_logits), one.padded_size
        )
        return SemanticMap(
            probabilities,
            input_size=one.input_size,
            crop_box=one.crop_box,
            output_size=output_size,
        )


def _host_array(output: Any) -> np.ndarray:
    """An engine's output (a torch tensor on any device, or an array) as float32 numpy on the
    CPU, where post-processing runs."""
    if isinstance(output, np.ndarray):
        return output.astype(np.float32, copy=False)
    return output.detach().float().cpu().numpy()
