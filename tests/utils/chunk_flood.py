"""Clients sending parse uploads as 1-byte chunks (pen test 2, item 4), in a process of their
own so that their loops do not share the probing test's interpreter lock.

``python -m tests.utils.chunk_flood PORT SECONDS`` runs two such clients for SECONDS (each
connection at most 2 MB of chunks, reconnecting whenever the server closes); it prints
``flooding`` once the first chunks are out, and at the end the chunk bytes sent.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

HEAD = (
    b"POST /api/v1/parse HTTP/1.1\r\nHost: a\r\nContent-Type: image/png\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
BURST = b"1\r\nx\r\n" * 4096
PER_CONNECTION = 2 * 1024 * 1024


def flood(port: int, until: float, sent: list[int], started: threading.Event) -> None:
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(HEAD)
                for _ in range(PER_CONNECTION // len(BURST) + 1):
                    if time.monotonic() >= until:
                        return
                    sock.sendall(BURST)
                    sent[0] += len(BURST)
                    started.set()
        except OSError:
            continue  # refused and closed: come again


def main() -> None:
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    until = time.monotonic() + seconds
    sent = [0]
    started = threading.Event()
    clients = [threading.Thread(target=flood, args=(port, until, sent, started)) for _ in range(2)]
    for client in clients:
        client.start()
    if started.wait(timeout=seconds):
        print("flooding", flush=True)
    for client in clients:
        client.join()
    print(sent[0], flush=True)


if __name__ == "__main__":
    main()
