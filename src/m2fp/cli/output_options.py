"""The ``OutputRequest`` that the output flags of ``m2fp parse`` and ``m2fp batch`` name
(``add_output_arguments``): one translation for both commands."""

from __future__ import annotations

import argparse

from m2fp.outputs.requested import OutputRequest


def output_request(args: argparse.Namespace) -> OutputRequest:
    """The outputs asked for by the parsed flags.

    Raises:
        OutputRequestError: a combination the request refuses.
    """
    return OutputRequest.build(
        specs=args.masks,
        kinds=args.agnostic,
        person=args.person,
        crop=args.crop,
        invert=args.invert,
        dilate=args.dilate,
        feather=args.feather,
        keep=args.keep,
        grey=args.grey,
        label_set=args.label_set,
        encoding=args.mask_format,
    )
