"""The arguments ``m2fp parse`` has beyond images and model: downstream outputs (masks,
agnostic masks, label set, person, format) and input modes (folders, resume, watch, frames).
Standard library only, like ``arguments``: every value is checked by the rule in
``m2fp.outputs.mask_rules`` before torch is imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from m2fp.compute.parser_options import ParserOptionError, check_sizes
from m2fp.defaults import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_rules import (
    AGNOSTIC_KINDS,
    GROUPS,
    KEEP_ALL,
    KEEP_PARTS,
    MAX_RADIUS,
    parse_keep,
    parse_kinds,
    parse_person,
    parse_specs,
)


def _checked(rule: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type`` that reports the rule's own message."""

    def convert(text: str) -> object:
        try:
            return rule(text)
        except OutputRequestError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = rule.__name__
    return convert


def _radius(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_RADIUS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_RADIUS} pixels")
    return value


def frame_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480): both positive, at most ``DEFAULT_MAX_PIXELS`` pixels."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isascii() and width.isdigit() and height.isascii() and height.isdigit()):
        raise argparse.ArgumentTypeError("must be WIDTHxHEIGHT, e.g. 640x480")
    size = (int(width), int(height))
    if min(size) <= 0 or size[0] * size[1] > DEFAULT_MAX_PIXELS:
        raise argparse.ArgumentTypeError(f"must be positive, at most {DEFAULT_MAX_PIXELS} pixels")
    return size


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def file_size(text: str) -> int:
    """``"10M"`` -> 10485760: a positive number of bytes, K/M/G (powers of 1024, an optional
    ``B`` or ``iB`` after them) allowed."""
    number = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = number[-1:] if number[-1:] in _SIZE_UNITS else ""
    digits = number[: len(number) - len(unit)]
    if not (digits.isascii() and digits.isdigit()) or int(digits) <= 0:
        raise argparse.ArgumentTypeError("must be a positive size in bytes, e.g. 10485760 or 10M")
    return int(digits) * _SIZE_UNITS[unit]


def add_output_arguments(parse: argparse.ArgumentParser, *, format_flag: str = "--format") -> None:
    """The downstream-output options of ``m2fp parse`` and ``m2fp batch`` (whose own
    ``--format`` is the output form: there the mask format is ``format_flag``)."""
    outputs = parse.add_argument_group(
        "downstream outputs", "masks and label maps for other tools (docs/outputs.md)"
    )
    outputs.add_argument(
        "--masks",
        type=_checked(parse_specs),
        default=(),
        help=f"comma list of masks: groups ({', '.join(GROUPS)}), class names, or unions "
        "joined with '+' (head+Scarf); one <name>_mask_<mask>.png each (default: none)",
    )
    outputs.add_argument(
        "--agnostic",
        type=_checked(parse_kinds),
        default=(),
        help=f"comma list of try-on agnostic masks ({', '.join(AGNOSTIC_KINDS)}); "
        "one <name>_agnostic_<kind>.png each (default: none)",
    )
    outputs.add_argument(
        "--keep",
        type=_checked(parse_keep),
        default=KEEP_ALL,
        help=f"parts agnostic masks never cover: comma list of {', '.join(KEEP_PARTS)}, "
        "or none (default: all)",
    )
    outputs.add_argument(
        "--grey", action="store_true", help="agnostic masks as 127 inside, 0 outside (8-bit)"
    )
    outputs.add_argument(
        "--label-set",
        choices=list(OUTPUT_LABEL_SETS),
        help="write <name>_labels.png in this label set (default: the model's)",
    )
    outputs.add_argument(
        "--person",
        type=_checked(parse_person),
        help="restrict masks to one person: main (largest area) or an index (0 is the first; "
        "default: everyone)",
    )
    outputs.add_argument("--crop", action="store_true", help="cut masks to the person's box")
    outputs.add_argument("--invert", action="store_true", help="invert the grouped masks")
    outputs.add_argument(
        "--dilate",
        type=_radius,
        help="grow masks by this many pixels (default: 0; agnostic: the box's longer side/50)",
    )
    outputs.add_argument(
        "--feather",
        type=_radius,
        default=0,
        help="soften grouped masks' edges by this many pixels (8-bit PNG; default 0: sharp)",
    )
    outputs.add_argument(
        format_flag,
        dest="mask_format",
        choices=["png", "rle"],
        default="png",
        help="masks as PNG files, or as COCO RLE inside <name>.json (default: png)",
    )


def add_input_arguments(parse: argparse.ArgumentParser) -> None:
    """The input-mode options of ``m2fp parse``: folders, resume, watch, frames."""
    inputs = parse.add_argument_group("inputs")
    inputs.add_argument("--recursive", action="store_true", help="walk directories' subfolders")
    add_reading_arguments(inputs)
    inputs.add_argument(
        "--watch",
        metavar="DIR",
        help="parse images appearing in DIR until interrupted (default: parse the images "
        "given, then stop)",
    )
    inputs.add_argument(
        "--frames",
        type=frame_size,
        metavar="WxH",
        help="read raw RGB24 frames of this size from stdin (ffmpeg -f rawvideo -pix_fmt rgb24 -; "
        "default: read image files)",
    )


def add_reading_arguments(inputs: argparse._ArgumentGroup) -> None:
    """How input files are read and resumed, in ``m2fp parse`` and ``m2fp batch`` alike."""
    inputs.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip images whose outputs all exist (resume an interrupted run)",
    )
    inputs.add_argument(
        "--max-file-size",
        type=file_size,
        default=DEFAULT_MAX_FILE_BYTES,
        metavar="BYTES",
        help="refuse input files larger than this, before reading them (K/M/G allowed; "
        f"default: {DEFAULT_MAX_FILE_BYTES >> 20}M, the server's upload limit)",
    )
    inputs.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="take files and enter folders whose symlinks lead out of an input directory "
        "(default: refuse them, one line each)",
    )


def check_parse_arguments(parse: argparse.ArgumentParser) -> Callable[[argparse.Namespace], None]:
    """The combination checks of ``m2fp parse``, reported with its usage (exit code 2)."""

    def check(args: argparse.Namespace) -> None:
        sources = [bool(args.images), args.watch is not None, args.frames is not None]
        if sum(sources) != 1:
            parse.error("give images or directories, or --watch DIR, or --frames WxH (one)")
        check_output_arguments(parse, args)

    return check


def check_output_arguments(
    parse: argparse.ArgumentParser, args: argparse.Namespace, *, format_flag: str = "--format"
) -> None:
    """The combination checks of the output options (``add_output_arguments``)."""
    if args.crop and args.person is None:
        parse.error("--crop needs --person")
    try:
        check_sizes(args.min_size, args.max_size)
    except ParserOptionError:  # each size alone passed its flag's rule: the order broke
        parse.error("--max-size must be at least --min-size")
    if args.mask_format == "rle" and (args.feather or (args.grey and args.agnostic)):
        parse.error(f"{format_flag} rle holds binary masks only: no --feather or --grey")
