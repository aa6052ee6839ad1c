"""The app in process (httpx ASGI transport): lifespan and the services it owns, HEAD beside
every GET, the schema switch."""

from __future__ import annotations

import warnings

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from m2fp.server.app import create_app
from m2fp.server.app_state import app_state
from tests.server.conftest import app_client, tiny_settings
from tests.utils.images import png_bytes

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"
PNG_HEADERS = {"content-type": "image/png"}


async def test_not_ready_before_the_model_is_loaded(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    transport = httpx.ASGITransport(app=app)  # no lifespan: the model is not in place yet
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/readyz")).status_code == 503
        response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
    assert (response.status_code, response.json()["error"]) == (503, "overloaded")


async def test_lifespan_loads_the_model_from_settings(tiny_model_dir):
    app = create_app(tiny_settings(model=tiny_model_dir))
    async with app_client(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        response = await client.post(PARSE, content=png_bytes(), headers=PNG_HEADERS)
    assert response.status_code == 200


@pytest.mark.parametrize("docs", [False, True])
async def test_docs_only_when_enabled(tiny_parser, docs):
    async with app_client(create_app(tiny_settings(docs=docs), parser=tiny_parser)) as client:
        openapi = await client.get("/openapi.json")
        page = await client.get("/docs")
    assert openapi.status_code == (200 if docs else 404)
    assert page.status_code == 404  # no CDN-backed HTML docs page, ever
    if docs:
        assert openapi.json()["info"] == {"title": "m2fp", "version": "v1"}


async def test_lifespan_owns_the_process_wide_services(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)
    state = app_state(app)
    assert state.services is None  # nothing runs before start-up
    async with app_client(app) as client:
        services = state.services
        assert services is not None
        assert services.guard.watchdog is services.watchdog
        assert services.watchdog._task is not None  # sampling
        assert (await client.get("/readyz")).status_code == 200
    assert state.services is None
    assert services.watchdog._task is None  # stopped at shutdown
    assert services.parse.queue._executor._shutdown


GET_ROUTES = ["/", "/static/app.js", "/healthz", "/readyz", "/metrics", "/api/v1/classes"]


@pytest.mark.parametrize("path", GET_ROUTES)
async def test_head_is_answered_by_every_get_route(tiny_parser, path):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        got = await client.get(path)
        head = await client.head(path)
    assert got.status_code == 200
    assert head.status_code == 200  # not 405; uvicorn drops the body (test_live_server.py)
    varying = {"x-request-id", "content-length"} if path == "/metrics" else {"x-request-id"}
    assert {k: v for k, v in head.headers.items() if k not in varying} == {
        k: v for k, v in got.headers.items() if k not in varying
    }


def test_every_get_route_has_a_head_twin_outside_the_schema(tiny_parser):
    app = create_app(tiny_settings(docs=True), parser=tiny_parser)
    routes = [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]
    gets = {route.path for route in routes if "GET" in route.methods}
    heads = {route.path for route in routes if route.methods == {"HEAD"}}
    assert gets == heads
    assert all(not route.include_in_schema for route in routes if route.methods == {"HEAD"})
    assert not any("head" in operations for operations in app.openapi()["paths"].values())


async def test_readyz_and_the_start_up_log_say_how_the_model_computes(tiny_model_dir, caplog):
    caplog.set_level("INFO", logger="m2fp.server.app")
    app = create_app(tiny_settings(model=tiny_model_dir, device="cpu"))
    async with app_client(app) as client:
        ready = (await client.get("/readyz")).json()
        compute = app_state(app).services.compute
    assert set(ready) == {"status", "compute"} and ready["status"] == "ready"
    # the thread plan is reported too: what decided it depends on the machine's limits
    assert ready["compute"].pop("threads") >= 1
    assert ready["compute"].pop("threads_source")
    assert ready["compute"] == {
        "device": "cpu",
        "engine": "torch",
        "precision": "fp32",
        "accuracy": "exact",
    }
    # the queue sized itself from the device (the CPU: one parse at a time, eight waiting)
    assert (compute["max_concurrency"], compute["max_queue"]) == (1, 8)
    started = [r.getMessage() for r in caplog.records if "model ready" in r.getMessage()]
    assert len(started) == 1
    assert "device cpu, engine torch, precision fp32, accuracy exact" in started[0]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/parse/"), ("GET", "/healthz/"), ("GET", "/api/v1/classes/")],
)
async def test_no_redirect_is_built_from_client_headers(tiny_parser, method, path):
    """A trailing slash is an unknown path (404), not a redirect to ``http://<Host>/...``: a
    client that follows a 307 would re-send the photo in clear text to whatever Host said."""
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        response = await client.request(method, path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "location" not in response.headers
    assert "evil.example" not in response.text


def test_building_an_app_leaves_the_process_warning_filters_alone(tiny_parser):
    """An app factory must not change how the rest of the process treats warnings (the
    decoder's own pixel bound refuses bombs, in every interface alike)."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        before = list(warnings.filters)
        create_app(tiny_settings(), parser=tiny_parser)
        assert warnings.filters == before
