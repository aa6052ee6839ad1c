"""Annotated dependencies: what a route may ask for. Everything comes from the app's
``AppState`` (built by ``create_app``, services opened by its lifespan) or from the request's
own state; nothing is a module global. They only read attributes, so they are ``async``:
FastAPI runs plain functions in its thread pool, a needless hop per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request

from m2fp.predictor import HumanParser
from m2fp.server.abuse.client_identity import ClientIdentity
from m2fp.server.app_state import AppState, Services, app_state
from m2fp.server.errors import ApiError, UploadRejected, invalid_query
from m2fp.server.ops.metrics import Metrics
from m2fp.server.parse.mask_query import check_fits_model
from m2fp.server.parse.query import ParseQuery
from m2fp.server.parse.service import ParseService
from m2fp.server.request_state import request_id
from m2fp.server.retry_later import RetryLater
from m2fp.server.settings import Settings


async def get_state(request: Request) -> AppState:
    return app_state(request.app)


async def get_settings(request: Request) -> Settings:
    return app_state(request.app).settings


async def get_metrics(request: Request) -> Metrics:
    return app_state(request.app).metrics


def running_services(request: Request) -> Services:
    """The app's services, or 503 ``overloaded`` while the lifespan has not started them."""
    services = app_state(request.app).services
    if services is None:
        raise ApiError("overloaded", message="The service is starting; retry later.")
    return services


async def get_parse_service(request: Request) -> ParseService:
    return running_services(request).parse


async def get_parser(request: Request) -> HumanParser:
    """The loaded model (what it parses, its label set)."""
    return running_services(request).parse.parser


async def get_parse_query(
    # described in the schema by the parse route itself (``classes`` as a list of names)
    request: Request,
    query: Annotated[ParseQuery, Query(include_in_schema=False)],
) -> ParseQuery:
    """The parse query, its class names checked against the loaded model's label set
    (400 ``bad_request`` for an unknown one, like any other bad query value)."""
    if query.class_names:
        try:
            query.check_classes(running_services(request).parse.parser.label_set)
        except ValueError:
            raise invalid_query("classes") from None
    check_fits_model(query, running_services(request).parse.parser)
    return query


async def get_request_id(request: Request) -> str:
    found = request_id(request.scope)
    assert found is not None, "RequestContextMiddleware sets it for every request"  # nosec B101 # narrows the type; the middleware sets it
    return found


async def guard_parse(request: Request) -> AsyncIterator[ClientIdentity]:
    """The abuse and overload checks (see ``abuse.guard``), then the route, then what its
    outcome means for the client's strikes. Every state-changing /api route depends on this."""
    guard = running_services(request).guard
    client = await guard.admit(request)
    try:
        yield client
    except UploadRejected as rejected:
        left = await guard.upload_rejected(client, rejected.reason)
        if left is not None:
            rejected.warn_strikes(left=left, ban_seconds=guard.bans.ban_seconds)
        raise
    except RetryLater as refusal:
        guard.refused(client, refusal.reason)
        raise
    else:
        await guard.upload_accepted(client)


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ParseServiceDep = Annotated[ParseService, Depends(get_parse_service)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
ParserDep = Annotated[HumanParser, Depends(get_parser)]
ParseQueryDep = Annotated[ParseQuery, Depends(get_parse_query)]
