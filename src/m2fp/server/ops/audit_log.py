"""The one log format: JSON lines, with clients pseudonymised and never any upload content.

Every request produces one ``request`` line; abuse handling adds ``security_event`` lines. Both
go to the ``m2fp.audit`` logger. A client is written as a salted hash of its address or as a
truncated address (the ``mode``), so logs can show repeated abuse without holding
personal data (GDPR/PIPL). Nothing here accepts image bytes, filenames or EXIF.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import traceback
from datetime import datetime, timezone
from typing import Any, Literal

AUDIT_LOGGER = "m2fp.audit"
TRUNCATE_PREFIX = {4: 24, 6: 48}
# the status of a request whose client went away before its answer (nginx's 499)
CLIENT_CLOSED_REQUEST = 499
# an operator's salt shorter than this could be guessed, and every hashed address with it
MIN_SALT_CHARS = 16


def check_log_salt(salt: str) -> str:
    """``salt`` if it is long enough to key the client hash (``MIN_SALT_CHARS``).

    Raises:
        ValueError: a shorter salt (the message never shows it).
    """
    if len(salt) < MIN_SALT_CHARS:
        raise ValueError(f"must be at least {MIN_SALT_CHARS} characters")
    return salt


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, then the record's ``fields`` or message.

    Tracebacks keep only the frames (file, line, code), not the exception's text, which can
    contain client data.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        suppressed = getattr(record, "suppressed", None)
        if suppressed:
            line["suppressed"] = suppressed  # lines of this kind dropped before this one
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(line, separators=(",", ":"), default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """``logging.config.dictConfig`` for ``m2fp serve``: everything as JSON lines on stderr.

    uvicorn's access log is switched off: it writes raw client addresses and query strings;
    the audit line replaces it. python-multipart's warnings quote bytes of the body: dropped.
    Everything but the audit log goes through ``LogRateLimit``, so an attack cannot turn the
    server's diagnostics into a flood.
    """
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
        "filters": ["rate_limit"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"rate_limit": {"()": "m2fp.server.ops.log_rate_limit.LogRateLimit"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "m2fp": {"handlers": ["stderr"], "level": level, "propagate": False},
            # its parse warnings describe bytes of the client's body
            "python_multipart": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


class AuditLog:
    """Writes request lines and security events for one app.

    Args:
        mode: ``hash`` (HMAC-SHA256 with ``salt``, 16 hex digits) or ``truncate`` (IPv4 /24,
            IPv6 /48).
        salt: secret key of the hash (random per process unless the operator sets one).
    """

    def __init__(self, *, mode: Literal["hash", "truncate"], salt: bytes) -> None:
        self.mode = mode
        self._salt = salt
        self.logger = logging.getLogger(AUDIT_LOGGER)

    def client_id(self, address: str | None) -> str:
        """The pseudonymous form of a client address written to logs."""
        if not address:
            return "unknown"
        if self.mode == "hash":
            return hmac.new(self._salt, address.encode(), hashlib.sha256).hexdigest()[:16]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "unknown"
        network = ipaddress.ip_network(f"{ip}/{TRUNCATE_PREFIX[ip.version]}", strict=False)
        return str(network)

    def request(
        self,
        *,
        request_id: str,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        bytes_in: int,
        reason: str | None,
        client: str | None,
    ) -> None:
        """The one line written for every HTTP request."""
        if status == CLIENT_CLOSED_REQUEST:
            outcome = "aborted"
        else:
            outcome = "ok" if status < 400 else "rejected" if status < 500 else "error"
        self._write(
            logging.INFO if status < 500 else logging.ERROR,
            {
                "event": "request",
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_ms, 1),
                "bytes_in": bytes_in,
                "outcome": outcome,
                "reason": reason,
                "client": self.client_id(client),
            },
        )

    def security_event(
        self, kind: str, *, client: str | None, reason: str | None = None, **fields: str | int
    ) -> None:
        """A separate line for abuse handling.

        Args:
            kind: ``rate_limited``, ``banned``, ``rejected_upload``, ``shed``, ...
            client: the raw client address; it is pseudonymised here.
            reason: the error reason, if any.
            fields: further plain values (counts, durations); never client-supplied text.
        """
        line: dict[str, Any] = {"event": "security_event", "kind": kind, **fields}
        line["client"] = self.client_id(client)
        line["reason"] = reason
        self._write(logging.WARNING, line)

    def _write(self, level: int, fields: dict[str, Any]) -> None:
        self.logger.log(level, fields.get("event", "audit"), extra={"fields": fields})
