"""Annotated dependencies: what a route may ask for. Everything lives on ``app.state``,
built by ``create_app``; nothing is a module global."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request

from m2fp.server.abuse.client_identity import ClientIdentity
from m2fp.server.abuse.guard import ParseGuard
from m2fp.server.errors import ApiError, UploadRejected
from m2fp.server.ops.audit_log import AuditLog
from m2fp.server.ops.metrics import Metrics
from m2fp.server.parse.query import ParseQuery
from m2fp.server.parse.service import Inference
from m2fp.server.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


def get_inference(request: Request) -> Inference:
    inference = request.app.state.inference
    if inference is None:
        raise ApiError("overloaded", message="The service is starting; retry later.")
    return inference


def get_request_id(request: Request) -> str:
    return request.state.request_id


async def guard_parse(request: Request) -> AsyncIterator[ClientIdentity]:
    """The abuse and overload checks (see ``parse_guard``), then the route, then what its
    outcome means for the client's strikes. Every state-changing /api route depends on this."""
    guard: ParseGuard = request.app.state.parse_guard
    client = await guard.admit(request)
    try:
        yield client
    except UploadRejected:
        await guard.upload_rejected(client)
        raise
    except ApiError as exc:
        guard.refused(client, exc)
        raise
    else:
        await guard.upload_accepted(client)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
InferenceDep = Annotated[Inference, Depends(get_inference)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
ParseQueryDep = Annotated[ParseQuery, Query()]
