"""The one https-or-loopback rule for URLs data is sent to."""

from __future__ import annotations

import pytest

from m2fp.url_policy import check_https_url, is_loopback_host


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T/B/x",
        "https://modelscope.cn",
        "http://127.0.0.1:9/x",
        "http://127.8.9.10/x",
        "http://[::1]:9/x",
        "http://localhost:9/x",
    ],
)
def test_https_and_loopback_http_are_accepted(url):
    assert check_https_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/secret",
        "http://10.0.0.1/secret",
        "http://localhost.example.org/secret",
        "ftp://example.org/secret",
        "https:///secret",
        "secret",
    ],
)
def test_other_urls_are_refused_without_echoing_them(url):
    with pytest.raises(ValueError, match="https://") as refused:
        check_https_url(url)
    assert "secret" not in str(refused.value)


def test_loopback_hosts():
    assert is_loopback_host("localhost") and is_loopback_host("::1")
    assert not is_loopback_host("example.org") and not is_loopback_host("0.0.0.0")
