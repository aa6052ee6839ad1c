"""Content negotiation of the parse answer: JSON, the PNG overlay, or 406."""

from __future__ import annotations

import pytest

from m2fp.server.errors import ApiError
from m2fp.server.parse.response import negotiate


@pytest.mark.parametrize(
    ("accept", "png"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/*", False),
        ("image/png", True),
        ("image/*", True),
        ("image/png, application/json", False),
        ("image/png, application/json;q=0.5", True),
        ("application/json;q=0.9, image/png;q=1", True),
        ("text/html, image/png", True),
        ("image/png;q=0, */*", False),
        ("IMAGE/PNG", True),
    ],
)
def test_accept_chooses_json_or_png(accept, png):
    assert negotiate(accept) is png


@pytest.mark.parametrize(
    "accept", ["image/gif", "text/html", "image/png;q=0", "application/xml, image/webp", "*/*;q=0"]
)
def test_nothing_acceptable_is_406(accept):
    with pytest.raises(ApiError) as refused:
        negotiate(accept)
    assert refused.value.reason == "not_acceptable"
    assert refused.value.status == 406
