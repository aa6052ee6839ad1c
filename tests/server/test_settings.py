"""Settings: safe defaults, and one clear line (never the value) for every unsafe setting."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest

from m2fp.server.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("M2FP_"):
            monkeypatch.delenv(name)


def test_defaults_are_the_documented_safe_ones():
    settings = load_settings()
    assert settings.rate_limit == "5/minute"
    assert settings.max_side == 1920
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert (settings.ban_after, settings.ban_seconds) == (3, 3600)
    assert settings.storage_uri.get_secret_value() == "memory://"
    assert settings.trusted_proxies == ()
    assert settings.cors_origins == ()
    assert settings.api_keys == ()
    assert settings.memory_alert_percent == 90
    assert settings.docs is False
    assert settings.client_id_mode == "hash"


def test_comma_lists_from_the_environment(monkeypatch):
    digest = hashlib.sha256(b"key").hexdigest()
    monkeypatch.setenv("M2FP_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16,::1")
    monkeypatch.setenv("M2FP_CORS_ORIGINS", "https://a.example, http://b.example:8080/")
    monkeypatch.setenv("M2FP_API_KEYS", digest.upper())
    monkeypatch.setenv("M2FP_STORAGE_URI", "redis://127.0.0.1:6379/0")
    settings = load_settings(model="/models/m2fp")
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
    )
    assert settings.cors_origins == ("https://a.example", "http://b.example:8080")
    assert settings.api_keys == (digest,)
    assert str(settings.model) == "/models/m2fp"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("M2FP_CORS_ORIGINS", "*", "M2FP_CORS_ORIGINS"),
        ("M2FP_CORS_ORIGINS", "https://ok.example,*", "M2FP_CORS_ORIGINS"),
        ("M2FP_CORS_ORIGINS", "https://a.example/path", "M2FP_CORS_ORIGINS"),
        ("M2FP_CORS_ORIGINS", "null", "M2FP_CORS_ORIGINS"),
        ("M2FP_TRUSTED_PROXIES", "*", "M2FP_TRUSTED_PROXIES"),
        ("M2FP_TRUSTED_PROXIES", "0.0.0.0/0", "M2FP_TRUSTED_PROXIES"),
        ("M2FP_TRUSTED_PROXIES", "10.0.0.0/8,::/0", "M2FP_TRUSTED_PROXIES"),
        ("M2FP_TRUSTED_PROXIES", "proxy.example", "M2FP_TRUSTED_PROXIES"),
        ("M2FP_RATE_LIMIT", "lots", "M2FP_RATE_LIMIT"),
        ("M2FP_RATE_LIMIT", "5/fortnight", "M2FP_RATE_LIMIT"),
        ("M2FP_STORAGE_URI", "file:///tmp/limits", "M2FP_STORAGE_URI"),
        ("M2FP_API_KEYS", "plain-text-key-0123", "M2FP_API_KEYS"),
        ("M2FP_ALERT_WEBHOOK", "http://hooks.example/secret-token", "M2FP_ALERT_WEBHOOK"),
        ("M2FP_LOG_SALT", "short", "M2FP_LOG_SALT"),
        ("M2FP_CLIENT_ID_MODE", "raw", "M2FP_CLIENT_ID_MODE"),
        ("M2FP_MODEL_SHA256", "abc", "M2FP_MODEL_SHA256"),
        ("M2FP_MAX_UPLOAD_BYTES", "0", "M2FP_MAX_UPLOAD_BYTES"),
        ("M2FP_MAX_CONCURRENCY", "0", "M2FP_MAX_CONCURRENCY"),
        ("M2FP_REQUEST_TIMEOUT", "-1", "M2FP_REQUEST_TIMEOUT"),
        ("M2FP_MEMORY_ALERT_PERCENT", "100", "M2FP_MEMORY_ALERT_PERCENT"),
        ("M2FP_MIN_SIZE", "not-a-number", "M2FP_MIN_SIZE"),
        ("M2FP_MAX_SIZE", "64", "M2FP_MAX_SIZE"),
        ("M2FP_DOCS", "perhaps", "M2FP_DOCS"),
    ],
)
def test_unsafe_or_bad_settings_fail_with_one_line(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    if len(value) > 8:
        assert value not in message  # values may be secrets


def test_settings_are_immutable():
    settings = Settings()
    with pytest.raises(ValueError):
        settings.max_side = 1  # type: ignore[misc]


def test_secrets_are_not_in_the_repr(monkeypatch):
    monkeypatch.setenv("M2FP_ALERT_WEBHOOK", "https://hooks.example/T000/very-secret")
    monkeypatch.setenv("M2FP_LOG_SALT", "a-long-secret-log-salt")
    text = repr(load_settings())
    assert "very-secret" not in text
    assert "a-long-secret-log-salt" not in text
