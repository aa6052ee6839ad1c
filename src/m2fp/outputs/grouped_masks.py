"""Grouped masks by name (``hair``, ``upper_clothes``, ``head+Scarf``...; the groups are in
``m2fp.outputs.mask_rules``), shaped by ``MaskOptions``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from m2fp.labels import LabelSet
from m2fp.outputs.class_pixels import in_classes
from m2fp.outputs.mask_rules import MaskOptions, spec_ids
from m2fp.outputs.morphology import dilate, feather
from m2fp.outputs.person_scope import PersonLike, scope_of


def spec_union_ids(specs: Sequence[str], label_set: LabelSet) -> tuple[int, ...]:
    """Class ids of the union of several mask specs."""
    return tuple(sorted({i for spec in specs for i in spec_ids(spec, label_set)}))


def grouped_mask(
    label_map: np.ndarray,
    label_set: LabelSet,
    specs: Sequence[str],
    options: MaskOptions,
    *,
    person_map: np.ndarray,
    persons: Sequence[PersonLike],
) -> np.ndarray:
    """The union of the classes ``specs`` name, restricted to ``options.person``, dilated,
    inverted, feathered and cropped, in that order.

    Args:
        label_map: HxW uint8 in ``label_set`` ids (CIHP or LIP).
        person_map: HxW uint8, i where ``persons[i - 1]`` is (0: nobody).

    Returns:
        HxW (or the person's box) bool; uint8 0..255 with ``feather``.

    Raises:
        OutputRequestError: an unknown or underivable name. PersonNotFoundError.
    """
    scope = scope_of(persons, person_map, options.person)
    mask = in_classes(label_map, spec_union_ids(specs, label_set))
    if scope.region is not None:
        mask &= scope.region
    mask = dilate(mask, options.dilate)
    if options.invert:
        mask = ~mask
    shaped = feather(mask, options.feather) if options.feather else mask
    return scope.crop(shaped) if options.crop else shaped
