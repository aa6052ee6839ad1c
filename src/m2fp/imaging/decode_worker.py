"""The decode worker process: ``python -I -m m2fp.imaging.decode_worker``.

It decodes one upload at a time for ``decode_pool``, reading requests from stdin and writing
answers to stdout (pipes, never files), and imports only Pillow and ``m2fp.imaging`` (no torch:
it starts in a fraction of a second and holds ~30 MB). Before each decode it lowers its own
limits, so a file that costs more than it should kills the worker, not the server: the CPU
limit (``RLIMIT_CPU``, SIGXCPU ends the process) is set to the CPU it has used so far plus the
request's budget, and the address space (``RLIMIT_AS``) to what it holds idle plus the memory
budget, which turns an oversized allocation into ``MemoryError``.

Protocol (little-endian), one exchange per decode:
    request: ``REQUEST`` (max_pixels, max_side or 0, cpu_seconds, memory_bytes, length), then
        ``length`` bytes of the encoded file;
    answer: ``ANSWER`` (ok, width, height, cpu_ns, error kind and message),
        then, if ok,
        ``width * height * 3`` bytes of RGB pixels.
The worker writes one ``READY`` byte once it is set up.
"""

from __future__ import annotations

import math
import resource
import struct
import sys
import time
from typing import BinaryIO

from m2fp.errors import ImageError
from m2fp.imaging.decoder import decode_image

REQUEST = struct.Struct("<QIdQQ")
ANSWER = struct.Struct("<BIIQ16s112s")
TOO_COSTLY = "the image costs too much to decode"
READY = b"R"


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    """``size`` bytes, or None if the parent closed the pipe first."""
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _limit(cpu_seconds: float, memory_bytes: int) -> None:
    """CPU: what this process used so far plus the budget; memory: its address space now plus
    the budget. Hard limits stay where they are, so the next request can set them again."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu_soft = math.ceil(used + cpu_seconds)
    if cpu_hard != resource.RLIM_INFINITY:
        cpu_soft = min(cpu_soft, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_hard))
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    as_soft = _status_kb("VmSize:") + memory_bytes
    if as_hard != resource.RLIM_INFINITY:
        as_soft = min(as_soft, as_hard)
    resource.setrlimit(resource.RLIMIT_AS, (as_soft, as_hard))


def _unlimit() -> None:
    """Back to the hard limits between requests: reading the next one is not its decode."""
    for limit in (resource.RLIMIT_CPU, resource.RLIMIT_AS):
        hard = resource.getrlimit(limit)[1]
        resource.setrlimit(limit, (hard, hard))


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Decode requests until the parent closes ``requests``."""
    answers.write(READY)
    answers.flush()
    while (header := _read_exactly(requests, REQUEST.size)) is not None:
        max_pixels, max_side, cpu_seconds, memory_bytes, length = REQUEST.unpack(header)
        data = _read_exactly(requests, length)
        if data is None:
            return
        started = time.process_time_ns()
        _limit(cpu_seconds, memory_bytes)
        pixels, kind, message, size = b"", b"", b"", (0, 0)
        try:
            image = decode_image(data, max_pixels=max_pixels, max_side=max_side or None)
            size, pixels = image.size, image.tobytes()
            del image
        except ImageError as exc:
            kind, message = exc.kind.encode("ascii"), str(exc).encode("ascii", "replace")
        except MemoryError:
            kind, message = b"too_costly", TOO_COSTLY.encode("ascii")
        del data
        _unlimit()
        cost = time.process_time_ns() - started
        answers.write(ANSWER.pack(not kind, *size, cost, kind, message))
        answers.write(pixels)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
