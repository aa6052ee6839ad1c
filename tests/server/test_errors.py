"""The error contract: unknown routes and methods, every refusal a JSON body, the one
translation of the refusals that waiting cures, and the contract in the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2fp.server.abuse.bans import Banned
from m2fp.server.abuse.limit_storage import StorageUnavailable
from m2fp.server.abuse.rate_limit import RateLimited
from m2fp.server.app import create_app
from m2fp.server.errors import REASONS, ErrorBody, error_responses, retry_later_error
from m2fp.server.ops.memory_watchdog import MemoryShedding
from m2fp.server.parse.queue import InferenceTimeout, Overloaded
from m2fp.server.retry_later import RetryLater
from tests.server.conftest import app_client, tiny_settings

pytestmark = pytest.mark.anyio
PARSE = "/api/v1/parse"


async def test_errors_for_unknown_routes_and_methods(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        missing = await client.get("/private/alice.png")
        wrong = await client.delete(PARSE)
        metrics = (await client.get("/metrics")).text
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert "alice" not in missing.text
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert 'route="<unmatched>"' in metrics
    assert "alice" not in metrics


REFUSALS = {
    RateLimited: (429, "rate_limited"),
    Banned: (403, "banned"),
    StorageUnavailable: (503, "storage_unavailable"),
    Overloaded: (503, "overloaded"),
    InferenceTimeout: (503, "timeout"),
    MemoryShedding: (503, "overloaded"),
}


def test_every_refusal_that_waiting_cures_is_a_retry_later_of_the_contract():
    assert set(RetryLater.__subclasses__()) == set(REFUSALS)
    for kind, (status, reason) in REFUSALS.items():
        error = retry_later_error(kind(retry_after=7))
        assert (error.status, error.reason) == (status, reason)
        assert error.reason in REASONS
        assert error.headers == {"Retry-After": "7"}


@pytest.mark.parametrize(("seconds", "header"), [(0, "1"), (0.2, "1"), (1.5, "2"), (3600, "3600")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_1(seconds, header):
    assert retry_later_error(Overloaded(retry_after=seconds)).headers["Retry-After"] == header


def test_retry_after_is_built_in_one_place():
    server = Path(__file__).parents[2] / "src" / "m2fp" / "server"
    writers = {
        path.relative_to(server).as_posix()
        for path in server.rglob("*.py")
        if '"Retry-After":' in path.read_text()
    }
    assert writers == {"errors.py"}


async def test_a_refusal_raised_anywhere_becomes_the_error_body_with_retry_after(tiny_parser):
    app = create_app(tiny_settings(), parser=tiny_parser)

    @app.get("/refuse")
    async def refuse() -> None:
        raise StorageUnavailable

    async with app_client(app) as client:
        response = await client.get("/refuse")
    assert response.status_code == 503
    assert response.json() == {
        "error": "storage_unavailable",
        "message": REASONS["storage_unavailable"][1],
        "request_id": response.headers["x-request-id"],
    }
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"


def test_error_responses_document_each_status_once_and_a_default():
    responses = error_responses("payload_too_large", "too_many_pixels", "banned")
    assert set(responses) == {413, 403, "default"}
    assert responses[413]["description"] == "payload_too_large, too_many_pixels"
    assert all(entry["model"] is ErrorBody for entry in responses.values())


async def test_error_bodies_match_their_schema(tiny_parser):
    async with app_client(create_app(tiny_settings(), parser=tiny_parser)) as client:
        missing = await client.get("/nowhere")
    assert ErrorBody.model_validate(missing.json()).error == "not_found"
    enum = ErrorBody.model_json_schema()["properties"]["error"]["enum"]
    assert enum == list(REASONS)


def test_the_strike_warning_is_in_the_published_error_schema(tiny_parser):
    schema = create_app(tiny_settings(), parser=tiny_parser).openapi()
    properties = schema["components"]["schemas"]["ErrorBody"]["properties"]
    assert {"strikes_left", "ban_seconds"} <= set(properties)
    assert "strikes_left" not in schema["components"]["schemas"]["ErrorBody"].get("required", [])
