"""The HTTP/1.1 connection handling ``m2fp serve`` runs: uvicorn's h11 protocol, hardened.

Bare uvicorn waits forever for a request's headers, accepts connections until the process runs
out of file descriptors, and serves a request carrying both ``Content-Length`` and
``Transfer-Encoding`` (h11 lets the second win), which is how requests are smuggled past a proxy
that believes the first. This protocol adds, per connection:

- a header deadline: the request line and headers must be complete within ``header_timeout``
  seconds of the connection (or of the first byte of a keep-alive request), else it is closed;
- a connection budget: at ``max_connections`` open, a new connection evicts the one that has
  waited longest without a request in progress (slowloris connections, idle keep-alives, a body
  being drained after its answer), or is itself closed when every connection is busy, so the
  process never runs out of descriptors and ``/healthz`` keeps answering;
- a drain deadline: after an answer sent before its body was read (413, 415...), the rest of the
  body is discarded for at most ``DRAIN_SECONDS``, then the connection is closed;
- ``Content-Length`` together with ``Transfer-Encoding``: 400 and close (RFC 9112 6.1), as
  nginx does;
- a chunked body (``Transfer-Encoding`` alone): 411 ``length_required`` and close, before a
  chunk is read. Parsing each chunk costs the event loop far more than its bytes: two clients
  sending 2 MB bodies as 1-byte chunks took 31 CPU-seconds and held ``/healthz`` at 3.9 s.
  Browsers, curl and nginx in front (which de-chunks) all send a ``Content-Length``;
- a send deadline: an answer whose bytes the client stops reading (the transport's buffer
  above its high-water mark) for ``SEND_STALL_SECONDS`` is dropped and the connection aborted,
  so clients that never read hold no memory for long;
- malformed requests answered in the JSON error format with the security headers every answer
  carries, never uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
import http
import json
import secrets
from collections import OrderedDict
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http.h11_impl import H11Protocol

from m2fp.server.errors import REASONS
from m2fp.server.middleware.security_headers import SECURITY_HEADERS

# Beyond these a limit is a typo: under a second, slow mobile links cannot send their headers;
# above a minute a slowloris holds each connection as long as it likes.
MIN_HEADER_TIMEOUT = 1.0
MAX_HEADER_TIMEOUT = 60.0
# Fewer connections than this cannot serve a probe beside a few uploads; more than this many
# descriptors is beyond any process limit in use.
MIN_CONNECTIONS = 16
MAX_CONNECTIONS = 1_000_000
# Seconds an answered request's unread body is drained before the connection is closed: enough
# for a client on a fast link to finish sending and read its 413, no more.
DRAIN_SECONDS = 5.0
# Seconds an answer may wait for its client to read on (the send buffer full, no progress):
# a slow mobile link empties a 64 KiB buffer far sooner; a client that stopped reading never.
SEND_STALL_SECONDS = 30.0


def check_header_timeout(seconds: float) -> float:
    """``seconds`` if it can be the deadline for a request's headers, else ValueError."""
    if not MIN_HEADER_TIMEOUT <= seconds <= MAX_HEADER_TIMEOUT:
        raise ValueError(
            f"must be between {MIN_HEADER_TIMEOUT:.0f} and {MAX_HEADER_TIMEOUT:.0f} seconds"
        )
    return seconds


def check_max_connections(count: int) -> int:
    """``count`` if it can be the number of connections held open at once, else ValueError."""
    if not MIN_CONNECTIONS <= count <= MAX_CONNECTIONS:
        raise ValueError(f"must be between {MIN_CONNECTIONS} and {MAX_CONNECTIONS}")
    return count


class SmugglingRefused(h11.RemoteProtocolError):
    """A request framed two ways (``Content-Length`` and ``Transfer-Encoding``)."""


class ChunkedRefused(h11.RemoteProtocolError):
    """A request whose body is framed by ``Transfer-Encoding`` (chunked)."""


class _StrictConnection(h11.Connection):
    """h11's server connection refusing requests framed by both length headers, and chunked
    bodies; ``refused_with`` is the reason of the last refusal (the answer's)."""

    refused_with = "bad_request"

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name.lower() for name, _ in event.headers}
            if b"transfer-encoding" in names:
                if b"content-length" in names:
                    raise SmugglingRefused("Content-Length with Transfer-Encoding")
                self.refused_with = "length_required"
                raise ChunkedRefused("Transfer-Encoding without Content-Length")
        return event


def _error_response(reason: str) -> bytes:
    """A complete HTTP/1.1 error answer in the service's JSON format, with the security headers
    of every answer, closing the connection."""
    status, message = REASONS[reason]
    body = json.dumps(
        {"error": reason, "message": message, "request_id": secrets.token_hex(16)},
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
        "Connection": "close",
    }
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return (head + "\r\n").encode() + body


class HardenedH11Protocol(H11Protocol):
    """``H11Protocol`` with the deadlines, budget and checks of the module docstring.

    Built by ``hardened_protocol``, which fixes the limits as class attributes (uvicorn makes
    one instance per connection with its own arguments).
    """

    header_timeout: float
    max_connections: int
    send_stall_seconds: float
    # connections without a request in progress, oldest first: the eviction candidates
    idle: OrderedDict[HardenedH11Protocol, None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _StrictConnection(h11.SERVER, limit)
        self._deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None

    # connection life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_one():
            # every other connection has a request in progress: this one waits for nothing
            self.transport.close()
            return
        self._mark_idle()
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.idle.pop(self, None)
        self._disarm()
        self._stop_send_deadline()
        super().connection_lost(exc)

    # flow control: the client stopped (or is slow) reading what is sent
    def pause_writing(self) -> None:
        super().pause_writing()
        self._stop_send_deadline()
        self._send_deadline = self.loop.call_later(self.send_stall_seconds, self._abort_stalled)

    def resume_writing(self) -> None:
        self._stop_send_deadline()
        super().resume_writing()

    def _stop_send_deadline(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _abort_stalled(self) -> None:
        """No progress for ``send_stall_seconds``: drop the buffered answer (``abort``, not
        ``close``, which would keep it until sent) and free the connection."""
        self._send_deadline = None
        self.idle.pop(self, None)
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        if waiting and self._deadline is None:
            self._arm(self.header_timeout)  # the first byte of a keep-alive request
        super().data_received(data)
        if waiting and self.conn.their_state is not h11.IDLE:
            # the headers are complete: a request is in progress until its answer is sent
            self.idle.pop(self, None)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            self._mark_idle()  # keep-alive: uvicorn's own timer closes it if nothing comes
        elif self.conn.their_state is h11.SEND_BODY and self.conn.our_state is h11.DONE:
            # answered before the body was read: drain it for a while, not for ever
            self._mark_idle()
            self._arm(DRAIN_SECONDS)

    # refusals
    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse (and to ``SmugglingRefused``, 400,
        and ``ChunkedRefused``, 411): the JSON error format instead of plain text, and the
        connection closed."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.write(_error_response(self.conn.refused_with))
        self.transport.close()

    # bookkeeping
    def _mark_idle(self) -> None:
        self.idle[self] = None
        self.idle.move_to_end(self)

    def _evict_one(self) -> bool:
        for victim in self.idle:
            if victim is not self:
                del self.idle[victim]
                victim._close()
                return True
        return False

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._close)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _close(self) -> None:
        self._deadline = None
        self.idle.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()


def hardened_protocol(
    *,
    header_timeout: float,
    max_connections: int,
    send_stall_seconds: float = SEND_STALL_SECONDS,
) -> type[H11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these limits
    (``send_stall_seconds`` other than the default only in tests).

    Raises:
        ValueError: a limit is out of its range (``check_header_timeout``,
            ``check_max_connections``).
    """
    return type(
        "M2fpH11Protocol",
        (HardenedH11Protocol,),
        {
            "header_timeout": check_header_timeout(header_timeout),
            "max_connections": check_max_connections(max_connections),
            "send_stall_seconds": send_stall_seconds,
            "idle": OrderedDict(),
        },
    )
