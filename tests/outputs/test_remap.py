"""Label maps written in another set, on drawn maps: one-to-one classes and sided ones."""

from __future__ import annotations

import numpy as np

from m2fp.labels import CIHP_LABELS
from m2fp.outputs.label_sets import ATR_LABELS, remap_rule
from m2fp.outputs.remap import centre_lines, remap_label_map
from tests.utils.label_maps import draw, draw_persons

ATR = {name: i for i, name in enumerate(ATR_LABELS.names)}


def test_centre_lines():
    assert centre_lines(10, [(0, 0, 4, 3), (3, 0, 8, 1)]).tolist() == [5.0, 2.0, 5.5]


def test_gloves_and_socks_take_the_side_of_their_persons_centre_line():
    # two persons side by side; each one's centre line is in the middle of their box
    labels = draw(
        """
        gUUg.gUUUg
        nFFn.nFFFn
        kPPk.kPPPk
        """
    )
    persons = draw_persons(
        """
        1111.22222
        1111.22222
        1111.22222
        """
    )
    boxes = [(0, 0, 4, 3), (5, 0, 10, 3)]
    out = remap_label_map(labels, remap_rule(CIHP_LABELS, "atr"), person_map=persons, boxes=boxes)
    la, ra, ll, rl = ATR["Left-arm"], ATR["Right-arm"], ATR["Left-leg"], ATR["Right-leg"]
    up, face, neck, pants = ATR["Upper-clothes"], ATR["Face"], ATR["Neck"], ATR["Pants"]
    # person 2's centre is 7.5: column 7 (centre 7.5) is at the line, so it counts as left
    assert out.tolist() == [
        [ra, up, up, la, 0, ra, up, up, up, la],
        [neck, face, face, neck, 0, neck, face, face, face, neck],
        [rl, pants, pants, ll, 0, rl, pants, pants, pants, ll],
    ]


def test_sided_pixels_outside_every_person_use_the_image_centre():
    labels = draw("g..g")
    out = remap_label_map(labels, remap_rule(CIHP_LABELS, "atr"))
    assert out.tolist() == [[ATR["Right-arm"], 0, 0, ATR["Left-arm"]]]


def test_one_to_one_sets_need_no_persons():
    labels = draw("nUJ".replace("J", "C"))
    assert remap_label_map(labels, remap_rule(CIHP_LABELS, "lip")).tolist() == [[0, 5, 7]]
    viton = remap_label_map(labels, remap_rule(CIHP_LABELS, "viton"))
    assert viton.tolist() == [[0, 3, 3]]
    assert viton.dtype == np.uint8
