"""What a JPEG's marker structure costs to decode, read before any pixel is decoded.

A JPEG's decode cost is not bounded by its size. A progressive file may hold any number of
scans (SOS segments); each scan makes libjpeg walk every block of the image again, and an AC
scan whose one end-of-band run covers every block takes ~45 bytes however large the image is:
at 7000x7000 that is ~6 ms of CPU per 76-byte scan, ~24 CPU-seconds for a 400 KB file. So the
number of scans is capped (``MAX_JPEG_SCANS``; libjpeg encoders write 10 for a colour
progressive file, optimisers rarely more than 20).

A progressive file's coefficient buffer is bounded too (``MAX_PROGRESSIVE_COEFFICIENT_BYTES``).

The last cheap check is size: every block's DC coefficient takes at least one bit of entropy
coded data (Huffman codes are at least one bit long), so a file with fewer than
``blocks / 8`` bytes of scan data for its largest component is truncated, whatever libjpeg
would make of it (it fills the missing blocks with grey and only warns). Arithmetic coding,
which could code a flat image in less, and the lossless and hierarchical processes are refused
as unsupported: no camera writes them and each is decoder code an attacker could reach.

Everything here is one pass over the bytes: segment headers are read in Python (at most
``MAX_JPEG_SEGMENTS``), the scan data is skipped by one regular expression search per scan.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from m2fp.errors import ImageError

# progressive scans (SOS segments) decoded at most; see the module docstring
MAX_JPEG_SCANS = 64
# A progressive JPEG is decoded into a buffer of all its DCT coefficients (64 int16 per block
# of every component) before any pixel comes out, whatever scale it is decoded at: 300 MB for
# a 7071x7071 4:4:4 file. This budget keeps a decode under 300 MB in all: progressive 4:4:4
# up to ~34 megapixels, 4:2:0 up to ~69 (baseline JPEGs decode row by row, with no such buffer).
COEFFICIENT_BYTES = 64 * 2
MAX_PROGRESSIVE_COEFFICIENT_BYTES = 200 * 1024 * 1024
# marker segments read at most (APPn, DQT, DHT, SOS ...); real files have a few dozen
MAX_JPEG_SEGMENTS = 1024
# start of frame: baseline, extended sequential, progressive (all Huffman coded)
HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2}
# every other start-of-frame marker: lossless, hierarchical, arithmetic coded
OTHER_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
SOS, EOI, TEM = 0xDA, 0xD9, 0x01
RESTARTS = range(0xD0, 0xD8)
# the first marker after scan data: 0xFF not followed by a stuffed 0x00, a fill 0xFF or RSTn
NEXT_MARKER = re.compile(rb"\xff+[^\x00\xff\xd0-\xd7]")


@dataclass(frozen=True)
class JpegLayout:
    """What the markers say about a JPEG.

    Attributes:
        width, height: the frame's declared size.
        scans: SOS segments.
        scan_bytes: bytes of entropy-coded data over all scans.
        progressive: SOF2.
    """

    width: int
    height: int
    scans: int
    scan_bytes: int
    progressive: bool


def _corrupt(message: str = "the image could not be decoded") -> ImageError:
    return ImageError("corrupt", message)


def _frame(body: bytes) -> tuple[int, int, int, int]:
    """(width, height, blocks of the largest component, blocks of all components) of a
    start-of-frame segment; a component's blocks are padded to whole MCUs, as libjpeg
    allocates them."""
    if len(body) < 6:
        raise _corrupt()
    precision, height, width, count = struct.unpack(">BHHB", body[:6])
    if precision != 8:
        raise ImageError("unsupported_format", "only 8-bit JPEGs are accepted")
    if width == 0 or height == 0 or count not in (1, 3, 4) or len(body) < 6 + 3 * count:
        # height 0 means "given later by a DNL marker", which nothing here accepts
        raise _corrupt()
    sampling = [(body[7 + 3 * i] >> 4, body[7 + 3 * i] & 0x0F) for i in range(count)]
    if any(not (1 <= h <= 4 and 1 <= v <= 4) for h, v in sampling):
        raise _corrupt()
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    blocks = [
        (
            math.ceil(math.ceil(width * h / h_max) / 8),
            math.ceil(math.ceil(height * v / v_max) / 8),
            h,
            v,
        )
        for h, v in sampling
    ]
    largest = max(across * down for across, down, _, _ in blocks)
    total = sum(-(-across // h) * h * -(-down // v) * v for across, down, h, v in blocks)
    return width, height, largest, total


def check_jpeg_structure(data: bytes, *, max_scans: int = MAX_JPEG_SCANS) -> JpegLayout:
    """Walk a JPEG's markers and refuse what would cost more than its size says.

    Args:
        data: the whole file (starting with SOI).
        max_scans: SOS segments accepted at most.

    Returns:
        The frame's size and the scans' count and bytes.

    Raises:
        ImageError: ``too_many_scans``; ``corrupt`` (no frame, no scan, truncated segments,
            no end-of-image marker after the scans, or fewer scan bytes than the declared size
            needs); ``unsupported_format`` (arithmetic, lossless or hierarchical JPEG).
    """
    size = len(data)
    pos, segments, scans, scan_bytes = 2, 0, 0, 0
    frame: tuple[int, int, int] | None = None
    progressive = False
    while True:
        if pos >= size or data[pos] != 0xFF:
            raise _corrupt()
        while pos < size and data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos >= size:
            raise _corrupt()
        marker = data[pos]
        pos += 1
        if marker == EOI:
            break
        if marker == TEM or marker in RESTARTS:
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS or pos + 2 > size:
            raise _corrupt()
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > size:
            raise _corrupt()
        body = data[pos + 2 : pos + length]
        pos += length
        if marker in OTHER_FRAMES:
            raise ImageError(
                "unsupported_format", "only baseline and progressive JPEGs are accepted"
            )
        if marker in HUFFMAN_FRAMES:
            if frame is not None:
                raise _corrupt()
            frame = _frame(body)
            progressive = marker == 0xC2
        elif marker == SOS:
            scans += 1
            if scans > max_scans:
                raise ImageError("too_many_scans", f"the JPEG has more than {max_scans} scans")
            if frame is None:
                raise _corrupt()
            found = NEXT_MARKER.search(data, pos)
            if found is None:
                raise _corrupt("the image is truncated")
            scan_bytes += found.start() - pos
            pos = found.end() - 2
    if frame is None or scans == 0:
        raise _corrupt()
    width, height, blocks, all_blocks = frame
    if progressive and all_blocks * COEFFICIENT_BYTES > MAX_PROGRESSIVE_COEFFICIENT_BYTES:
        raise ImageError("too_large", "the progressive JPEG needs too much memory to decode")
    if scan_bytes * 8 < blocks:
        raise _corrupt("the image data is shorter than its declared size needs")
    return JpegLayout(
        width=width, height=height, scans=scans, scan_bytes=scan_bytes, progressive=progressive
    )
