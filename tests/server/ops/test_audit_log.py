"""Audit lines: JSON, pseudonymous clients, no exception text."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from m2fp.server.ops.audit_log import (
    AUDIT_LOGGER,
    MIN_SALT_CHARS,
    AuditLog,
    JsonFormatter,
    check_log_salt,
)


def test_a_salt_too_short_to_key_the_hash_is_refused():
    with pytest.raises(ValueError, match=f"at least {MIN_SALT_CHARS} characters"):
        check_log_salt("s" * (MIN_SALT_CHARS - 1))
    assert check_log_salt("s" * MIN_SALT_CHARS) == "s" * MIN_SALT_CHARS


def test_hashed_client_ids_are_salted_and_do_not_contain_the_address():
    first = AuditLog(mode="hash", salt=b"s" * 32)
    again = AuditLog(mode="hash", salt=b"s" * 32)
    other = AuditLog(mode="hash", salt=b"t" * 32)
    ident = first.client_id("203.0.113.7")
    assert len(ident) == 16 and int(ident, 16) >= 0
    assert ident == again.client_id("203.0.113.7")
    assert ident != other.client_id("203.0.113.7")
    assert ident != first.client_id("203.0.113.8")
    assert "203" not in ident


def test_truncated_client_ids_keep_only_the_network():
    audit = AuditLog(mode="truncate", salt=b"x")
    assert audit.client_id("203.0.113.7") == "203.0.113.0/24"
    assert audit.client_id("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::/48"
    assert audit.client_id("not-an-ip") == "unknown"
    assert audit.client_id(None) == "unknown"


def test_request_and_security_lines(caplog):
    audit = AuditLog(mode="truncate", salt=b"x")
    formatter = JsonFormatter()
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        audit.request(
            request_id="ab",
            method="POST",
            route="/api/v1/parse",
            status=415,
            duration_ms=1.234,
            bytes_in=10,
            reason="unsupported_media_type",
            client="198.51.100.9",
        )
        audit.security_event("banned", client="198.51.100.9", reason="banned", seconds=3600)
    request, event = (json.loads(formatter.format(r)) for r in caplog.records)
    assert request["event"] == "request"
    assert request["outcome"] == "rejected"
    assert request["client"] == "198.51.100.0/24"
    assert request["duration_ms"] == 1.2
    assert {"time", "level", "logger", "request_id", "route", "status", "bytes_in"} <= set(request)
    assert event == {
        **{k: event[k] for k in ("time", "level", "logger")},
        "event": "security_event",
        "kind": "banned",
        "seconds": 3600,
        "client": "198.51.100.0/24",
        "reason": "banned",
    }
    assert event["level"] == "warning"


def test_formatter_keeps_frames_but_not_the_exception_text():
    client_data = "-".join(["secret", "file", "name.png"])
    try:
        raise ValueError(client_data)
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"] == "ValueError"
    assert "test_formatter_keeps_frames" in line["traceback"]
    assert "secret-file-name" not in json.dumps(line)
