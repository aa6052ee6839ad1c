"""Turns a ParsingResult into the bytes of the HTTP answer (JSON or the overlay PNG).

Only derived data leaves: sizes, boxes, areas, rounded scores and PNGs re-encoded without
metadata. No logits or probabilities.
"""

from __future__ import annotations

import base64
import json

from PIL import Image

from m2fp.imaging import MEDIA_TYPES, encode_png
from m2fp.result import ParsingResult
from m2fp.server.parse.query import ParseQuery

JSON_MEDIA_TYPE = "application/json"
PNG_MEDIA_TYPE = MEDIA_TYPES["PNG"]


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def json_body(result: ParsingResult, query: ParseQuery, *, request_id: str) -> bytes:
    """The JSON document of the API contract."""
    body = {"request_id": request_id, **result.to_dict()}
    body["label_map_png"] = _b64(result.label_map_png())
    body["person_map_png"] = _b64(encode_png(Image.fromarray(result.person_map())))
    if query.visualize:
        body["visualization_png"] = _b64(result.visualize(alpha=query.alpha))
    if query.class_names:
        body["class_masks"] = {
            name: _b64(encode_png(Image.fromarray(result.class_mask(name))))
            for name in query.class_names
        }
    return json.dumps(body, separators=(",", ":")).encode()


def png_body(result: ParsingResult, query: ParseQuery) -> bytes:
    """The visualisation alone, for ``Accept: image/png``."""
    return result.visualize(alpha=query.alpha)


def wants_png(accept: str | None) -> bool:
    """``Accept`` asks for ``image/png`` and not for JSON."""
    if not accept:
        return False
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return PNG_MEDIA_TYPE in types and JSON_MEDIA_TYPE not in types
