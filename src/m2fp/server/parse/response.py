"""Turns a ParsingResult into the bytes of the HTTP answer (JSON or the overlay PNG), and
describes that answer (``ParseAnswer``) for the OpenAPI schema.

Only derived data leaves: sizes, boxes, areas, rounded scores and PNGs re-encoded without
metadata. No logits or probabilities.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from m2fp.imaging.decoder import MEDIA_TYPES, encode_png
from m2fp.results.parsing_result import ParsingResult
from m2fp.server.errors import ApiError
from m2fp.server.parse.mask_answer import (
    MaskAnswer,
    MaskScopeAnswer,
    encode_mask,
    label_fields,
    label_map_png,
    mask_fields,
)
from m2fp.server.parse.query import ParseQuery

JSON_MEDIA_TYPE = "application/json"
PNG_MEDIA_TYPE = MEDIA_TYPES["PNG"]
Box = tuple[int, int, int, int]


class PartAnswer(BaseModel):
    """One part instance (``Hair``, ``Left-arm``...)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="Class name, of the loaded model's label set.")
    score: float = Field(description="Instance score in [0, 1], 4 digits.")
    bbox: Box = Field(description="[x0, y0, x1, y1), original image pixels.")
    area: int = Field(description="Mask pixels.")


class PersonAnswer(BaseModel):
    """One person and the parts assigned to them, best score first."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(description="Human instance score in [0, 1], 4 digits.")
    bbox: Box = Field(description="[x0, y0, x1, y1), original image pixels.")
    area: int = Field(description="Mask pixels.")
    parts: list[PartAnswer]


class ParseAnswer(BaseModel):
    """The JSON answer of ``POST /api/v1/parse`` (``json_body`` writes it). PNGs are base64."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(description="This answer's X-Request-ID, as in the audit log.")
    width: int
    height: int
    classes_present: list[str] = Field(description="Classes covering any pixel, no background.")
    persons: list[PersonAnswer] = Field(
        description="Best score first; always empty with the single-person model."
    )
    unassigned_parts: list[PartAnswer] = Field(
        description="Parts that overlap no person (with the single-person model: every part)."
    )
    label_set: str = Field(description="The label set label_map_png is written in.")
    classes: list[str] = Field(description="Its class names: pixel value i is classes[i].")
    label_map_png: str = Field(description="Palette PNG, pixel = class id.")
    person_map_png: str = Field(description="Greyscale PNG, pixel i = persons[i-1], 0 = none.")
    visualization_png: str | None = Field(
        None, description="The colour overlay with its legend; absent with visualize=false."
    )
    class_masks: dict[str, MaskAnswer] | None = Field(
        None, description="1-bit PNG (or RLE) per class asked for in classes; absent if none was."
    )
    masks: dict[str, MaskAnswer] | None = Field(
        None, description="Per mask asked for in masks: a PNG (base64) or RLE; else absent."
    )
    agnostic_masks: dict[str, MaskAnswer] | None = Field(
        None, description="Per kind asked for in agnostic: a PNG (base64) or RLE; else absent."
    )
    mask_scope: MaskScopeAnswer | None = Field(
        None, description="The person and image box the masks cover; absent without masks."
    )


def answer_responses() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a successful parse: ``ParseAnswer`` as JSON, or the
    overlay alone as a PNG (``Accept: image/png``)."""
    png = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {
            "model": ParseAnswer,
            "description": "The parse, or with Accept: image/png the overlay alone.",
            "content": {PNG_MEDIA_TYPE: png},
        }
    }


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def json_body(result: ParsingResult, query: ParseQuery, *, request_id: str) -> bytes:
    """The JSON document of the API contract (``ParseAnswer``)."""
    body = {"request_id": request_id, **result.to_dict(), **label_fields(result, query)}
    body["label_map_png"] = _b64(label_map_png(result, query))
    body["person_map_png"] = _b64(encode_png(Image.fromarray(result.person_map())))
    if query.visualize:
        body["visualization_png"] = _b64(result.visualize(alpha=query.alpha))
    if query.class_names:
        body["class_masks"] = {
            name: encode_mask(result.class_mask(name), query.encoding) for name in query.class_names
        }
    body.update(mask_fields(result, query))
    return json.dumps(body, separators=(",", ":")).encode()


def png_body(result: ParsingResult, query: ParseQuery) -> bytes:
    """The visualisation alone, for ``Accept: image/png``."""
    return result.visualize(alpha=query.alpha)


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    """``(type, subtype, q)`` of each media range in an ``Accept`` header (RFC 9110 12.5.1); a
    malformed ``q`` counts as 1, a range without a slash is skipped."""
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind, slash, subtype = media.lower().partition("/")
        if not slash:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(1.0, max(0.0, float(value)))
                except ValueError:
                    quality = 1.0
        ranges.append((kind.strip(), subtype.strip(), quality))
    return ranges


def _quality(ranges: list[tuple[str, str, float]], media_type: str) -> float:
    """The q the most specific range matching ``media_type`` gives it (0 if none matches)."""
    kind, _, subtype = media_type.partition("/")
    best, specificity = 0.0, -1
    for range_kind, range_subtype, quality in ranges:
        if range_kind == kind and range_subtype == subtype:
            rank = 2
        elif range_kind == kind and range_subtype == "*":
            rank = 1
        elif range_kind == "*" and range_subtype == "*":
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = quality, rank
    return best


def negotiate(accept: str | None) -> bool:
    """Whether the answer is the PNG overlay (True) or JSON (False), from ``Accept``.

    No ``Accept`` means JSON; the PNG only when the client prefers it strictly.

    Raises:
        ApiError: ``not_acceptable`` (406), the client accepts neither.
    """
    if not accept or not accept.strip():
        return False
    ranges = _media_ranges(accept)
    as_json = _quality(ranges, JSON_MEDIA_TYPE)
    as_png = _quality(ranges, PNG_MEDIA_TYPE)
    if as_json == 0 and as_png == 0:
        raise ApiError("not_acceptable")
    return as_png > as_json
