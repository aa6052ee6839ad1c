"""The engine a parser runs: PyTorch on its device, or OpenVINO with PyTorch for the inputs its
graphs do not cover; built once from ``ParserOptions``. torch is imported only for the torch
engine and the fallback: an OpenVINO package alone runs without it (the slim runtime).

Every engine has the contract of ``M2FP.forward`` (``NetworkEngine``). OpenVINO's graphs take
inputs with sides from 64 to 4096 (``m2fp.engines.network_input``); a narrower input (a
panorama or a strip beyond about 40:1 at the default sizes) or a larger one runs on the
PyTorch engine in fp32 instead, which gives the same outputs up to rounding; a parser loaded
from the package alone (no network) refuses such an input with an ``ImageError``.

Without a converted package the OpenVINO engine converts the network at start-up: about
1.5 minutes for R101 in fp32 and several more to quantise int8 (BENCHMARKS.md). ``m2fp model
export --format openvino`` does it once and the loader finds the package beside the weights
or inside the ``.m2fp`` envelope.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from m2fp.compute.device import HOST_CPU, Device, HostDevice
from m2fp.compute.options import Engine, Precision
from m2fp.compute.parser_options import ParserOptions
from m2fp.compute.threads import ThreadPlan
from m2fp.engines.network_input import SIDE_MAX, SIDE_MIN, fits_exported
from m2fp.engines.openvino_package import OpenVINOPackage, package_precision
from m2fp.errors import ImageError

if TYPE_CHECKING:
    from m2fp.engines.torch_engine import TorchEngine
    from m2fp.modeling.m2fp import M2FP

logger = logging.getLogger(__name__)


class NetworkEngine(Protocol):
    """Class logits BxQx(K+1) and mask logits BxQxH/4xW/4 (float32 arrays, or tensors on
    ``device``) of a normalised, zero-padded Bx3xHxW float32 batch
    (``m2fp.processing.preprocess.to_input_array``; the torch engine also takes a tensor on its
    device).

    Attributes:
        out_of_memory: the exceptions meaning the device had no memory for the batch (the
            parser splits it and tries again); none for OpenVINO on the host.
    """

    device: Device
    precision: Precision
    out_of_memory: tuple[type[BaseException], ...]

    def __call__(self, images: Any) -> tuple[Any, Any]: ...


class OpenVINOWithFallback:
    """OpenVINO where its graphs apply, one image at a time (they have batch 1); the PyTorch
    engine (CPU, fp32) for the sizes they do not cover, when the network was loaded.

    Args:
        openvino: the OpenVINO engine (fp32, bf16 or int8).
        fallback: the PyTorch engine of the same network; None where only the package was
            loaded (``m2fp.weights.loader.load_model``): those sizes are refused then.
    """

    device: HostDevice = HOST_CPU
    out_of_memory: tuple[type[BaseException], ...] = ()

    def __init__(self, *, openvino, fallback: TorchEngine | None) -> None:
        self.openvino = openvino
        self.fallback = fallback
        self.precision = Precision(openvino.precision)

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Raises:
        ImageError: a size the graphs do not cover, without the network to fall back on.
        """
        height, width = int(images.shape[-2]), int(images.shape[-1])
        if not fits_exported(height, width):
            if self.fallback is None:
                raise ImageError(
                    "unsupported_shape",
                    f"the network input {height}x{width} is outside {SIDE_MIN}-{SIDE_MAX} per "
                    "side, which the OpenVINO package covers (an aspect ratio beyond about "
                    "40:1); crop the photo, or use the torch engine (m2fp[torch])",
                )
            class_logits, mask_logits = self.fallback(images)
            return class_logits.cpu().numpy(), mask_logits.cpu().numpy()
        batch = np.asarray(images, dtype=np.float32)
        outputs = [self.openvino.infer(batch[i : i + 1]) for i in range(batch.shape[0])]
        return (
            np.concatenate([o[0] for o in outputs]),
            np.concatenate([o[1] for o in outputs]),
        )


def build_engine(
    model: M2FP | None,
    *,
    options: ParserOptions,
    device: Device,
    threads: ThreadPlan | None = None,
    package: OpenVINOPackage | None = None,
    weights_sha256: str | None = None,
    single_person_size: tuple[int, int] | None = None,
) -> NetworkEngine:
    """The engine ``options`` ask for, on ``device`` (already resolved and checked; the
    precision no longer ``fast``: ``m2fp.compute.precision.resolve_precision``).

    Args:
        model: the network (fp32); the PyTorch engine takes it over (``prepare_model``).
            None: the OpenVINO engine from ``package`` alone, without torch.
        options: engine and precision (and, for converting int8, the input sizes).
        device: from ``m2fp.compute.device.resolve_device``.
        threads: OpenVINO's threads and pinning (``m2fp.compute.threads``; torch's pool is
            process-wide and sized by the parser); None: OpenVINO's own choice.
        package: the converted network for the OpenVINO engine; converted here if None.
        weights_sha256: the weights' digest, checked against the package's.
        single_person_size: the single-person model's input, for calibrating int8.

    Raises:
        CheckpointError: a package of another precision or other weights
            (``OpenVINOPackage.check``).
        PrecisionUnsupportedError: the device cannot run the precision.
        ValueError: no network where one is needed (the torch engine, or no package).
        ImportError: the OpenVINO engine without ``m2fp[openvino]`` (int8 conversion without
            ``m2fp[int8]``).
    """
    if model is None and (options.engine is Engine.TORCH or package is None):
        raise ValueError("the torch engine, and converting a package, need the network")
    if options.engine is Engine.TORCH:
        from m2fp.engines.torch_engine import TorchEngine

        return TorchEngine(model=model, precision=options.precision, device=device)
    from m2fp.engines.openvino_engine import OpenVINOEngine

    fallback = None
    if model is not None:
        from m2fp.engines.torch_engine import TorchEngine

        fallback = TorchEngine(
            model=model, precision=Precision.FP32, device=model.pixel_mean.device
        )
    if package is None:
        package = _convert(model, options, weights_sha256, single_person_size)
    package.check(package_precision(options.precision), weights_sha256)
    openvino = OpenVINOEngine(
        package=package,
        precision=options.precision.value,
        num_threads=threads.threads if threads else None,
        pinning=threads.pinning if threads else None,
    )
    return OpenVINOWithFallback(openvino=openvino, fallback=fallback)


def _convert(
    model: M2FP,
    options: ParserOptions,
    weights_sha256: str | None,
    single_person_size: tuple[int, int] | None,
) -> OpenVINOPackage:
    from m2fp.engines.openvino_convert import convert_package

    precision = Precision(package_precision(options.precision))
    logger.warning(
        "no OpenVINO %s package for these weights: converting now (minutes for R101); "
        "'m2fp model export --format openvino --precision %s' does it once",
        precision.value,
        precision.value,
    )
    started = time.perf_counter()
    package = convert_package(
        model,
        precision,
        weights_sha256=weights_sha256,
        min_size=options.min_size,
        max_size=options.max_size,
        single_person_size=single_person_size,
    )
    logger.warning("converted to OpenVINO in %.0f s", time.perf_counter() - started)
    return package
