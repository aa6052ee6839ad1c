"""``m2fp scan`` against deliberately weakened copies of the service: each weakness is caught
by the check made for it (and the untouched service passes the same checks)."""

from __future__ import annotations

import pytest

from m2fp.scan.runner import run_scan
from m2fp.scan.target import target_for
from m2fp.server.app import create_app
from tests.scan import weak_servers
from tests.server.conftest import tiny_settings

HTTP_CHECKS = ["security_headers", "cors", "cross_site_post", "error_bodies", "trailing_slash",
               "host_header", "hostile_uploads"]  # fmt: skip

# the probes whose refusal would repeat the file name (the duplicate boundary is refused from
# the headers, before the name is read)
ECHOED_UPLOADS = {
    "upload_wrong_magic", "upload_polyglot", "upload_bomb", "upload_truncated",
    "upload_scan_bomb", "upload_short_data", "upload_duplicate_disposition",
}  # fmt: skip

WEAKNESSES = {
    "drop_nosniff": (weak_servers.drop_nosniff, {"security_headers"}),
    "leak_versions": (weak_servers.leak_versions, {"security_headers"}),
    "open_cors": (weak_servers.open_cors, {"cors"}),
    "allow_cross_site": (weak_servers.allow_cross_site, {"cross_site_post"}),
    "echo_filename": (weak_servers.echo_filename, ECHOED_UPLOADS),
    "redirect_slashes": (weak_servers.redirect_slashes, {"trailing_slash", "host_header"}),
    "last_boundary_wins": (weak_servers.last_boundary_wins, {"upload_duplicate_boundary"}),
}


def app(tiny_parser):
    settings = tiny_settings(rate_limit="1000/minute", ban_after=1000)
    return create_app(settings, parser=tiny_parser)


def failed(url: str, checks: list[str]) -> set[str]:
    report = run_scan(target_for(url), checks)
    return {result.name for result in report.results if not result.passed}


def test_the_service_itself_passes_the_http_checks(tiny_parser):
    with weak_servers.weakened_server(app(tiny_parser), lambda a: a) as url:
        assert failed(url, HTTP_CHECKS) == set()


@pytest.mark.parametrize("name", sorted(WEAKNESSES))
def test_each_weakness_is_caught(tiny_parser, name):
    weakness, expected = WEAKNESSES[name]
    with weak_servers.weakened_server(app(tiny_parser), weakness) as url:
        assert failed(url, HTTP_CHECKS) == expected
