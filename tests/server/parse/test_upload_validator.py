"""The upload rules on their own: declared type or extension against the magic bytes, decode."""

from __future__ import annotations

import pytest

from m2fp.imaging.decode_pool import DecodePool
from m2fp.scan.hostile_images import flat_png, scan_bomb, short_data_jpeg
from m2fp.server.errors import UploadRejected
from m2fp.server.parse.upload_validator import (
    Upload,
    check_upload,
    decode_upload,
    format_for_filename,
    format_for_media_type,
)
from tests.utils.images import jpeg_bytes, png_bytes


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (b"photo.png", "PNG"),
        (b"C:\\Users\\alice\\Photo.JPG", "JPEG"),
        (b"../../etc/x.jpeg", "JPEG"),
        (b"holiday.2024.jpg", "JPEG"),
    ],
)
def test_extension_gives_the_format_the_bytes_must_have(filename, expected):
    assert format_for_filename(filename) == expected


@pytest.mark.parametrize("filename", [None, b"", b"photo", b"photo.gif", b"photo.png.exe"])
def test_other_file_names_are_a_bad_extension(filename):
    with pytest.raises(UploadRejected) as caught:
        format_for_filename(filename)
    assert caught.value.reason == "bad_extension"


def test_media_types_of_raw_bodies():
    assert format_for_media_type(b"image/jpeg") == "JPEG"
    assert format_for_media_type(b"image/png") == "PNG"
    assert format_for_media_type(b"image/webp") is None


@pytest.mark.parametrize(
    ("data", "expected", "reason"),
    [
        (b"", "PNG", "empty_body"),
        (b"GIF89a", "PNG", "unsupported_media_type"),
        (png_bytes(), "JPEG", "bad_extension"),
    ],
)
def test_magic_bytes_must_be_the_declared_format(data, expected, reason):
    with pytest.raises(UploadRejected) as caught:
        check_upload(data, expected=expected, reason="bad_extension")
    assert caught.value.reason == reason


def test_matching_magic_bytes_are_accepted():
    data = jpeg_bytes()
    assert check_upload(data, expected="JPEG", reason="bad_extension") == Upload(data, "JPEG")


@pytest.fixture(scope="module")
def decoder():
    pool = DecodePool(workers=1)
    yield pool
    pool.close()


def test_decode_maps_image_errors_to_contract_reasons(decoder):
    def decode(data: bytes, fmt: str, max_pixels: int = 50_000_000):
        return decode_upload(
            Upload(data, fmt), decoder=decoder, max_pixels=max_pixels, max_side=1920
        )

    assert decode(png_bytes(40, 30), "PNG", max_pixels=10_000).size == (40, 30)
    cases = {
        "too_many_pixels": (png_bytes(40, 30), "PNG", 100),
        "corrupt_image": (png_bytes()[:100], "PNG", 10_000),
        "too_many_scans": (scan_bomb(side=256, scans=100), "JPEG", 50_000_000),
    }
    for reason, (data, fmt, max_pixels) in cases.items():
        with pytest.raises(UploadRejected) as refused:
            decode(data, fmt, max_pixels)
        assert refused.value.reason == reason
    # the 2,472-byte JPEG declaring 7000x7000 of the pen test: refused, not a grey photo
    with pytest.raises(UploadRejected) as short:
        decode(short_data_jpeg(7000, 7000), "JPEG")
    assert short.value.reason == "corrupt_image"


def test_decode_past_its_deadline_is_too_costly(decoder):
    # a flat 7071x7071 PNG takes ~0.3 s of CPU; a 1 ms deadline stops its worker first
    with pytest.raises(UploadRejected) as refused:
        decode_upload(
            Upload(flat_png(), "PNG"),
            decoder=decoder,
            max_pixels=50_000_000,
            max_side=1920,
            deadline_seconds=0.001,
        )
    assert refused.value.reason == "image_too_costly"
    # the worker was replaced: the next upload decodes
    good = decode_upload(
        Upload(png_bytes(40, 30), "PNG"), decoder=decoder, max_pixels=10_000, max_side=1920
    )
    assert good.size == (40, 30)
