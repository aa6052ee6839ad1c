"""The int8 calibration set: person-like scenes drawn deterministically in code.

Post-training quantisation needs the activation ranges real inputs produce, but nothing may be
downloaded and no photo of a person ships with the project. So the scenes are drawn: one to
five figures (head with hair, torso, arms, legs, shoes; clothes in random colours, some
patterned) on backgrounds that vary in kind (gradient, stripes, floor and wall, noise), scale,
brightness and contrast, then blurred and noised like a camera's output. ``seed`` fixes every
scene; scene ``i`` of a seed never changes, so a calibration is reproducible.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from m2fp.defaults import DEFAULT_CALIBRATION_SCENES
from m2fp.processing.centre_pad import centre_pad
from m2fp.processing.preprocess import resize, to_input_tensor

DEFAULT_SCENES = DEFAULT_CALIBRATION_SCENES
DEFAULT_SEED = 20261201
# landscape and portrait photos, as people upload them (width, height)
SCENE_SIZES = ((960, 640), (640, 960), (1024, 768), (768, 1024), (1280, 720))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(30, 220, 3)
    kind = rng.integers(4)
    if kind == 0:  # smooth gradient
        ramp = rng.uniform(-80, 80, 3)
        image = base + ramp * (xx / width)[..., None] + ramp[::-1] * (yy / height)[..., None]
    elif kind == 1:  # stripes or tiles
        period = rng.uniform(8, 80)
        angle = rng.uniform(0, np.pi)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        image = base + rng.uniform(10, 60) * wave[..., None]
    elif kind == 2:  # wall above a floor
        horizon = rng.uniform(0.4, 0.8) * height
        floor = rng.uniform(30, 200, 3)
        image = np.where((yy < horizon)[..., None], base, floor).astype(np.float32)
    else:  # blotchy texture, smoothed noise
        noise = rng.normal(0, 1, (height // 16 + 1, width // 16 + 1, 3))
        coarse = Image.fromarray(((noise * 40) + 128).clip(0, 255).astype(np.uint8))
        image = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.float32)
        image = image - 128 + base
    return image.clip(0, 255)


def _figure(rng: np.random.Generator, draw: ImageDraw.ImageDraw, width: int, height: int):
    scale = rng.uniform(0.25, 0.95) * height  # standing height of the figure
    cx, top = rng.uniform(0.05, 0.95) * width, rng.uniform(-0.1, 0.5) * height
    skin = tuple(int(v) for v in rng.integers(60, 240) * rng.uniform(0.6, 1.0, 3))
    hair = tuple(int(v) for v in rng.integers(0, 120, 3))
    shirt = tuple(int(v) for v in rng.integers(0, 256, 3))
    trousers = tuple(int(v) for v in rng.integers(0, 200, 3))
    shoes = tuple(int(v) for v in rng.integers(0, 90, 3))
    head = 0.065 * scale
    neck = top + 2.4 * head
    draw.ellipse((cx - 1.1 * head, top - 0.3 * head, cx + 1.1 * head, top + 1.4 * head), hair)
    draw.ellipse((cx - head, top, cx + head, neck), skin)
    shoulders, hips = 0.17 * scale, 0.13 * scale
    waist = neck + 0.33 * scale
    draw.polygon(
        [(cx - shoulders, neck), (cx + shoulders, neck), (cx + hips, waist), (cx - hips, waist)],
        shirt,
    )
    if rng.random() < 0.4:  # a patterned shirt: horizontal bands
        band = tuple(int(v) for v in rng.integers(0, 256, 3))
        for row in np.arange(neck, waist, 0.04 * scale)[::2]:
            draw.rectangle((cx - hips, row, cx + hips, row + 0.02 * scale), band)
    limb = max(2, int(0.045 * scale))
    for side in (-1, 1):
        swing = rng.uniform(-0.15, 0.25) * scale
        elbow = (cx + side * (shoulders + 0.05 * scale), neck + 0.17 * scale)
        hand = (elbow[0] + side * swing * 0.5, elbow[1] + 0.17 * scale)
        draw.line([(cx + side * shoulders, neck + limb), elbow], shirt, limb + 2)
        draw.line([elbow, hand], skin, limb)
        knee = (cx + side * (0.06 * scale + rng.uniform(0, 0.05) * scale), waist + 0.25 * scale)
        foot = (knee[0] + side * rng.uniform(0, 0.06) * scale, waist + 0.5 * scale)
        draw.line([(cx + side * 0.06 * scale, waist), knee, foot], trousers, limb + 4)
        shoe = (foot[0] - limb, foot[1] - limb / 2, foot[0] + 2 * limb, foot[1] + limb)
        draw.ellipse(shoe, shoes)


def calibration_scene(index: int, *, seed: int = DEFAULT_SEED) -> Image.Image:
    """Scene ``index`` of the calibration set: an RGB photo-like image of people."""
    rng = np.random.default_rng([seed, index])
    width, height = SCENE_SIZES[index % len(SCENE_SIZES)]
    image = Image.fromarray(_background(rng, width, height).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(1, 6)):
        _figure(rng, draw, width, height)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    # exposure and contrast, then sensor noise
    pixels = np.asarray(image, np.float32)
    pixels = (pixels - 128) * rng.uniform(0.6, 1.3) + 128 + rng.uniform(-40, 40)
    pixels += rng.normal(0, rng.uniform(2, 10), pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")


def calibration_inputs(
    count: int = DEFAULT_SCENES,
    *,
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    min_size: int,
    max_size: int,
    seed: int = DEFAULT_SEED,
    single_person_size: tuple[int, int] | None = None,
) -> list[torch.Tensor]:
    """``count`` scenes as network inputs (1x3xHxW, normalised, padded to 32), exactly as
    HumanParser would prepare photos of those sizes: resized to ``min_size``/``max_size``
    (multi-person), or centred in the single-person model's fixed (width, height) input."""
    if count < 1:
        raise ValueError("count must be at least 1")
    inputs = []
    for index in range(count):
        scene = calibration_scene(index, seed=seed)
        if single_person_size is None:
            image = resize(scene, min_size, max_size)
        else:
            image = centre_pad(scene, *single_person_size).image
        inputs.append(to_input_tensor(image, pixel_mean, pixel_std, 32))
    return inputs
