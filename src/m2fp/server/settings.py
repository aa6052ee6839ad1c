"""Every knob of the service in one pydantic-settings class that refuses unsafe values.

All fields come from ``M2FP_*`` environment variables. Unsafe or nonsensical combinations
(CORS ``*``, trusting every proxy, a rate limit ``limits`` cannot parse, a plaintext API key...)
fail at start-up with one line naming the variable, never echoing its value (it may be secret).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from m2fp.imaging import DEFAULT_MAX_PIXELS

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CommaList = Annotated[tuple[str, ...], NoDecode]

MIB = 1024 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; ``str()`` is one line for the operator."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseSettings):
    """Configuration of ``m2fp serve`` (env prefix ``M2FP_``). Defaults are the safe choice."""

    model_config = SettingsConfigDict(
        env_prefix="M2FP_", case_sensitive=False, extra="ignore", frozen=True
    )

    # model and inference
    model: Path | None = None
    model_sha256: str | None = None
    model_key: SecretStr | None = None
    model_key_file: Path | None = None
    precision: Literal["fp32", "bf16"] = "fp32"
    min_size: int = Field(640, ge=32, le=4096)
    max_size: int = Field(1333, ge=32, le=8192)
    # uploads
    max_upload_bytes: int = Field(10 * MIB, ge=1024, le=200 * MIB)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=200_000_000)
    max_side: int = Field(1920, ge=64, le=16384)
    # abuse and overload (enforced by the rate-limit, ban, API-key and limiter layers)
    rate_limit: str = "5/minute"
    ban_after: int = Field(3, ge=1, le=1000)
    ban_seconds: int = Field(3600, ge=1, le=30 * 86400)
    storage_uri: SecretStr = SecretStr("memory://")
    api_keys: CommaList = ()
    api_key_rate_limit: str = "60/minute"
    api_keys_required: bool = False
    max_concurrency: int = Field(1, ge=1, le=64)
    max_queue: int = Field(8, ge=0, le=1000)
    request_timeout: float = Field(60.0, gt=0, le=3600)
    memory_alert_percent: float = Field(90.0, gt=0, lt=100)
    alert_webhook: SecretStr | None = None
    # HTTP
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    cors_origins: CommaList = ()
    docs: bool = False
    # audit logs
    client_id_mode: Literal["hash", "truncate"] = "hash"
    log_salt: SecretStr | None = None

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("model_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_HEX.fullmatch(value.lower()):
            raise ValueError("must be 64 hex digits")
        return value.lower() if value else None

    @field_validator("rate_limit", "api_key_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must look like '5/minute' or '10/hour;100/day'") from None
        return value

    @field_validator("storage_uri")
    @classmethod
    def _storage(cls, value: SecretStr) -> SecretStr:
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in STORAGE_SCHEMES:
            schemes = ", ".join(f"{s}://" for s in STORAGE_SCHEMES)
            raise ValueError(f"must start with one of {schemes}")
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(SHA256_HEX.fullmatch(key.lower()) for key in value):
            raise ValueError("must list sha256 hex digests of the keys, never the keys themselves")
        return tuple(key.lower() for key in value)

    @field_validator("alert_webhook")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        url = urlsplit(value.get_secret_value())
        loopback = url.scheme == "http" and url.hostname in LOOPBACK_HOSTS
        if not url.hostname or (url.scheme != "https" and not loopback):
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        items = _split(value)
        if not isinstance(items, tuple):
            return items
        networks = []
        for item in items:
            if item == "*":
                raise ValueError("'*' would trust every client to forge its address")
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError("must be IP addresses or CIDR networks") from None
            if network.prefixlen == 0:
                raise ValueError("a /0 network would trust every client to forge its address")
            networks.append(network)
        return tuple(networks)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        origins = tuple(origin.rstrip("/").lower() for origin in value)
        for origin in origins:
            if origin == "*":
                raise ValueError("'*' would let every website call the API; list origins")
            url = urlsplit(origin)
            if url.scheme not in ("https", "http") or not url.hostname or url.path or url.query:
                raise ValueError("must be origins such as https://example.org (no path)")
        return origins

    @field_validator("log_salt")
    @classmethod
    def _salt(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> Settings:
        if self.max_size < self.min_size:
            raise ValueError("M2FP_MAX_SIZE must be at least M2FP_MIN_SIZE")
        return self

    @model_validator(mode="after")
    def _required_keys(self) -> Settings:
        if self.api_keys_required and not self.api_keys:
            raise ValueError("M2FP_API_KEYS_REQUIRED needs at least one digest in M2FP_API_KEYS")
        return self


def load_settings(*, model: str | None = None, model_key_file: str | None = None) -> Settings:
    """``Settings`` from the environment; ``model`` and ``model_key_file`` override
    ``M2FP_MODEL`` and ``M2FP_MODEL_KEY_FILE``.

    Raises:
        SettingsError: one line naming the first bad variable, without its value.
    """
    try:
        overrides = {"model": model, "model_key_file": model_key_file}
        return Settings(**{k: v for k, v in overrides.items() if v})
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        fields = [str(part) for part in error["loc"] if isinstance(part, str)]
        name = f"M2FP_{fields[0].upper()}" if fields else "settings"
        raise SettingsError(f"invalid {name}: {message}") from None
