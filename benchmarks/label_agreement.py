"""Label-map agreement of an engine with eager fp32, and how much of it is a coin flip.

A pixel's label is the argmax over classes of their probability maps (``PassOutput.class_map``:
per class, the mean probability of its pasted instances where their mask exceeds 0.5). Where
fp32's two best classes are closer than the engine moves the probabilities, any approximation
may pick either: such a pixel changing label says nothing about the engine. So beside the
fraction of pixels equal, this reports the fraction of pixels whose fp32 top-2 margin
(best - second probability) is below the engine's own error at that pixel (the largest change
it makes to any class's probability there), and how many of the changed pixels are of that
kind. Frames: every map HxW at the original photo size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from m2fp import HumanParser
from m2fp.processing.postprocess import PassOutput, measure_pass, paste_label_map

TOP_CONFUSIONS = 3  # (fp32 class -> engine class) pairs printed per engine


@dataclass(frozen=True)
class ParsedMaps:
    """One photo parsed by one engine.

    Attributes:
        labels: HxW uint8 label map, as ``HumanParser`` returns it.
        probabilities: KxHxW float32 class probability maps (0 where a class pastes nothing).
    """

    labels: np.ndarray
    probabilities: np.ndarray


def parse_maps(parser: HumanParser, photo: bytes) -> ParsedMaps:
    """``photo`` through ``parser``'s decode, preprocess, forward and post-processing, keeping
    the per-class probability maps its label map is the argmax of."""
    picture = parser.load_image(photo)
    resized, batch = parser._preprocess(picture)
    class_logits, mask_logits = parser._forward(batch)
    output_size = (picture.height, picture.width)
    passed: PassOutput = measure_pass(
        class_logits[0],
        mask_logits[0],
        padded_size=tuple(batch.shape[-2:]),
        input_size=(resized.height, resized.width),
        output_size=output_size,
        num_parsing=parser.num_parsing,
        ins_score_thr=parser.ins_score_thr,
    )
    found = {cls: passed.class_map(cls) for cls in range(parser.num_parsing)}
    labels, _ = paste_label_map(found.get, num_parsing=parser.num_parsing, output_size=output_size)
    probabilities = np.zeros((parser.num_parsing, *output_size), dtype=np.float32)
    for cls, window in found.items():
        if window is not None:
            probabilities[cls, window.rows, window.cols] = window.values
    return ParsedMaps(labels=labels, probabilities=probabilities)


@dataclass(frozen=True)
class Agreement:
    """One engine against fp32 on one photo.

    Attributes:
        equal: fraction of pixels with the same label.
        coin_flip: fraction of pixels whose fp32 top-2 margin is below the engine's error there.
        changed_coin_flip: of the changed pixels, the fraction that are coin-flip pixels
            (1.0 when none changed).
        confusions: (fp32 class, engine class) -> changed pixels.
        labelled: fraction of pixels fp32 labels other than background (class 0): what the
            agreement is about, beyond the empty background.
    """

    equal: float
    coin_flip: float
    changed_coin_flip: float
    confusions: Counter
    labelled: float


def compare(reference: ParsedMaps, engine: ParsedMaps) -> Agreement:
    """``engine``'s label map against the fp32 ``reference`` (see the module docstring)."""
    top2 = np.partition(reference.probabilities, -2, axis=0)[-2:]
    margin = top2[1] - top2[0]
    error = np.abs(engine.probabilities - reference.probabilities).max(axis=0)
    coin_flip = margin < error
    changed = reference.labels != engine.labels
    confusions = Counter(
        zip(reference.labels[changed].tolist(), engine.labels[changed].tolist(), strict=True)
    )
    count = int(changed.sum())
    return Agreement(
        equal=1.0 - count / changed.size,
        coin_flip=float(coin_flip.mean()),
        changed_coin_flip=float((coin_flip & changed).sum() / count) if count else 1.0,
        confusions=confusions,
        labelled=float((reference.labels != 0).mean()),
    )


def agreement_rows(
    parsers: dict[str, HumanParser], photos: list[bytes], reference: str
) -> dict[str, list[Agreement]]:
    """Every parser but ``reference`` compared with it on every photo, a photo at a time (one
    photo's maps of every engine in memory at once)."""
    rows: dict[str, list[Agreement]] = {name: [] for name in parsers if name != reference}
    for photo in photos:
        expected = parse_maps(parsers[reference], photo)
        for name in rows:
            rows[name].append(compare(expected, parse_maps(parsers[name], photo)))
    return rows


def describe(agreements: list[Agreement], class_names: tuple[str, ...]) -> str:
    """One line: mean and min agreement, coin-flip pixels, where the labels changed, and how
    much of the fp32 map is labelled."""
    equal = [a.equal for a in agreements]
    coin = np.mean([a.coin_flip for a in agreements])
    explained = np.mean([a.changed_coin_flip for a in agreements])
    confusions = sum((a.confusions for a in agreements), Counter())
    total = sum(confusions.values())
    where = ", ".join(
        f"{class_names[a]}->{class_names[b]} {n / total:.0%}"
        for (a, b), n in confusions.most_common(TOP_CONFUSIONS)
    )
    return (
        f"{np.mean(equal):.3%} (min {min(equal):.3%}); coin-flip pixels {coin:.3%}; "
        f"changed pixels that are coin flips {explained:.0%}; changes: {where or 'none'}; "
        f"fp32 labels {np.mean([a.labelled for a in agreements]):.1%} of pixels non-background"
    )
