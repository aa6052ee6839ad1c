"""Webhook alerts against a real loopback HTTP server: payload, debounce, failures."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from m2fp.server.ops.alerts import AlertWebhook
from tests.utils.webhook_receiver import WebhookReceiver


def test_alert_is_posted_as_slack_json_and_debounced(clock):
    with WebhookReceiver() as receiver:
        webhook = AlertWebhook(url=receiver.url, min_interval=600, clock=clock)
        assert asyncio.run(webhook.send("memory high")) is True
        assert asyncio.run(webhook.send("memory still high")) is False
        clock.advance(599)
        assert asyncio.run(webhook.send("memory still high")) is False
        clock.advance(1)
        assert asyncio.run(webhook.send("memory high again")) is True
    assert receiver.posts == [{"text": "memory high"}, {"text": "memory high again"}]
    assert all(ct.startswith("application/json") for ct in receiver.content_types)


def test_webhook_error_is_logged_without_the_url_and_never_raised(clock, caplog):
    with WebhookReceiver(status=500) as receiver:
        webhook = AlertWebhook(url=receiver.url, clock=clock)
        with caplog.at_level(logging.WARNING):
            assert asyncio.run(webhook.send("memory high")) is False
    assert "HTTP 500" in caplog.text
    assert "secret-token" not in caplog.text
    assert len(receiver.posts) == 1


def test_unreachable_webhook_is_logged_and_debounced(clock, caplog):
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    webhook = AlertWebhook(url=f"http://127.0.0.1:{port}/secret-token", timeout=2, clock=clock)
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(webhook.send("memory high")) is False
        assert asyncio.run(webhook.send("memory high")) is False  # not retried at once
    assert caplog.text.count("alert webhook failed: ConnectError") == 1
    assert "secret-token" not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T/B/x",
        "http://127.0.0.1:9/x",
        "http://[::1]:9/x",
        "http://localhost:9/x",
    ],
)
def test_https_or_loopback_http_is_accepted(url):
    assert AlertWebhook(url=url)._url == url


REFUSED_WEBHOOKS = ["http://hooks.example.org/secret", "ftp://example.org/x", "https:///x", "token"]


@pytest.mark.parametrize("url", REFUSED_WEBHOOKS)
def test_other_urls_are_refused_without_echoing_them(url):
    # the rule is m2fp.url_policy's; the setting's name is added by Settings: test_settings.py
    with pytest.raises(ValueError, match="must be an https:// URL") as refused:
        AlertWebhook(url=url)
    assert "secret" not in str(refused.value)
