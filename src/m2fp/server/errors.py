"""The error contract: every 4xx/5xx is ``{error, message, request_id}`` and echoes nothing.

Reasons and their messages are fixed here; no handler ever formats client data (paths, query
values, filenames, exception text) into a response. The reason is also left in the request's
state so the audit line and the rejection metric can report it. Refusals that waiting cures
(``RetryLater``: rate limit, ban, storage down, queue full, deadline, memory shedding) are
translated here, once, with their ``Retry-After`` header. ``ErrorBody`` and
``error_responses`` describe the same contract in the OpenAPI schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from m2fp.server.request_state import request_id, set_error_reason
from m2fp.server.retry_later import RetryLater

# reason -> (HTTP status, the one human sentence)
REASONS: dict[str, tuple[int, str]] = {
    "payload_too_large": (413, "The upload is larger than this service accepts."),
    "too_many_pixels": (413, "The image has more pixels than this service accepts."),
    "unsupported_media_type": (415, "Only JPEG and PNG images are accepted."),
    "bad_extension": (415, "The file name must end in .jpg, .jpeg or .png and match its content."),
    "corrupt_image": (400, "The image is truncated or corrupt."),
    "too_many_scans": (400, "The JPEG has more progressive scans than this service decodes."),
    "image_too_costly": (400, "The image costs more to decode than this service allows."),
    "empty_body": (400, "The upload is empty."),
    "upload_timeout": (408, "The upload was not received in time."),
    "length_required": (411, "Send the body with a Content-Length; chunked bodies are refused."),
    "bad_request": (400, "The request is malformed."),
    "unsupported_shape": (
        400,
        "The photo is too narrow for this service's engine (beyond about 40:1); crop it.",
    ),
    "no_person": (400, "The photo has no such person to make the masks for."),
    "forbidden_origin": (403, "Requests from this origin are not allowed."),
    "unauthorized": (401, "A valid API key is required."),
    "rate_limited": (429, "Too many requests; retry later."),
    "banned": (403, "This client is temporarily refused after repeated invalid uploads."),
    "overloaded": (503, "The service is busy; retry later."),
    "timeout": (503, "The request took too long and was abandoned."),
    "storage_unavailable": (503, "The service cannot check its limits right now; retry later."),
    "device_out_of_memory": (
        503,
        "The service's device has no memory for this image now; retry later or send a smaller one.",
    ),
    "not_acceptable": (406, "The answer can only be JSON or a PNG image."),
    "not_found": (404, "Nothing is served at this address."),
    "method_not_allowed": (405, "This method is not allowed here."),
    "internal_error": (500, "Something went wrong on our side."),
    # nginx's code for it: the client closed the connection before the answer; nobody reads
    # this answer, but the audit line and the metrics record it as what it is, not as a 5xx
    "client_abort": (499, "The client closed the connection before the upload was complete."),
}
NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    """A refusal with a machine reason from ``REASONS``.

    Args:
        reason: a key of ``REASONS``.
        message: a fixed sentence to use instead of the default (never client data).
        status: a status to use instead of the default (e.g. 504 for ``timeout``).
        headers: extra response headers such as ``Retry-After``.
    """

    def __init__(
        self,
        reason: str,
        *,
        message: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown error reason {reason!r}")
        default_status, default_message = REASONS[reason]
        super().__init__(message or default_message)
        self.reason = reason
        self.message = message or default_message
        self.status = status or default_status
        self.headers = dict(headers or {})


class UploadRejected(ApiError):
    """The upload itself was refused (size, type, extension, decode): what bans count.

    Once counted, the answer also says how many such rejections are left before the client's
    uploads are paused and for how long, so that an honest mistake is warned before it locks
    anyone out.
    """

    strikes_left: int | None = None
    ban_seconds: int | None = None

    def warn_strikes(self, *, left: int, ban_seconds: int) -> None:
        """Record that ``left`` more rejections ban the client for ``ban_seconds``."""
        self.strikes_left = left
        self.ban_seconds = ban_seconds


class ErrorBody(BaseModel):
    """The body of every error answer (the OpenAPI schema of the contract)."""

    error: str = Field(
        description="The machine reason; what clients branch on.",
        json_schema_extra={"enum": list(REASONS)},
    )
    message: str = Field(description="One fixed sentence; it never repeats the request.")
    request_id: str | None = Field(description="This answer's X-Request-ID, as in the audit log.")
    strikes_left: int | None = Field(
        default=None,
        description=(
            "Only on a rejected upload that was counted against the client: how many more "
            "rejected uploads in a row pause its uploads (0: paused now)."
        ),
    )
    ban_seconds: int | None = Field(
        default=None,
        description="Only with strikes_left: how long uploads are then paused, in seconds.",
    )


def error_responses(*reasons: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route that refuses with ``reasons``: ``ErrorBody`` under each
    of their statuses, the reasons named in its description.

    ``default`` (any other status) carries ``ErrorBody`` too; declaring it also keeps FastAPI
    from advertising its 422 validation answer, which this service never sends.
    """
    by_status: dict[int, list[str]] = {}
    for reason in reasons:
        by_status.setdefault(REASONS[reason][0], []).append(reason)
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": ", ".join(names)}
        for status, names in sorted(by_status.items())
    }
    responses["default"] = {"model": ErrorBody, "description": "Any other error."}
    return responses


def retry_later_error(refusal: RetryLater) -> ApiError:
    """The API error of a refusal that waiting cures: its reason, and ``Retry-After`` in whole
    seconds, rounded up and at least 1 (never "retry now")."""
    seconds = max(1, math.ceil(refusal.retry_after))
    return ApiError(refusal.reason, headers={"Retry-After": str(seconds)})


def error_response(scope: Scope, error: ApiError) -> Response:
    """The JSON error response for ``error``; records the reason in the request's state."""
    set_error_reason(scope, error.reason)
    body: dict[str, Any] = {
        "error": error.reason,
        "message": error.message,
        "request_id": request_id(scope),
    }
    if isinstance(error, UploadRejected) and error.strikes_left is not None:
        body["strikes_left"] = error.strikes_left
        body["ban_seconds"] = error.ban_seconds
    return JSONResponse(body, status_code=error.status, headers={**NO_STORE, **error.headers})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)  # nosec B101 # narrows the type; registered for ApiError only
    return error_response(request.scope, exc)


async def _retry_later(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RetryLater)  # nosec B101 # narrows the type; registered for RetryLater only
    return error_response(request.scope, retry_later_error(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    """Replaces FastAPI's 422, which echoes the offending input back to the client."""
    assert isinstance(exc, RequestValidationError)  # nosec B101 # narrows the type; registered for this error only
    names = sorted(
        {str(e["loc"][-1]) for e in exc.errors() if e.get("loc") and e["loc"][0] == "query"}
        & _declared_query_names(request)
    )
    return error_response(request.scope, invalid_query(*names))


def invalid_query(*names: str) -> ApiError:
    """400 ``bad_request`` naming the query parameters (declared names, never values)."""
    if not names:
        return ApiError("bad_request")
    return ApiError("bad_request", message=f"Invalid value for query parameter {', '.join(names)}.")


def _declared_query_names(request: Request) -> set[str]:
    """Names the route itself declares, its dependencies' included: safe to repeat, unlike
    anything the client sent."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return set()
    query_params = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        query_params.extend(current.query_params)
        pending.extend(current.dependencies)
    names = {param.alias for param in query_params}
    for param in query_params:
        fields = getattr(param.field_info.annotation, "model_fields", {})
        names.update(fields)
    return names


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # nosec B101 # narrows the type; registered for this error only
    headers = {}
    if exc.status_code == 404:
        reason = "not_found"
    elif exc.status_code == 405:
        reason = "method_not_allowed"
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    elif exc.status_code == 413:
        reason = "payload_too_large"
    elif exc.status_code < 500:
        reason = "bad_request"
    else:
        reason = "internal_error"
    error = ApiError(reason, status=exc.status_code if exc.status_code < 500 else None)
    error.headers.update(headers)
    return error_response(request.scope, error)


def install_error_handlers(app: FastAPI) -> None:
    """Route every refusal FastAPI or Starlette can raise through ``error_response``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RetryLater, _retry_later)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
