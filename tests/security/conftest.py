"""Fixtures of the security suite: a live ``m2fp serve`` with its schema published and the
abuse limits raised (the scanners send hundreds of requests from one address)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.conftest import GENEROUS_LIMITS, LiveServer, running_server


@pytest.fixture(scope="module")
def docs_server(tiny_model_dir, tmp_path_factory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("security") / "server.log"
    env = {**GENEROUS_LIMITS, "M2FP_DOCS": "true"}
    with running_server(tiny_model_dir, log, env=env) as server:
        yield server
