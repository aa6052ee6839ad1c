"""How ``m2fp serve`` listens: the socket, the descriptor budget and uvicorn's options.

- ``--host ::`` listens on IPv6 *and* IPv4 (one dual-stack socket); asyncio alone would set
  ``IPV6_V6ONLY`` and leave IPv4 clients unanswered.
- The connection budget must fit the process's open-file limit with room to spare: the soft
  limit is raised towards the hard one, as nginx's ``worker_rlimit_nofile`` does; an explicit
  ``M2FP_MAX_CONNECTIONS`` that still does not fit stops start-up, the default shrinks to fit.
- uvicorn runs the hardened protocol (``http_protocol``), no proxy headers (the client address
  is resolved behind the trusted proxies by the app itself), no ``Server`` header, no access
  log (the audit line replaces it) and keep-alive connections closed after 5 idle seconds.
"""

from __future__ import annotations

import ipaddress
import logging
import resource
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from m2fp.server.http_protocol import MIN_CONNECTIONS, hardened_protocol
from m2fp.server.ops.audit_log import log_config
from m2fp.server.settings import Settings

# Descriptors kept for everything but client connections: the listening socket, Redis, logs,
# the event loop, the model files at start-up, and connections accepted in one loop iteration
# before the ones they evict are closed.
logger = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 256
KEEP_ALIVE_SECONDS = 5
# connections held open at most when M2FP_MAX_CONNECTIONS is not set
DEFAULT_MAX_CONNECTIONS = 1000


def descriptor_limit(wanted: int) -> int:
    """This process's open-file soft limit, raised towards ``wanted`` within the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def connection_budget(requested: int | None) -> int:
    """The connections ``m2fp serve`` may hold open: ``requested`` (``M2FP_MAX_CONNECTIONS``)
    if the open-file limit holds it and the reserve, else ValueError; when nothing was
    requested, ``DEFAULT_MAX_CONNECTIONS`` or as many as the limit holds, if fewer (a container
    run with ``--ulimit nofile=1024`` gets 768)."""
    wanted = (requested or DEFAULT_MAX_CONNECTIONS) + RESERVED_DESCRIPTORS
    limit = descriptor_limit(wanted)
    if limit == resource.RLIM_INFINITY or limit >= wanted:
        return wanted - RESERVED_DESCRIPTORS
    fits = limit - RESERVED_DESCRIPTORS
    if requested is None and fits >= MIN_CONNECTIONS:
        return fits
    needed = requested or MIN_CONNECTIONS
    raise ValueError(
        f"the open-file limit ({limit}) cannot hold {needed} connections and "
        f"{RESERVED_DESCRIPTORS} spare descriptors: raise it (systemd LimitNOFILE=, "
        "ulimit -n) or lower M2FP_MAX_CONNECTIONS"
    )


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``: dual-stack for ``::``, else of the address's family.

    Raises:
        OSError: the address cannot be bound.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None  # a name: let the resolver decide
    if address is not None and address == ipaddress.IPv6Address("::"):
        return socket.create_server(
            (host, port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False
        )
    family = socket.AF_INET6 if address is not None and address.version == 6 else socket.AF_INET
    if address is None:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family)


def serve_app(
    app: FastAPI,
    settings: Settings,
    *,
    host: str,
    port: int,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Run ``app`` on ``host:port`` until SIGINT/SIGTERM; ``on_listening`` is told the URL
    once the socket is bound (the CLI's banner).

    Raises:
        ValueError: the connection budget does not fit (``connection_budget``).
        OSError: the address cannot be bound.
    """
    max_connections = connection_budget(settings.max_connections)
    config = uvicorn.Config(
        app,
        http=hardened_protocol(
            header_timeout=settings.header_timeout, max_connections=max_connections
        ),
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=log_config(),
    )
    sock = listen_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    logger.info("listening on http://%s:%d", shown, port)  # uvicorn says nothing for a socket
    if on_listening is not None:
        on_listening(f"http://{shown}:{port}")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
