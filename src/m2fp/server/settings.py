"""Every knob of the service in one pydantic-settings class that refuses unsafe values.

All fields come from ``M2FP_*`` environment variables; the secret ones (log salt, alert webhook,
the storage's password) also from a mounted file named by ``M2FP_<NAME>_FILE``, read once here
(``secret_file``) so that the value never sits in the environment. Unsafe or nonsensical
combinations (CORS ``*``, trusting every proxy, a rate limit ``limits`` cannot parse, a plaintext
API key...) fail at start-up with one line naming the variable, never echoing its value (it
may be secret).

Each rule lives with the component that uses the value (``check_*`` in ``abuse/``, ``parse/``,
``ops/``, ``middleware/`` and the library); the validators here only call them, and
``load_settings`` adds the variable's name to their message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from m2fp.compute.options import (
    DEFAULT_DEVICE,
    ComputeChoiceError,
    Engine,
    Precision,
    check_compute,
    check_device,
)
from m2fp.compute.parser_options import (
    ParserOptionError,
    check_max_pixels,
    check_max_size,
    check_min_size,
    check_sizes,
)
from m2fp.compute.threads import check_threads
from m2fp.defaults import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIZE,
    DEFAULT_MIN_SIZE,
)
from m2fp.server.abuse.bans import check_ban_after, check_ban_seconds
from m2fp.server.abuse.client_identity import (
    IPNetwork,
    check_api_key_digests,
    check_api_key_policy,
    check_trusted_proxies,
)
from m2fp.server.abuse.limit_storage import check_storage_uri, with_password
from m2fp.server.abuse.rate_limit import parse_rate_limit
from m2fp.server.http_protocol import check_header_timeout, check_max_connections
from m2fp.server.middleware.cors import check_origins
from m2fp.server.ops.audit_log import check_log_salt
from m2fp.server.ops.memory_watchdog import check_alert_percent
from m2fp.server.parse.queue import check_max_concurrency, check_max_queue, check_timeout
from m2fp.server.parse.upload_reader import check_upload_timeout
from m2fp.server.secret_file import SecretFileError, read_secret_file
from m2fp.url_policy import check_https_url
from m2fp.weights.sha256_pin import sha256_pin

CommaList = Annotated[tuple[str, ...], NoDecode]

MIB = 1024 * 1024


def _unless_none(check):
    """``check`` for a setting whose None means "chosen from the device"."""
    return lambda value: value if value is None else check(value)


def _size_rule(check):
    """``check`` with its message in the variable's terms: ``load_settings`` names the
    variable, so the reason alone (``must be a whole number from 32 to 4096``) follows."""

    def rule(value: int) -> int:
        try:
            return check(value)
        except ParserOptionError as exc:
            raise ValueError(exc.reason) from None

    return rule


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; ``str()`` is one line for the operator."""


# Secret settings that may come as a file instead of a value: the value's field name.
SECRET_FILE_SETTINGS = ("log_salt", "alert_webhook")


def _secret_from_file(data: dict, name: str) -> str | None:
    """The content of the file ``M2FP_<NAME>_FILE`` names, or None if it is unset."""
    path = data.get(f"{name}_file")
    if not path:
        return None
    try:
        return read_secret_file(Path(path))
    except SecretFileError as exc:
        raise ValueError(f"M2FP_{name.upper()}_FILE: {exc}") from None


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
    precision: Precision = Precision.FP32
    device: Annotated[str, AfterValidator(check_device)] = DEFAULT_DEVICE
    engine: Engine = Engine.TORCH
    # None: from the container's CPU quota and affinity (m2fp.compute.threads)
    threads: Annotated[int | None, AfterValidator(check_threads)] = None
    flip: bool = False
    min_size: Annotated[int, AfterValidator(_size_rule(check_min_size))] = DEFAULT_MIN_SIZE
    max_size: Annotated[int, AfterValidator(_size_rule(check_max_size))] = DEFAULT_MAX_SIZE
    # uploads
    max_upload_bytes: int = Field(DEFAULT_MAX_FILE_BYTES, ge=1024, le=200 * MIB)
    max_pixels: Annotated[int, AfterValidator(_size_rule(check_max_pixels))] = DEFAULT_MAX_PIXELS
    max_side: int = Field(1920, ge=64, le=16384)
    upload_timeout: Annotated[float, AfterValidator(check_upload_timeout)] = 60.0
    # abuse and overload (enforced by the rate-limit, ban, API-key and limiter layers)
    rate_limit: str = "5/minute"
    ban_after: Annotated[int, AfterValidator(check_ban_after)] = 3
    ban_seconds: Annotated[int, AfterValidator(check_ban_seconds)] = 3600
    storage_uri: SecretStr = SecretStr("memory://")
    # the password of the Redis at storage_uri, kept out of the URI's variable
    storage_password_file: Path | None = None
    api_keys: CommaList = ()
    api_key_rate_limit: str = "60/minute"
    api_keys_required: bool = False
    # None: from the device the model runs on (parse/queue_sizing.py)
    max_concurrency: Annotated[int | None, AfterValidator(_unless_none(check_max_concurrency))] = (
        None
    )
    max_queue: Annotated[int | None, AfterValidator(_unless_none(check_max_queue))] = None
    request_timeout: Annotated[float, AfterValidator(check_timeout)] = 60.0
    memory_alert_percent: Annotated[float, AfterValidator(check_alert_percent)] = 90.0
    alert_webhook: SecretStr | None = None
    alert_webhook_file: Path | None = None
    # HTTP
    header_timeout: Annotated[float, AfterValidator(check_header_timeout)] = 10.0
    # None: 1000, or as many as the open-file limit holds (m2fp.server.serving)
    max_connections: int | None = None
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    cors_origins: Annotated[CommaList, AfterValidator(check_origins)] = ()
    docs: bool = False
    # audit logs
    client_id_mode: Literal["hash", "truncate"] = "hash"
    log_salt: SecretStr | None = None
    log_salt_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: object) -> object:
        """Each ``M2FP_*_FILE`` read once, its content then checked as the value would be."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in SECRET_FILE_SETTINGS:
            secret = _secret_from_file(data, name)
            if secret is not None:
                if data.get(name):
                    raise ValueError(
                        f"set only one of M2FP_{name.upper()} and M2FP_{name.upper()}_FILE"
                    )
                data[name] = secret
        password = _secret_from_file(data, "storage_password")
        if password is not None:
            uri = data.get("storage_uri") or "memory://"
            uri = uri.get_secret_value() if isinstance(uri, SecretStr) else str(uri)
            try:
                data["storage_uri"] = with_password(uri, password)
            except ValueError as exc:
                raise ValueError(f"M2FP_STORAGE_PASSWORD_FILE: {exc}") from None
        return data

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("max_connections")
    @classmethod
    def _connections(cls, value: int | None) -> int | None:
        return None if value is None else check_max_connections(value)

    @field_validator("model_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        return sha256_pin(value) if value else None

    @field_validator("rate_limit", "api_key_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @field_validator("storage_uri")
    @classmethod
    def _storage(cls, value: SecretStr) -> SecretStr:
        check_storage_uri(value.get_secret_value())
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_api_key_digests(value)

    @field_validator("alert_webhook")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        check_https_url(value.get_secret_value())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        items = _split(value)
        return check_trusted_proxies(items) if isinstance(items, tuple) else items

    @field_validator("log_salt")
    @classmethod
    def _salt(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_log_salt(value.get_secret_value())
        return value

    # Rules that span two variables: the component's check decides, and the message names both
    # variables (a model-level error has no single variable for load_settings to name).
    @model_validator(mode="after")
    def _sizes(self) -> Settings:
        try:
            check_sizes(self.min_size, self.max_size)
        except ParserOptionError:
            raise ValueError("M2FP_MAX_SIZE must be at least M2FP_MIN_SIZE") from None
        return self

    @model_validator(mode="after")
    def _compute(self) -> Settings:
        try:
            check_compute(self.device, self.engine, self.precision)
        except ComputeChoiceError as exc:
            names = "/".join(f"M2FP_{field.upper()}" for field in exc.fields)
            raise ValueError(f"{names}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _required_keys(self) -> Settings:
        try:
            check_api_key_policy(self.api_keys, required=self.api_keys_required)
        except ValueError:
            raise ValueError(
                "M2FP_API_KEYS_REQUIRED needs at least one digest in M2FP_API_KEYS"
            ) from None
        return self


def load_settings(
    *,
    model: str | None = None,
    model_key_file: str | None = None,
    device: str | None = None,
    engine: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
) -> Settings:
    """``Settings`` from the environment; each argument given overrides its variable
    (``M2FP_MODEL``, ``M2FP_MODEL_KEY_FILE``, ``M2FP_DEVICE``, ``M2FP_ENGINE``,
    ``M2FP_PRECISION``, ``M2FP_THREADS``): the command line's flags.

    Raises:
        SettingsError: one line naming the first bad variable, without its value.
    """
    try:
        overrides = {
            "model": model,
            "model_key_file": model_key_file,
            "device": device,
            "engine": engine,
            "precision": precision,
            "threads": threads,
        }
        return Settings(**{k: v for k, v in overrides.items() if v})
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        fields = [str(part) for part in error["loc"] if isinstance(part, str)]
        name = f"M2FP_{fields[0].upper()}" if fields else "settings"
        raise SettingsError(f"invalid {name}: {message}") from None
