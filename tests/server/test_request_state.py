"""The per-request values in the ASGI scope, through their accessors only."""

from __future__ import annotations

from m2fp.server.request_state import (
    client_ip,
    error_reason,
    request_id,
    set_client_ip,
    set_error_reason,
    set_request_id,
)


def test_unset_values_are_none_and_the_scope_gets_a_state():
    scope: dict = {"type": "http"}
    assert (client_ip(scope), request_id(scope), error_reason(scope)) == (None, None, None)
    assert scope["state"] == {}


def test_client_ip_is_the_resolved_address_else_the_peer():
    scope: dict = {"type": "http", "client": ("10.0.0.1", 5000)}
    assert client_ip(scope) == "10.0.0.1"
    set_client_ip(scope, "198.51.100.9")
    assert client_ip(scope) == "198.51.100.9"


def test_values_round_trip_and_share_the_state_starlette_reads():
    scope: dict = {"type": "http", "state": {}}
    set_request_id(scope, "ab" * 16)
    set_error_reason(scope, "banned")
    assert (request_id(scope), error_reason(scope)) == ("ab" * 16, "banned")
    # request.state in a route is a view of this dictionary
    from starlette.requests import Request

    assert Request(scope).state.request_id == "ab" * 16
