"""The downstream outputs of a parse answer: which label set ``label_map_png`` is in, the
grouped and agnostic masks asked for (base64 PNG or COCO RLE), and the person and frame they
were made for. Everything is computed from the result in memory and dropped with the answer.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from m2fp.outputs.errors import OutputRequestError, PersonNotFoundError
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_encoding import mask_png, mask_rle
from m2fp.outputs.requested import make_masks
from m2fp.results.parsing_result import ParsingResult
from m2fp.server.errors import ApiError
from m2fp.server.parse.mask_query import MaskQuery

Box = tuple[int, int, int, int]


class RleAnswer(BaseModel):
    """A binary mask in COCO RLE, as pycocotools writes it."""

    model_config = ConfigDict(extra="forbid")

    size: tuple[int, int] = Field(description="[height, width] of the mask.")
    counts: str = Field(description="COCO's compressed run lengths, column-major, 0s first.")


MaskAnswer = str | RleAnswer


class MaskScopeAnswer(BaseModel):
    """What the masks were made for."""

    model_config = ConfigDict(extra="forbid")

    person: int | None = Field(description="Index into persons, or null for everyone.")
    box: Box = Field(description="[x0, y0, x1, y1) of the image the masks cover.")


def encode_mask(mask: np.ndarray, encoding: str) -> str | dict[str, Any]:
    """A mask as base64 PNG (1-bit, or 8-bit when feathered or grey) or COCO RLE."""
    if encoding == "rle":
        return mask_rle(mask)
    return base64.b64encode(mask_png(mask)).decode("ascii")


def label_map_png(result: ParsingResult, query: MaskQuery) -> bytes:
    """The label map as a palette PNG in the label set asked for (checked before upload)."""
    return result.label_map_png(query.label_set)


def label_fields(result: ParsingResult, query: MaskQuery) -> dict[str, Any]:
    """``label_set`` and ``classes``: the set ``label_map_png`` is written in, its names."""
    labels = OUTPUT_LABEL_SETS[query.label_set] if query.label_set else result.label_set
    return {"label_set": labels.name, "classes": list(labels.names)}


def mask_fields(result: ParsingResult, query: MaskQuery) -> dict[str, Any]:
    """``masks``, ``agnostic_masks`` and ``mask_scope``, if any mask was asked for.

    Raises:
        ApiError: ``no_person`` when the person asked for is not in the photo.
    """
    request = query.output_request()
    if not request.any_masks:
        return {}
    try:
        made = make_masks(result, request)
    except PersonNotFoundError:
        raise ApiError("no_person") from None
    except OutputRequestError:
        raise ApiError("bad_request") from None
    fields: dict[str, Any] = {"mask_scope": {"person": made.person, "box": list(made.box)}}
    if made.grouped:
        fields["masks"] = {k: encode_mask(m, request.encoding) for k, m in made.grouped.items()}
    if made.agnostic:
        fields["agnostic_masks"] = {
            k: encode_mask(m, request.encoding) for k, m in made.agnostic.items()
        }
    return fields
