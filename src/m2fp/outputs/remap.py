"""Writing a label map in another label set (``m2fp.outputs.label_sets`` holds the tables).

Most classes map one to one. A ``Sided`` class (ATR has no glove or socks) takes the arm or
leg id of its side: the person's left if the pixel is at or right of the vertical centre line
of the person's box (a frontal photo shows the person's left on the image's right), the
image's centre line for pixels outside every person. ``static/masks.js`` does the same in the
WebUI; tests/server/routes/test_webui_masks.py checks in Chromium that both give the same maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from m2fp.outputs.label_sets import RemapRule

Box = tuple[int, int, int, int]


def centre_lines(width: int, boxes: Sequence[Box]) -> np.ndarray:
    """x of the centre line per person-map value: 0 -> the image's, i -> ``boxes[i - 1]``'s
    (boxes are ``[x0, x1)`` wide, so the line of ``(0, _, 10, _)`` is at 5.0)."""
    return np.array([width / 2, *((x0 + x1) / 2 for x0, _, x1, _ in boxes)], dtype=np.float64)


def remap_label_map(
    label_map: np.ndarray,
    rule: RemapRule,
    *,
    person_map: np.ndarray | None = None,
    boxes: Sequence[Box] = (),
) -> np.ndarray:
    """``label_map`` (HxW uint8, ids of ``rule.source``) in ids of ``rule.target``.

    Args:
        person_map: HxW uint8, i where ``boxes[i - 1]``'s person is (0: none); decides the
            side of sided classes. Without it every pixel is measured from the image centre.
        boxes: the persons' boxes ``(x0, y0, x1, y1)``.
    """
    out = np.asarray(rule.table, dtype=np.uint8)[label_map]
    if not rule.sided:
        return out
    centres = centre_lines(label_map.shape[1], boxes)
    for sided in rule.sided:
        ys, xs = np.nonzero(label_map == sided.source_id)
        if ys.size == 0:
            continue
        owner = person_map[ys, xs] if person_map is not None else np.zeros_like(ys)
        on_left = xs + 0.5 >= centres[owner]
        out[ys, xs] = np.where(on_left, sided.left_id, sided.right_id).astype(np.uint8)
    return out
