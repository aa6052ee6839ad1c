"""The single-person input: ModelScope's fit-and-centre arithmetic, its edge cases, and the
cases where ModelScope itself fails."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from m2fp.processing.centre_pad import PAD_VALUE, _scaled, centre_pad, fit_size
from tests.conftest import LIP_GOLDEN

TARGET = (96, 128)  # width, height, as input_single_human writes it


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGB")


@pytest.mark.parametrize(
    ("size", "fitted", "box"),
    [
        # smaller than the target: padded only, never enlarged
        ((50, 80), (80, 50), (23, 24, 73, 104)),
        ((1, 50), (50, 1), (47, 39, 48, 89)),
        # wider than the target only: width takes 96, height follows (96 * 100 // 300)
        ((300, 100), (32, 96), (0, 48, 96, 80)),
        # taller only (the golden image): height takes 128, width int(128 * 90 / 150) = 76
        ((90, 150), (128, 76), (10, 0, 86, 128)),
        # larger on both sides, taller: height first
        ((200, 400), (128, 64), (16, 0, 80, 128)),
        # ... and when the width then overflows, width takes 96 instead: 96 * 310 // 300
        ((300, 310), (99, 96), (0, 14, 96, 113)),
        # larger on both sides, wider: width first
        ((400, 200), (48, 96), (0, 40, 96, 88)),
        # square, larger on both sides: ModelScope sets no size at all (and fails); fit it
        ((200, 200), (96, 96), (0, 16, 96, 112)),
        # square that fits: padded only
        ((64, 64), (64, 64), (16, 32, 80, 96)),
        # 1 pixel wide and tall: 128 / 150 of a pixel truncates to 0 (ModelScope fails): 1
        ((1, 150), (128, 1), (47, 0, 48, 128)),
        # 1 pixel high and wide: 96 / 3000 truncates to 0: 1
        ((3000, 1), (1, 96), (0, 63, 96, 64)),
    ],
)
def test_fit_and_crop_box(size, fitted, box):
    width, height = size
    assert fit_size(height, width, *TARGET) == fitted
    centred = centre_pad(noise(width, height), *TARGET)
    assert centred.crop_box == box
    assert centred.image.size == TARGET
    x0, y0, x1, y1 = box
    pixels = np.asarray(centred.image)
    outside = np.ones(pixels.shape[:2], dtype=bool)
    outside[y0:y1, x0:x1] = False
    assert (pixels[outside] == PAD_VALUE).all()


def test_a_photo_that_fits_is_copied_unchanged_into_the_centre():
    photo = noise(50, 80)
    centred = centre_pad(photo, *TARGET)
    x0, y0, x1, y1 = centred.crop_box
    np.testing.assert_array_equal(np.asarray(centred.image)[y0:y1, x0:x1], np.asarray(photo))


def test_shrinking_is_pil_bilinear():
    photo = noise(300, 310)
    centred = centre_pad(photo, *TARGET)
    x0, y0, x1, y1 = centred.crop_box
    expected = photo.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(np.asarray(centred.image)[y0:y1, x0:x1], np.asarray(expected))


@pytest.mark.parametrize(("size", "expected"), [((192, 256), (96, 128)), ((95, 128), (95, 128))])
def test_no_padding_when_left_and_top_pads_are_zero(size, expected):
    """ModelScope's shortcut: the photo fills the target (exactly, or but for one column or
    row on the right/bottom), so it is not padded at all."""
    centred = centre_pad(noise(*size), *TARGET)
    assert centred.image.size == expected
    assert centred.crop_box == (0, 0, *expected)


def test_one_missing_column_on_each_side_is_padded():
    centred = centre_pad(noise(94, 128), *TARGET)
    assert centred.image.size == TARGET and centred.crop_box == (1, 0, 95, 128)


def test_truncation_is_modelscopes_float_expression():
    """``int(a * b / c)`` (ModelScope) and ``a * b // c`` (here) agree for every image size a
    parser can see, target sides up to 4096."""
    rng = np.random.default_rng(0)
    sides = rng.integers(1, 50_001, size=(20_000, 2)).tolist()
    for target in (96, 128, 384, 512, 4096):
        for numerator, denominator in sides:
            assert _scaled(target, numerator, denominator) == max(
                1, int(target * numerator / denominator)
            )


def test_exif_rotated_input_is_parsed_upright(lip_parser):
    """A photo stored sideways with an EXIF orientation is fitted as it is displayed."""
    upright = Image.open(LIP_GOLDEN / "image.png").convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # 150 wide, 90 high
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif)
    rotated = lip_parser(buffer.getvalue())
    plain = lip_parser(upright)
    assert rotated.size == (90, 150)
    np.testing.assert_array_equal(rotated.label_map, plain.label_map)
    assert rotated.to_modelscope()["scores"] == plain.to_modelscope()["scores"]
