"""HumanParser: every input kind gives the same result; calls are independent and thread-safe."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from m2fp import predictor
from m2fp.errors import ImageError


def summary(result) -> tuple:
    return (
        result.label_map.tobytes(),
        tuple((round(p.score, 6), p.bbox) for p in result.persons),
    )


def test_all_input_kinds_agree(tiny_parser, golden_image_path):
    data = golden_image_path.read_bytes()
    pil = Image.open(io.BytesIO(data)).convert("RGB")
    results = [
        tiny_parser(golden_image_path),
        tiny_parser(str(golden_image_path)),
        tiny_parser(data),
        tiny_parser(np.asarray(pil)),
        tiny_parser(pil),
    ]
    assert len({summary(r) for r in results}) == 1
    assert results[0].size == (150, 100)
    assert results[0].label_map.shape == (100, 150) and results[0].label_map.dtype == np.uint8


def test_threads_share_one_parser(tiny_parser, golden_image_path):
    expected = summary(tiny_parser(golden_image_path))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: summary(tiny_parser(golden_image_path)), range(8)))
    assert all(r == expected for r in results)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 3), dtype=np.float32),
        b"not an image",
        "/nonexistent/image.png",
    ],
)
def test_bad_inputs_raise_image_error(tiny_parser, bad):
    with pytest.raises(ImageError):
        tiny_parser(bad)


def test_rgba_and_grey_pil_images_are_converted(tiny_parser, golden_image_path):
    image = Image.open(golden_image_path)
    assert tiny_parser(image.convert("RGBA")).size == (150, 100)
    assert tiny_parser(image.convert("L")).size == (150, 100)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 3000, 3), (3000, 2, 3), (5, 7, 3)])
def test_tiny_and_extreme_shapes(tiny_parser, shape):
    result = tiny_parser(np.zeros(shape, dtype=np.uint8))
    assert result.label_map.shape == shape[:2]


def test_parse_upright_takes_a_decoded_image_as_it_is(tiny_parser, golden_image_path):
    from m2fp.imaging.decoder import decode_image

    decoded = decode_image(golden_image_path.read_bytes())
    assert summary(tiny_parser.parse_upright(decoded)) == summary(tiny_parser(golden_image_path))


def test_parse_upright_refuses_other_modes(tiny_parser):
    with pytest.raises(ValueError, match="RGB"):
        tiny_parser.parse_upright(Image.new("L", (8, 8)))


def test_the_library_leaves_the_heap_alone(tiny_parser, golden_image_path, monkeypatch):
    """Trimming the heap is the process owner's choice (CLI, server), never a library call's."""
    import m2fp.compute.memory

    calls = []
    monkeypatch.setattr(m2fp.compute.memory, "_malloc_trim", lambda: lambda pad: calls.append(pad))
    tiny_parser(golden_image_path)
    assert calls == []


def test_single_person_semantic_map_is_numpy_fp32_on_the_cpu(
    lip_parser, golden_image_path, monkeypatch
):
    """The semantic map is computed from float32 numpy arrays on the CPU, whatever the
    engine's device and precision: exact fp32 math (no TF32 to switch off) and the same code
    the slim runtime without PyTorch runs."""
    real_probabilities = predictor.semantic_probabilities
    seen: list[tuple[type, object, type, object]] = []

    def probe(class_logits, mask_logits, padded_size):
        seen.append((type(class_logits), class_logits.dtype, type(mask_logits), mask_logits.dtype))
        return real_probabilities(class_logits, mask_logits, padded_size)

    monkeypatch.setattr(predictor, "semantic_probabilities", probe)
    lip_parser(golden_image_path)
    assert seen == [(np.ndarray, np.float32, np.ndarray, np.float32)]
