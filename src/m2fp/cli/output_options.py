"""The ``OutputRequest`` that the output flags of ``m2fp parse`` and ``m2fp batch`` name
(``add_output_arguments``), and whether the model can make it: one translation and one
refusal for both commands."""

from __future__ import annotations

import argparse

from m2fp.cli.errors import EXIT_USAGE, CLIError
from m2fp.labels import label_set_of
from m2fp.outputs.errors import OutputRequestError
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


def check_request_fits(request: OutputRequest, class_names: tuple[str, ...]) -> None:
    """Refuse, before any image is parsed, outputs a model with ``class_names`` cannot make
    (a mask naming a class or group its label set lacks, an underivable ``--label-set``).

    Raises:
        CLIError: the request's one-line reason, exit code 2.
    """
    try:
        request.check_for(label_set_of(class_names))
    except OutputRequestError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
