"""Try-on agnostic masks: the pixels a virtual try-on model repaints for a new garment.

The rule (which classes, what is protected, the default dilation) is written down in
``m2fp.outputs.mask_rules`` and docs/outputs.md. This module applies it, and
finds hands, which CIHP and LIP do not label: a hand is the end of an arm.

Hands, per person: measure each arm (Left-arm, Right-arm) along itself, in 4-connected steps,
from where it leaves the torso (arm pixels touching UpperClothes, Coat, Dress, Jumpsuits or
Torso-skin, keeping only the top-most contacts: those less than one hand length below the
highest, so that a hand resting on the hip is not taken for the shoulder). The pixels within
one hand length of the farthest point are the hand; so are arm pixels no path reaches, and a
whole arm that touches no torso (a hand alone in the picture). A hand is about as long as a
face is high (chin to hairline), so the hand length is the height of the person's Face
pixels; without a face, the person's height over ``HAND_DIVISOR_WITHOUT_FACE``.
``static/masks.js`` computes the same, pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from m2fp.labels import LabelSet
from m2fp.outputs.class_pixels import in_classes
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.mask_rules import (
    AGNOSTIC_DILATE_DIVISOR,
    AGNOSTIC_KINDS,
    ALWAYS_PROTECTED,
    ARMS,
    HAND_DIVISOR_WITHOUT_FACE,
    KEEP_PARTS,
    TORSO,
    AgnosticOptions,
    class_ids,
    rounded_ratio,
)
from m2fp.outputs.morphology import dilate, geodesic_distance, grow4
from m2fp.outputs.person_scope import (
    PersonLike,
    Scope,
    other_people,
    person_regions,
    scope_of,
)


def default_radius(box: tuple[int, int, int, int]) -> int:
    """The default dilation for a person's (or the image's) box, in pixels."""
    x0, y0, x1, y1 = box
    return rounded_ratio(max(x1 - x0, y1 - y0), AGNOSTIC_DILATE_DIVISOR)


def _span(rows: np.ndarray) -> int:
    """How many rows a mask spans, given ``mask.any(axis=1)``."""
    found = np.flatnonzero(rows)
    return int(found[-1] - found[0] + 1) if found.size else 0


def hand_length(labels: np.ndarray, label_set: LabelSet, region: np.ndarray) -> int:
    """One hand's length in pixels for the person in ``region`` (see the module docstring)."""
    face = in_classes(labels, class_ids(("Face",), label_set)) & region
    height = _span(face.any(axis=1))
    if height:
        return height
    return rounded_ratio(_span(region.any(axis=1)), HAND_DIVISOR_WITHOUT_FACE)


def hand_pixels(labels: np.ndarray, label_set: LabelSet, region: np.ndarray) -> np.ndarray:
    """HxW bool: the ends of the arms of the person in ``region`` (no Glove: that is a class).

    Args:
        labels: HxW label map in ``label_set`` ids.
        region: HxW bool, the person's pixels.
    """
    hands = np.zeros(labels.shape, dtype=bool)
    length = hand_length(labels, label_set, region)
    touching_torso = grow4(in_classes(labels, class_ids(TORSO, label_set)) & region)
    for arm_id in class_ids(ARMS, label_set):
        arm = (labels == arm_id) & region
        if not arm.any():
            continue
        contact = arm & touching_torso
        rows = np.flatnonzero(contact.any(axis=1))
        if rows.size == 0:
            hands |= arm
            continue
        contact[rows[0] + length :] = False
        distance = geodesic_distance(arm, contact)
        farthest = int(distance.max())
        hands |= arm & ((distance > farthest - length) | (distance < 0))
    return hands


def agnostic_mask(
    label_map: np.ndarray,
    label_set: LabelSet,
    kind: str,
    options: AgnosticOptions,
    *,
    person_map: np.ndarray,
    persons: Sequence[PersonLike],
) -> np.ndarray:
    """The try-on agnostic mask of ``kind`` (upper_body, lower_body, dresses, overall).

    Args:
        label_map: HxW uint8 in ``label_set`` ids (CIHP or LIP).
        person_map: HxW uint8, i where ``persons[i - 1]`` is (0: nobody).
        persons: best score first, with ``bbox`` and ``area``.

    Returns:
        HxW (or the person's box with ``crop``) bool; uint8 0/127 with ``grey``.

    Raises:
        OutputRequestError: unknown kind. PersonNotFoundError: no such person.
    """
    rules = AGNOSTIC_KINDS.get(kind)
    if rules is None:
        raise OutputRequestError(
            f"unknown agnostic mask {kind!r} (known: {', '.join(AGNOSTIC_KINDS)})"
        )
    scope = scope_of(persons, person_map, options.person)
    labels = scope.restrict(label_map)
    radius = default_radius(scope.box) if options.dilate is None else options.dilate
    mask = dilate(in_classes(labels, class_ids(rules.garment + rules.body, label_set)), radius)
    mask &= ~_protected(labels, label_set, rules.protect, options.keep, scope, person_map, persons)
    if options.crop:
        mask = scope.crop(mask)
    if options.grey:
        return mask.astype(np.uint8) * 127
    return mask


def _protected(
    labels: np.ndarray,
    label_set: LabelSet,
    kind_protects: tuple[str, ...],
    keep: tuple[str, ...],
    scope: Scope,
    person_map: np.ndarray,
    persons: Sequence[PersonLike],
) -> np.ndarray:
    """HxW bool: what the mask never covers."""
    names = ALWAYS_PROTECTED + kind_protects + tuple(n for part in keep for n in KEEP_PARTS[part])
    protected = in_classes(labels, class_ids(names, label_set)) | other_people(scope, person_map)
    if "hands" in keep:
        for region in person_regions(scope, person_map, min(len(persons), 255)):
            protected |= hand_pixels(labels, label_set, region)
    return protected
