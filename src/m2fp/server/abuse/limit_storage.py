"""The counter storage shared by the rate limiter and the ban list: ``memory://`` or ``redis://``.

``memory://`` counts per process; ``redis://`` (``rediss://``, ``redis+unix://``) shares counts
and bans across replicas. Redis is given short timeouts and a single immediate retry on connection
errors only (it replaces a pooled connection that went stale when Redis restarted): a dead or hung
Redis costs a request at most about a second, never hangs it, and the service recovers by itself
when Redis returns.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from m2fp.server.retry_later import RetryLater

# Every key m2fp writes to a shared Redis starts with this, so that the database can be shared.
KEY_PREFIX = "m2fp"
# Loopback or LAN Redis answers in about a millisecond; these bound the damage when it does not.
REDIS_SOCKET_TIMEOUT = 0.5
REDIS_CONNECT_TIMEOUT = 0.5
# Seconds a client is asked to wait when the storage is unreachable.
STORAGE_RETRY_AFTER = 5
SCHEMES = ("memory", "redis", "rediss", "redis+unix")


class StorageUnavailable(RetryLater):
    """The counter storage (Redis) cannot be reached: parse requests are refused (fail closed);
    ``retry_after``: seconds the client should wait."""

    reason = "storage_unavailable"

    def __init__(self, retry_after: int = STORAGE_RETRY_AFTER) -> None:
        super().__init__(retry_after)


def check_storage_uri(uri: str) -> str:
    """``uri`` if :func:`open_storage` can open it, else ValueError.

    The message never repeats the URI: it may hold a password.
    """
    try:
        scheme = urlsplit(uri).scheme
    except ValueError:
        scheme = ""
    if scheme not in SCHEMES:
        raise ValueError(f"must start with one of {', '.join(f'{s}://' for s in SCHEMES)}")
    return uri


def with_password(uri: str, password: str) -> str:
    """``uri`` with ``password`` in it: the password comes from its own file
    (``M2FP_STORAGE_PASSWORD_FILE``, the same secret Redis reads), the address from
    ``M2FP_STORAGE_URI``, so neither file nor variable holds both.

    Raises:
        ValueError: ``uri`` is ``memory://`` (nothing to log in to), already holds a password,
            or ``password`` is empty; the message repeats neither.
    """
    parts = urlsplit(check_storage_uri(uri))
    if parts.scheme == "memory":
        raise ValueError("memory:// takes no password: set a redis:// address")
    if parts.password is not None or "@" in parts.netloc:
        raise ValueError("the address already holds credentials: give the password once")
    if not password:
        raise ValueError("the password is empty")
    netloc = f":{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def open_storage(uri: str) -> Storage:
    """Open the storage ``uri`` names (``memory://`` or a Redis URL).

    Connecting is lazy: a Redis that is down at start-up only fails requests, and the first
    request after it comes back succeeds.

    Raises:
        ValueError: the URI is malformed or its scheme is not supported (see
            :func:`check_storage_uri`).
    """
    if urlsplit(check_storage_uri(uri)).scheme == "memory":
        return MemoryStorage()
    return storage_from_string(
        uri,
        wrap_exceptions=True,
        key_prefix=f"{KEY_PREFIX}:limits",
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


def close_storage(storage: Storage) -> None:
    """Release the storage's connections (Redis pool) at shutdown."""
    if isinstance(storage, RedisStorage):
        storage.get_connection().close()
