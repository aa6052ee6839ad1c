"""Settings: safe defaults, and one clear line (never the value) for every unsafe setting."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest

from m2fp import ParserOptions
from m2fp.compute.parser_options import MAX_SIZE_RANGE, MIN_SIZE_RANGE
from m2fp.server.abuse.client_identity import ApiKeys
from m2fp.server.ops.alerts import AlertWebhook
from m2fp.server.settings import Settings, SettingsError, load_settings
from tests.compute.test_parser_options import SIZE_PROBES
from tests.server.abuse.test_bans import NONSENSE_POLICIES
from tests.server.abuse.test_client_identity import REFUSED_PROXIES
from tests.server.abuse.test_rate_limit import BAD_LIMITS, UNSUPPORTED_STORAGE
from tests.server.ops.test_alerts import REFUSED_WEBHOOKS
from tests.server.parse.test_queue import NONSENSE_LIMITS
from tests.utils.without_torch import run_without_torch


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
        ("M2FP_UPLOAD_TIMEOUT", "0", "M2FP_UPLOAD_TIMEOUT"),
        ("M2FP_HEADER_TIMEOUT", "0.1", "M2FP_HEADER_TIMEOUT"),
        ("M2FP_HEADER_TIMEOUT", "3600", "M2FP_HEADER_TIMEOUT"),
        ("M2FP_MAX_CONNECTIONS", "1", "M2FP_MAX_CONNECTIONS"),
        ("M2FP_UPLOAD_TIMEOUT", "86400", "M2FP_UPLOAD_TIMEOUT"),
        ("M2FP_MEMORY_ALERT_PERCENT", "100", "M2FP_MEMORY_ALERT_PERCENT"),
        ("M2FP_MIN_SIZE", "not-a-number", "M2FP_MIN_SIZE"),
        ("M2FP_MAX_SIZE", "64", "M2FP_MAX_SIZE"),
        ("M2FP_DOCS", "perhaps", "M2FP_DOCS"),
        ("M2FP_THREADS", "0", "M2FP_THREADS"),
        ("M2FP_THREADS", "4096", "M2FP_THREADS"),
        ("M2FP_THREADS", "some", "M2FP_THREADS"),
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


def refused_line(monkeypatch, name: str, value: str) -> str:
    """The one line ``load_settings`` refuses ``name=value`` with; it names the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    monkeypatch.delenv(name)
    message = str(caught.value)
    assert message.startswith(f"invalid {name}: ") or name in message
    assert "\n" not in message
    return message


# The rules below are the components' own (their tests check them); here: that the settings
# apply exactly those rules, and name the variable.


@pytest.mark.parametrize("name", ["M2FP_RATE_LIMIT", "M2FP_API_KEY_RATE_LIMIT"])
@pytest.mark.parametrize("text", BAD_LIMITS)
def test_rate_limits_are_checked_by_the_rate_limiter_rule(monkeypatch, name, text):
    assert "must look like '5/minute'" in refused_line(monkeypatch, name, text)


@pytest.mark.parametrize("uri", UNSUPPORTED_STORAGE)
def test_storage_uri_is_checked_by_the_storage_rule(monkeypatch, uri):
    assert "must start with one of memory://" in refused_line(monkeypatch, "M2FP_STORAGE_URI", uri)


@pytest.mark.parametrize(("ban_after", "ban_seconds"), NONSENSE_POLICIES)
def test_ban_policy_is_checked_by_the_ban_list_rule(monkeypatch, ban_after, ban_seconds):
    name, value = (
        ("M2FP_BAN_AFTER", ban_after) if ban_after != 3 else ("M2FP_BAN_SECONDS", ban_seconds)
    )
    assert "must be between 1 and" in refused_line(monkeypatch, name, str(value))


@pytest.mark.parametrize(("concurrency", "queue_size", "timeout"), NONSENSE_LIMITS)
def test_queue_limits_are_checked_by_the_queue_rule(monkeypatch, concurrency, queue_size, timeout):
    if concurrency != 1:
        name, value = "M2FP_MAX_CONCURRENCY", concurrency
    elif queue_size != 1:
        name, value = "M2FP_MAX_QUEUE", queue_size
    else:
        name, value = "M2FP_REQUEST_TIMEOUT", timeout
    assert "must be" in refused_line(monkeypatch, name, str(value))


@pytest.mark.parametrize("percent", ["0", "-1", "100", "150", "nan"])
def test_memory_alert_percent_is_checked_by_the_watchdog_rule(monkeypatch, percent):
    line = refused_line(monkeypatch, "M2FP_MEMORY_ALERT_PERCENT", percent)
    assert "between 0 and 100" in line


@pytest.mark.parametrize("url", REFUSED_WEBHOOKS)
def test_alert_webhook_is_checked_by_the_url_policy(monkeypatch, url):
    line = refused_line(monkeypatch, "M2FP_ALERT_WEBHOOK", url)
    assert "must be an https:// URL" in line
    assert "secret" not in line


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example/T/x", "http://127.0.0.2:9/x", "http://[::1]:9/x", "http://localhost/x"],
)
def test_alert_webhook_accepts_what_the_alerts_accept(monkeypatch, url):
    monkeypatch.setenv("M2FP_ALERT_WEBHOOK", url)
    assert load_settings().alert_webhook.get_secret_value() == url
    AlertWebhook(url=url)


def test_api_key_digests_are_normalised_as_the_key_check_does(monkeypatch):
    digest = hashlib.sha256(b"key").hexdigest()
    monkeypatch.setenv("M2FP_API_KEYS", f" {digest.upper()} ")
    settings = load_settings()
    assert settings.api_keys == (digest,)
    assert ApiKeys(digests=settings.api_keys).match("key") == digest
    line = refused_line(monkeypatch, "M2FP_API_KEYS", "plain-text-key-0123")
    assert "sha256 hex digests" in line


def test_named_defaults_are_the_library_defaults():
    from m2fp.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE

    settings = Settings()
    assert (settings.min_size, settings.max_size) == (DEFAULT_MIN_SIZE, DEFAULT_MAX_SIZE)
    assert settings.max_pixels == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize(("field", "value"), SIZE_PROBES)
def test_size_variables_follow_the_parser_options_rule(monkeypatch, field, value):
    # the other size at its range's far end, so that only the probed rule can refuse
    others = {"min_size": MIN_SIZE_RANGE[0], "max_size": MAX_SIZE_RANGE[1]}
    values = {**others, field: value}
    try:
        ParserOptions(**values)
    except ValueError:
        accepted = False
    else:
        accepted = True
    for name, number in values.items():
        monkeypatch.setenv(f"M2FP_{name.upper()}", str(number))
    if accepted:
        assert getattr(load_settings(), field) == value
    else:
        line = refused_line(monkeypatch, f"M2FP_{field.upper()}", str(value))
        assert "must be a whole number from" in line


@pytest.mark.parametrize("items", REFUSED_PROXIES)
def test_trusted_proxies_are_checked_by_the_client_identity_rule(monkeypatch, items):
    line = refused_line(monkeypatch, "M2FP_TRUSTED_PROXIES", ",".join(items))
    assert "every client" in line or "IP addresses or CIDR" in line


def test_min_size_above_max_size_names_both_variables(monkeypatch):
    monkeypatch.setenv("M2FP_MIN_SIZE", "800")
    line = refused_line(monkeypatch, "M2FP_MAX_SIZE", "700")
    assert "M2FP_MAX_SIZE must be at least M2FP_MIN_SIZE" in line


def test_guard_settings_fail_closed_with_one_line(monkeypatch):
    monkeypatch.setenv("M2FP_API_KEYS_REQUIRED", "true")
    with pytest.raises(SettingsError, match="M2FP_API_KEYS_REQUIRED needs"):
        load_settings()
    monkeypatch.delenv("M2FP_API_KEYS_REQUIRED")
    monkeypatch.setenv("M2FP_API_KEY_RATE_LIMIT", "lots")
    with pytest.raises(SettingsError, match="M2FP_API_KEY_RATE_LIMIT") as refused:
        load_settings()
    assert "lots" not in str(refused.value)
    monkeypatch.delenv("M2FP_API_KEY_RATE_LIMIT")
    settings = load_settings()
    assert (settings.api_key_rate_limit, settings.api_keys_required) == ("60/minute", False)


def test_compute_defaults_and_variables(monkeypatch):
    settings = load_settings()
    assert (settings.device, settings.engine.value, settings.precision.value) == (
        "auto",
        "torch",
        "fp32",
    )
    assert (settings.max_concurrency, settings.max_queue) == (None, None)  # from the device
    monkeypatch.setenv("M2FP_DEVICE", "CUDA:1")
    monkeypatch.setenv("M2FP_PRECISION", "bf16")
    settings = load_settings()
    assert (settings.device, settings.precision.value) == ("cuda:1", "bf16")


def test_command_line_flags_override_the_variables(monkeypatch):
    monkeypatch.setenv("M2FP_ENGINE", "openvino")
    monkeypatch.setenv("M2FP_PRECISION", "int8")
    settings = load_settings(engine="torch", precision="fp32", device="cpu")
    assert (settings.device, settings.engine.value, settings.precision.value) == (
        "cpu",
        "torch",
        "fp32",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"M2FP_DEVICE": "gpu"}, "invalid M2FP_DEVICE: device must be one of"),
        ({"M2FP_ENGINE": "tensorrt"}, "invalid M2FP_ENGINE"),
        ({"M2FP_PRECISION": "int4"}, "invalid M2FP_PRECISION"),
        ({"M2FP_PRECISION": "int8"}, "M2FP_PRECISION/M2FP_ENGINE: precision int8 runs on"),
        (
            {"M2FP_ENGINE": "openvino", "M2FP_DEVICE": "cuda"},
            "M2FP_ENGINE/M2FP_DEVICE: engine openvino runs on the CPU",
        ),
        ({"M2FP_DEVICE": "cpu", "M2FP_PRECISION": "fp16"}, "fp16 needs a CUDA device"),
    ],
)
def test_impossible_compute_is_one_line(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message) as info:
        load_settings()
    assert "\n" not in str(info.value)


def test_settings_load_and_refuse_bad_sizes_where_torch_is_absent():
    # the slim runtime's server checks its settings without torch installed
    done = run_without_torch(
        """
        import os
        from m2fp.server.settings import SettingsError, load_settings
        load_settings(engine="openvino")
        os.environ["M2FP_MAX_SIZE"] = "64"
        try:
            load_settings(engine="openvino")
        except SettingsError as error:
            print("refused:", error)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout
    assert "M2FP_MAX_SIZE" in done.stdout


# Secret settings as mounted files (M2FP_*_FILE): read once, then the value's own rule applies.


@pytest.mark.parametrize(
    ("name", "secret", "attribute"),
    [
        ("M2FP_LOG_SALT", "a-long-secret-log-salt", "log_salt"),
        ("M2FP_ALERT_WEBHOOK", "https://hooks.example/T000/very-secret", "alert_webhook"),
    ],
)
def test_secret_settings_come_from_their_file(monkeypatch, tmp_path, name, secret, attribute):
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    monkeypatch.setenv(f"{name}_FILE", str(path))
    assert getattr(load_settings(), attribute).get_secret_value() == secret
    monkeypatch.setenv(name, secret)
    message = refused_line(monkeypatch, f"{name}_FILE", str(path))
    assert f"set only one of {name} and {name}_FILE" in message and secret not in message


def test_a_secret_file_that_cannot_be_read_stops_the_start(monkeypatch, tmp_path):
    message = refused_line(monkeypatch, "M2FP_LOG_SALT_FILE", str(tmp_path / "absent"))
    assert "M2FP_LOG_SALT_FILE: the file" in message and "does not exist" in message


def test_a_salt_from_a_file_meets_the_salt_rule(monkeypatch, tmp_path):
    path = tmp_path / "salt"
    path.write_text("short-salt-1\n")
    monkeypatch.setenv("M2FP_LOG_SALT_FILE", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message == "invalid M2FP_LOG_SALT: must be at least 16 characters"


def test_an_empty_webhook_file_means_no_webhook(monkeypatch, tmp_path):
    """The scan CronJob mounts the key whether or not the operator set a webhook."""
    path = tmp_path / "webhook"
    path.write_text("\n")
    monkeypatch.setenv("M2FP_ALERT_WEBHOOK_FILE", str(path))
    assert load_settings().alert_webhook is None


def test_storage_password_file_completes_the_redis_address(monkeypatch, tmp_path):
    path = tmp_path / "redis-password"
    path.write_text("p@ss/word:with%odd\n")
    monkeypatch.setenv("M2FP_STORAGE_URI", "redis://m2fp-redis:6379/0")
    monkeypatch.setenv("M2FP_STORAGE_PASSWORD_FILE", str(path))
    uri = load_settings().storage_uri.get_secret_value()
    assert uri == "redis://:p%40ss%2Fword%3Awith%25odd@m2fp-redis:6379/0"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (None, "memory:// takes no password"),
        ("redis://:inline-pass@m2fp-redis:6379/0", "already holds credentials"),
        ("redis://user@m2fp-redis:6379/0", "already holds credentials"),
    ],
)
def test_storage_password_file_refuses_an_address_it_cannot_complete(
    monkeypatch, tmp_path, uri, reason
):
    path = tmp_path / "redis-password"
    path.write_text("file-password-123\n")
    if uri:
        monkeypatch.setenv("M2FP_STORAGE_URI", uri)
    message = refused_line(monkeypatch, "M2FP_STORAGE_PASSWORD_FILE", str(path))
    assert reason in message
    assert "file-password-123" not in message and "inline-pass" not in message


def test_an_empty_storage_password_file_is_refused(monkeypatch, tmp_path):
    path = tmp_path / "redis-password"
    path.write_text("")
    monkeypatch.setenv("M2FP_STORAGE_URI", "redis://m2fp-redis:6379/0")
    assert "password is empty" in refused_line(monkeypatch, "M2FP_STORAGE_PASSWORD_FILE", str(path))
