"""``m2fp model export``: the network converted once, as an ONNX file or as the OpenVINO
package that ``--engine openvino`` loads.

ONNX: a new file (mode 0600) holding the weights in plaintext, said on stderr; an encrypted
model is exported only with its key. OpenVINO: for a model directory the package is written
beside the weights (``openvino_<precision>.ovpkg``, where the loader looks); for an encrypted
model it travels inside a new ``.m2fp`` file with the same key and weights, so no plaintext
reaches the disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.cli.model_lookup import model_path, required_key
from m2fp.cli.terminal_text import escape_controls
from m2fp.compute.options import Precision
from m2fp.engines.openvino_package import attachment_name, package_file_name
from m2fp.weights.loader import load_model
from m2fp.weights.whole_file import PRIVATE, new_file

MB = 2**20


def export(args: argparse.Namespace) -> int:
    path = model_path(args.path)
    key = required_key(args.key_file) if path.is_file() else None
    if args.format == "onnx":
        return _onnx(path, key, args)
    return import_openvino(path, key, args)


def _onnx(path: Path, key: bytes | None, args: argparse.Namespace) -> int:
    from m2fp.engines.onnx_export import write_onnx

    if not args.out:
        raise CLIError("--format onnx needs --out FILE.onnx", EXIT_USAGE)
    if args.precision != "fp32":
        raise CLIError("--format onnx exports the fp32 network; drop --precision", EXIT_USAGE)
    out = Path(args.out)
    if out.exists():
        raise CLIError(f"{out.name} already exists; choose another --out", EXIT_USAGE)
    loaded = load_model(path, key=key)
    started = time.perf_counter()
    size = write_onnx(loaded.model, out, opset=args.opset)
    print(
        escape_controls(
            f"m2fp: warning: {out.name} holds the model's weights in plaintext (mode 0600): "
            "keep it as safe as the model key"
        ),
        file=sys.stderr,
    )
    print(
        escape_controls(
            f"exported to {out} in {time.perf_counter() - started:.0f} s ({size / MB:.0f} MB, "
            f"opset {args.opset}): input images 1x3xHxW float32 (normalised, H and W multiples "
            "of 32 from 64 to 4096), outputs class_logits 1xQx(K+1) and mask_logits 1xQxH/4xW/4"
        )
    )
    return 0


def import_openvino(path: Path, key: bytes | None, args: argparse.Namespace) -> int:
    precision = Precision(args.precision)
    if key is not None:
        if not args.out or Path(args.out).suffix != ".m2fp":
            raise CLIError(
                "an encrypted model's OpenVINO package travels inside it: --out must name a "
                "new .m2fp file",
                EXIT_USAGE,
            )
        out = Path(args.out)
    else:
        out = Path(args.out) if args.out else path / package_file_name(precision.value)
    if out.exists():
        raise CLIError(f"{out.name} already exists; choose another --out", EXIT_USAGE)
    package, seconds = _convert(path, key, precision, args.calibration)
    data = package.to_bytes()
    if key is None:
        with new_file(out, mode=PRIVATE) as handle:
            handle.write(data)
    else:
        from m2fp.protection.convert import attach

        attach(path, key=key, out=out, name=attachment_name(precision.value), data=data)
    note = " (an approximation)" if precision is Precision.INT8 else " (exact)"
    print(
        escape_controls(
            f"converted to OpenVINO {precision.value}{note} in {seconds:.0f} s; wrote {out} "
            f"({len(data) / MB:.0f} MB); --engine openvino --precision {precision.value} loads it"
        )
    )
    return 0


def _convert(path: Path, key: bytes | None, precision: Precision, scenes: int):
    from m2fp.defaults import DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE
    from m2fp.engines.openvino_convert import convert_package
    from m2fp.model_config import single_person_input_size
    from m2fp.task import Task, task_of

    # int8 is quantised from the fp32 package, which need not be converted again if it exists
    wanted = Precision.FP32 if precision is Precision.INT8 else None
    loaded = load_model(path, key=key, openvino=wanted, network=True)
    fp32 = None
    if loaded.openvino is not None:
        fp32 = loaded.openvino.check(Precision.FP32.value, loaded.sha256)
    single = task_of(loaded.config) is Task.SINGLE_PERSON
    started = time.perf_counter()
    package = convert_package(
        loaded.model,
        precision,
        weights_sha256=loaded.sha256,
        min_size=DEFAULT_MIN_SIZE,
        max_size=DEFAULT_MAX_SIZE,
        scenes=scenes,
        single_person_size=single_person_input_size(loaded.config) if single else None,
        fp32=fp32,
    )
    return package, time.perf_counter() - started
