"""The upload rules on their own: declared type or extension against the magic bytes, decode."""

from __future__ import annotations

import pytest

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


def test_decode_maps_image_errors_to_contract_reasons():
    good = decode_upload(Upload(png_bytes(40, 30), "PNG"), max_pixels=10_000, max_side=1920)
    assert good.size == (40, 30)
    with pytest.raises(UploadRejected) as too_big:
        decode_upload(Upload(png_bytes(40, 30), "PNG"), max_pixels=100, max_side=1920)
    with pytest.raises(UploadRejected) as corrupt:
        decode_upload(Upload(png_bytes()[:100], "PNG"), max_pixels=10_000, max_side=1920)
    assert too_big.value.reason == "too_many_pixels"
    assert corrupt.value.reason == "corrupt_image"
