"""Comparing two parses of one photo computed in different float orders (another batch size,
another engine): label maps and boxes must be equal, scores equal to float rounding."""

from __future__ import annotations


def assert_same_parse(ours, reference, *, score_tolerance: float = 1e-5) -> None:
    """``ours`` and ``reference`` (``ParsingResult``) agree: same size, same label map, same
    persons' boxes, scores within ``score_tolerance``."""
    assert ours.size == reference.size
    assert (ours.label_map == reference.label_map).all()
    assert [p.bbox for p in ours.persons] == [p.bbox for p in reference.persons]
    for person, expected in zip(ours.persons, reference.persons, strict=True):
        assert abs(person.score - expected.score) < score_tolerance
