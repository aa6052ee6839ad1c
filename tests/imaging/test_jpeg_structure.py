"""The JPEG marker walk: what it accepts, and one test per refused structure."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from m2fp.errors import ImageError
from m2fp.imaging.decoder import decode_image
from m2fp.imaging.jpeg_structure import MAX_JPEG_SCANS, check_jpeg_structure
from m2fp.scan.hostile_images import scan_bomb, short_data_jpeg


def jpeg(size=(64, 48), **options) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def refused(data: bytes, **options) -> str:
    with pytest.raises(ImageError) as info:
        check_jpeg_structure(data, **options)
    return info.value.kind


@pytest.mark.parametrize(
    "options",
    [{}, {"progressive": True}, {"subsampling": 0}, {"progressive": True, "subsampling": 0}],
)
def test_pillow_files_pass(options):
    layout = check_jpeg_structure(jpeg(**options))
    assert (layout.width, layout.height) == (64, 48)
    assert layout.progressive == bool(options.get("progressive"))
    assert layout.scans == 1 or (layout.progressive and 1 < layout.scans <= 12)


def test_grey_progressive_file_passes():
    buffer = io.BytesIO()
    Image.effect_noise((40, 40), 30).save(buffer, format="JPEG", progressive=True)
    assert check_jpeg_structure(buffer.getvalue()).progressive


def test_trailing_bytes_after_end_of_image_are_allowed():
    # some cameras append data after EOI; the decoder stops at EOI
    assert check_jpeg_structure(jpeg() + b"\x00" * 100).scans == 1


def test_scan_bomb_is_refused_by_its_scan_count():
    assert refused(scan_bomb(side=512, scans=MAX_JPEG_SCANS)) == "too_many_scans"
    # one scan fewer (its DC scan counts too) is a legal file that decodes
    bomb = scan_bomb(side=512, scans=MAX_JPEG_SCANS - 1)
    assert check_jpeg_structure(bomb).scans == MAX_JPEG_SCANS
    assert decode_image(bomb).size == (512, 512)


def test_short_data_for_the_declared_size_is_corrupt():
    data = short_data_jpeg(7000, 7000)
    assert len(data) < 3000
    assert refused(data) == "corrupt"
    # the same bytes declaring their true size pass
    assert check_jpeg_structure(short_data_jpeg(16, 16)).width == 16


@pytest.mark.parametrize("cut", [2, 20, 200, -40, -2])
def test_truncated_files_are_corrupt(cut):
    data = jpeg()
    assert refused(data[:cut]) == "corrupt"


def test_missing_frame_is_corrupt():
    data = jpeg()
    start = data.index(b"\xff\xc0")
    (length,) = struct.unpack_from(">H", data, start + 2)
    assert refused(data[:start] + data[start + 2 + length :]) == "corrupt"


def test_second_frame_is_corrupt():
    data = jpeg()
    start = data.index(b"\xff\xc0")
    (length,) = struct.unpack_from(">H", data, start + 2)
    frame = data[start : start + 2 + length]
    assert refused(data[:start] + frame + data[start:]) == "corrupt"


@pytest.mark.parametrize("marker", [0xC3, 0xC9, 0xCA, 0xC5])
def test_lossless_arithmetic_and_hierarchical_frames_are_unsupported(marker):
    data = bytearray(jpeg())
    data[data.index(b"\xff\xc0") + 1] = marker
    assert refused(bytes(data)) == "unsupported_format"


def test_twelve_bit_precision_is_unsupported():
    data = bytearray(jpeg())
    data[data.index(b"\xff\xc0") + 4] = 12
    assert refused(bytes(data)) == "unsupported_format"


def test_zero_height_is_corrupt():
    data = bytearray(jpeg())
    struct.pack_into(">H", data, data.index(b"\xff\xc0") + 5, 0)
    assert refused(bytes(data)) == "corrupt"


def test_too_many_segments_is_corrupt():
    data = jpeg()
    comments = b"\xff\xfe\x00\x02" * 2000
    assert refused(data[:2] + comments + data[2:]) == "corrupt"


def test_progressive_coefficient_buffer_is_bounded():
    # 4:4:4 progressive, 6000x6000: 3 x 562,500 blocks x 128 bytes = 216 MB of coefficients
    data = bytearray(jpeg(progressive=True, subsampling=0))
    struct.pack_into(">HH", data, data.index(b"\xff\xc2") + 5, 6000, 6000)
    assert refused(bytes(data)) == "too_large"
    # the same size as a baseline file has no such buffer: it is refused only for its data
    data = bytearray(jpeg(subsampling=0))
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, 6000, 6000)
    assert refused(bytes(data)) == "corrupt"


def test_decoder_refuses_before_decoding():
    with pytest.raises(ImageError) as info:
        decode_image(scan_bomb(side=7000, scans=200))
    assert info.value.kind == "too_many_scans"
    with pytest.raises(ImageError) as info:
        decode_image(short_data_jpeg())
    assert info.value.kind == "corrupt"
