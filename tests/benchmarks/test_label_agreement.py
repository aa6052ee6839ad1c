"""benchmarks/label_agreement.py, the seeded-photo label-map comparison of bench_engines.py: its
label map is the parser's own, and its coin-flip count follows the fp32 margin and the
engine's error pixel by pixel."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def agreement(monkeypatch):
    """The helper imported as a module, gone from ``sys.modules`` after the test."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    try:
        yield importlib.import_module("label_agreement")
    finally:
        sys.modules.pop("label_agreement", None)


def test_parse_maps_is_the_parsers_own_label_map(agreement, visible_parser, golden_image_path):
    data = golden_image_path.read_bytes()
    maps = agreement.parse_maps(visible_parser, data)
    expected = visible_parser(data).label_map
    assert maps.labels.shape == expected.shape
    assert len(np.unique(expected)) > 1  # parts reach the map: the comparison is not vacuous
    assert (maps.labels == expected).mean() == 1.0
    # the label map is the argmax of the class maps kept (first class on ties, 0 where empty)
    assert maps.probabilities.shape == (visible_parser.num_parsing, *expected.shape)
    assert (maps.probabilities.argmax(axis=0) == maps.labels).all()
    same = agreement.compare(maps, maps)
    assert (same.equal, same.coin_flip, same.changed_coin_flip) == (1.0, 0.0, 1.0)


def maps(agreement, probabilities: list[list[list[float]]]):
    """ParsedMaps of a Kx1xW probability array (label = argmax)."""
    array = np.array(probabilities, dtype=np.float32)
    return agreement.ParsedMaps(labels=array.argmax(axis=0).astype(np.uint8), probabilities=array)


def test_compare_counts_coin_flips_and_confusions(agreement):
    # four pixels, two classes; fp32 margins 0.4, 0.02, 0.3, 0.0 (nothing pasted)
    reference = maps(agreement, [[[0.7, 0.51, 0.0, 0.0]], [[0.3, 0.49, 0.3, 0.0]]])
    # the engine: pixel 0 unchanged (error 0.01 < margin), pixel 1 flips (error 0.03 > 0.02:
    # a coin flip), pixel 2 flips to class 0 by an error of 0.35 > 0.3 on class 0 (a coin
    # flip too), pixel 3 untouched
    engine = maps(agreement, [[[0.71, 0.48, 0.35, 0.0]], [[0.29, 0.5, 0.2, 0.0]]])
    found = agreement.compare(reference, engine)
    assert found.equal == pytest.approx(0.5)
    assert found.coin_flip == pytest.approx(0.5)
    assert found.changed_coin_flip == pytest.approx(1.0)
    assert found.confusions == Counter({(0, 1): 1, (1, 0): 1})
    assert found.labelled == pytest.approx(0.25)  # pixel 2 is class 1
    # a genuine change: the engine moves class 1 at pixel 0 by 0.2, under the 0.4 margin...
    bigger = maps(agreement, [[[0.7, 0.51, 0.0, 0.0]], [[0.5, 0.49, 0.3, 0.0]]])
    assert agreement.compare(reference, bigger).coin_flip == pytest.approx(0.0)
    assert agreement.compare(reference, bigger).equal == 1.0
    line = agreement.describe([found, found], ("Background", "Hat"))
    assert line.startswith("50.000% (min 50.000%); coin-flip pixels 50.000%")
    assert "Background->Hat 50%" in line and "Hat->Background 50%" in line
    assert line.endswith("fp32 labels 25.0% of pixels non-background")
