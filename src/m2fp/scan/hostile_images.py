"""Hostile image files, built in memory, small on the wire and costly to decode.

Each is legal enough that a decoder starts on it: a progressive JPEG whose scans each walk
every block again (the scan bomb), a JPEG declaring a huge size with almost no data (libjpeg
fills the rest with grey), and a flat PNG of tens of megapixels that zlib squeezes to a few
hundred kilobytes. The scan's hostile-upload check sends them, and the tests decode them to
bound their cost.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
# one AC end-of-band run symbol covers at most this many blocks (EOB14 and 14 extra bits)
MAX_EOB_RUN = 32767


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


class _Bits:
    """An entropy-coded segment: bits packed MSB first, 0xFF bytes stuffed with 0x00."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._value = 0
        self._count = 0

    def put(self, value: int, count: int) -> None:
        self._value = (self._value << count) | value
        self._count += count
        while self._count >= 8:
            self._count -= 8
            byte = (self._value >> self._count) & 0xFF
            self._out.append(byte)
            if byte == 0xFF:
                self._out.append(0)
        self._value &= (1 << self._count) - 1

    def zeros(self, count: int) -> None:
        """``count`` zero bits, fast: whole zero bytes once aligned."""
        while count and self._count:
            self.put(0, 1)
            count -= 1
        self._out += bytes(count // 8)
        self.put(0, count % 8)

    def finish(self) -> bytes:
        if self._count:
            self.put((1 << (8 - self._count)) - 1, 8 - self._count)  # pad with ones
        return bytes(self._out)


def _eob_runs(blocks: int) -> bytes:
    """One AC scan's data: end-of-band runs covering ``blocks`` blocks.

    The AC table gives symbol EOBr (run 2^r + r extra bits) the 4-bit code r.
    """
    bits = _Bits()
    left = blocks
    while left:
        run = min(left, MAX_EOB_RUN)
        r = run.bit_length() - 1
        bits.put(r, 4)
        bits.put(run - (1 << r), r)
        left -= run
    return bits.finish()


def scan_bomb(side: int = 7000, scans: int = 1000) -> bytes:
    """A progressive grey JPEG of ``side`` x ``side`` with one DC scan and ``scans`` AC scans,
    each a few dozen bytes that make the decoder walk all ``(side/8)^2`` blocks again."""
    blocks = ((side + 7) // 8) ** 2
    quant = _segment(0xDB, b"\x00" + b"\x01" * 64)
    frame = _segment(0xC2, struct.pack(">BHHB", 8, side, side, 1) + b"\x01\x11\x00")
    # DC table 0: one symbol (difference category 0) with the 1-bit code 0
    dc_table = _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    # AC table 0: EOB0..EOB14 with the 4-bit codes 0..14
    ac_counts = bytes([0, 0, 0, 15] + [0] * 12)
    ac_table = _segment(0xC4, b"\x10" + ac_counts + bytes(r << 4 for r in range(15)))
    dc_scan = _segment(0xDA, b"\x01\x01\x00\x00\x00\x00")
    dc_bits = _Bits()
    dc_bits.zeros(blocks)
    ac_scan = _segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + _eob_runs(blocks)
    head = SOI + quant + frame + dc_table + ac_table + dc_scan + dc_bits.finish()
    return head + ac_scan * scans + EOI


def short_data_jpeg(width: int = 7000, height: int = 7000) -> bytes:
    """A baseline JPEG whose frame declares ``width`` x ``height`` but whose scan holds the
    data of a 16x16 image: complete markers, end-of-image included, the data far too short."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, format="JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def flat_png(width: int = 7071, height: int = 7071) -> bytes:
    """A flat black RGB PNG: ``width * height * 3`` bytes decoded from a few hundred KB.

    Built row by row, so making it costs no full-size buffer here either.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    packer = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0, then black pixels
    parts = [packer.compress(row) for _ in range(height)]
    idat = b"".join(parts) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks
