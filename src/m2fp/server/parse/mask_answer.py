"""The downstream outputs of a parse answer: which label set ``label_map_png`` is in, the
grouped and agnostic masks asked for (base64 PNG or COCO RLE), and the person and frame they
were made for. Everything is computed from the result in memory and dropped with the answer.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from m2fp.outputs.agnostic import agnostic_mask
from m2fp.outputs.errors import OutputRequestError, PersonNotFoundError
from m2fp.outputs.grouped_masks import grouped_mask
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.mask_encoding import mask_png, mask_rle
from m2fp.outputs.person_scope import resolve_person
from m2fp.result import ParsingResult
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
    if not (query.mask_specs or query.agnostic_kinds):
        return {}
    person_map, persons = result.person_map(), result.persons
    labels, label_set = result.label_map, result.label_set
    try:
        index = resolve_person(persons, query.person_spec)
        fields: dict[str, Any] = {}
        if query.mask_specs:
            shape = query.mask_options()
            fields["masks"] = {}
            for spec in query.mask_specs:
                mask = grouped_mask(
                    labels, label_set, [spec], shape, person_map=person_map, persons=persons
                )
                fields["masks"][spec] = encode_mask(mask, query.encoding)
        if query.agnostic_kinds:
            options = query.agnostic_options()
            fields["agnostic_masks"] = {}
            for kind in query.agnostic_kinds:
                mask = agnostic_mask(
                    labels, label_set, kind, options, person_map=person_map, persons=persons
                )
                fields["agnostic_masks"][kind] = encode_mask(mask, query.encoding)
    except PersonNotFoundError:
        raise ApiError("no_person") from None
    except OutputRequestError:
        raise ApiError("bad_request") from None
    width, height = result.size
    box = result.persons[index].bbox if index is not None and query.crop else (0, 0, width, height)
    fields["mask_scope"] = {"person": index, "box": list(box)}
    return fields
