"""deploy/nginx: what the configuration promises, read block by block, and nginx's own check."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.nginx_config import (
    DEPLOY,
    HOST_CONF,
    TEMPLATE,
    Block,
    parse,
    placeholders,
    render,
    size_bytes,
)
from tests.deploy.stack import BINARIES

# The rendering committed as deploy/nginx/m2fp.conf: a host install with Let's Encrypt.
HOST_VALUES = {
    "NGINX_RUN_DIR": "/run",
    "NGINX_HTTP_PORT": "80",
    "NGINX_HTTPS_PORT": "443",
    "NGINX_SERVER_NAME": "example.com",
    "NGINX_TLS_CERT": "/etc/letsencrypt/live/example.com/fullchain.pem",
    "NGINX_TLS_KEY": "/etc/letsencrypt/live/example.com/privkey.pem",
    "NGINX_UPSTREAM_1": "127.0.0.1:8001",
    "NGINX_UPSTREAM_2": "127.0.0.1:8002",
}
MODERN_TLS = {"TLSv1.2", "TLSv1.3"}


@pytest.fixture(scope="module")
def http() -> Block:
    return parse(HOST_CONF.read_text()).blocks("http")[0]


def _servers(http: Block) -> tuple[Block, Block]:
    plain, tls = (
        [s for s in http.blocks("server") if (s.value("listen")[-1] == "ssl") == want]
        for want in (False, True)
    )
    assert len(plain) == 1 and len(tls) == 1
    return plain[0], tls[0]


def test_host_conf_is_the_template_rendered() -> None:
    template = TEMPLATE.read_text()
    assert placeholders(template) == HOST_VALUES.keys()
    assert HOST_CONF.read_text() == render(template, HOST_VALUES)


def test_core_dumps_off_and_no_version_or_access_log() -> None:
    root = parse(HOST_CONF.read_text())
    assert root.value("worker_rlimit_core") == ["0"]
    http = root.blocks("http")[0]
    assert http.value("server_tokens") == ["off"]
    (log,) = http.values("access_log")
    assert log[1] == "m2fp_json" and log[2] == "if=$m2fp_answered_by_nginx"  # nginx-made only
    _, tls = _servers(http)
    hidden = {args[0].lower() for args in tls.values("proxy_hide_header")}
    assert {"x-powered-by", "strict-transport-security"} <= hidden


def test_port_80_only_redirects_to_https(http: Block) -> None:
    plain, _ = _servers(http)
    assert plain.value("listen") == ["80"]
    (catch_all,) = [b for b in plain.blocks("location") if b.args == ["/"]]
    assert catch_all.value("return") == ["301", "https://$server_name$request_uri"]
    assert not any(b.values("proxy_pass") for b in plain.blocks("location"))


def test_tls_is_modern_with_hsts(http: Block) -> None:
    _, tls = _servers(http)
    assert tls.value("listen") == ["443", "ssl"]
    assert set(tls.value("ssl_protocols")) == MODERN_TLS
    ciphers = tls.value("ssl_ciphers")[0].split(":")
    assert ciphers and all(c.startswith("ECDHE-") for c in ciphers), "forward secrecy only"
    assert all("GCM" in c or "CHACHA20" in c for c in ciphers), "AEAD ciphers only"
    assert tls.value("ssl_session_tickets") == ["off"]
    (hsts,) = [a for a in tls.values("add_header") if a[0] == "Strict-Transport-Security"]
    max_age = int(hsts[1].split(";")[0].removeprefix("max-age="))
    assert max_age >= 365 * 86400 and hsts[-1] == "always"
    assert tls.value("ssl_certificate_key") == [HOST_VALUES["NGINX_TLS_KEY"]]


def test_forwarded_headers_overwrite_what_the_client_sent(http: Block) -> None:
    _, tls = _servers(http)
    headers = {args[0]: args[1] for args in tls.values("proxy_set_header")}
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert "$proxy_add_x_forwarded_for" not in HOST_CONF.read_text()
    for location in tls.blocks("location"):
        assert not location.values("proxy_set_header"), "would drop the server-level headers"


def test_body_limit_matches_the_service_and_nothing_spills_to_disk(http: Block) -> None:
    from m2fp.server.settings import Settings

    limit = size_bytes(http.value("client_max_body_size")[0])
    assert limit == Settings.model_fields["max_upload_bytes"].default
    buffered_in_memory = size_bytes(http.value("client_body_buffer_size")[0]) >= limit
    assert buffered_in_memory or http.values("proxy_request_buffering") == [["off"]]
    assert http.value("proxy_max_temp_file_size") == ["0"]


def test_upstream_has_several_replicas_and_skips_dead_ones(http: Block) -> None:
    (upstream,) = http.blocks("upstream")
    servers = upstream.values("server")
    assert len(servers) >= 2
    for args in servers:
        options = dict(a.split("=", 1) for a in args[1:])
        assert int(options["max_fails"]) >= 1 and options["fail_timeout"].endswith("s")
    _, tls = _servers(http)
    (root,) = [b for b in tls.blocks("location") if b.args == ["/"]]
    assert root.value("proxy_pass") == [f"http://{upstream.args[0]}"]


def test_limits_and_timeouts(http: Block) -> None:
    (zone,) = http.values("limit_req_zone")
    assert zone[0] == "$binary_remote_addr"
    zone_name = next(a for a in zone if a.startswith("zone=")).split("=")[1].split(":")[0]
    _, tls = _servers(http)
    assert tls.value("limit_req")[0] == f"zone={zone_name}"
    assert http.value("limit_req_status") == ["429"]
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert http.value(directive)
    for directive in ("proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout"):
        assert tls.value(directive)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_nginx_errors_follow_the_json_contract(http: Block, tls: bool) -> None:
    server = _servers(http)[tls]
    handled = {code for args in server.values("error_page") for code in args[:-2]}
    assert {"400", "405", "414", "494", "501"} <= handled
    if tls:
        assert {"408", "413", "429", "497", "500", "502", "504"} <= handled
    for location in server.blocks("location"):
        internal_uri = location.args[:1] == ["="] and location.args[1].startswith("/_m2fp_error/")
        if internal_uri:
            assert location.values("internal") == [[]]
        if location.args[0].startswith("@") or internal_uri:
            status, body = location.value("return")
            assert location.value("default_type") == ["application/json"]
            assert body.startswith('{"error":"') and '"request_id":"$request_id"' in body
            assert int(status) >= 400


def test_systemd_drop_in_disables_nginx_core_dumps() -> None:
    drop_in = (DEPLOY / "systemd" / "nginx-nocore.conf").read_text()
    assert "[Service]" in drop_in and "LimitCORE=0" in drop_in.splitlines()


@pytest.mark.skipif(BINARIES["nginx"] is None, reason="needs Debian's nginx (.ci/run)")
@pytest.mark.skipif(BINARIES["openssl"] is None, reason="needs openssl (.ci/run)")
def test_nginx_accepts_the_rendered_template(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(DEPLOY / "gen-dev-cert.sh"), str(tmp_path), "localhost"],
        check=True,
        capture_output=True,
    )
    values = {
        **HOST_VALUES,
        "NGINX_RUN_DIR": str(tmp_path),
        "NGINX_TLS_CERT": str(tmp_path / "tls.crt"),
        "NGINX_TLS_KEY": str(tmp_path / "tls.key"),
    }
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(TEMPLATE.read_text(), values))
    checked = subprocess.run(
        [BINARIES["nginx"], "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "warn" not in checked.stderr, checked.stderr
