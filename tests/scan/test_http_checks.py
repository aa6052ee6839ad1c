"""The one reading of an answer's JSON error body that every scan check's verdict uses."""

from __future__ import annotations

import pytest

from m2fp.scan.http_checks import error_reason, json_body


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"error": "payload_too_large", "detail": "x", "request_id": "r"}', "payload_too_large"),
        ("<html>413 Request Entity Too Large</html>", "(not JSON)"),
        ("", "(not JSON)"),
        ('["payload_too_large"]', "(not an error body)"),
        ('"payload_too_large"', "(not an error body)"),
        ('{"detail": "no reason"}', "None"),
    ],
)
def test_error_reason_names_the_reason_or_what_the_body_is_instead(text, reason):
    assert error_reason(text) == reason


def test_json_body_is_none_only_for_what_is_not_json():
    assert json_body('{"error": "banned"}') == {"error": "banned"}
    assert json_body("[]") == []
    assert json_body("<html></html>") is None
