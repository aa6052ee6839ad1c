"""How the interfaces spell masks, kinds, parts and persons, and what they refuse."""

from __future__ import annotations

import pytest

from m2fp.labels import CIHP_LABELS, LIP_LABELS
from m2fp.outputs.errors import OutputRequestError
from m2fp.outputs.mask_rules import (
    AGNOSTIC_KINDS,
    KEEP_PARTS,
    check_spec,
    group_ids,
    parse_keep,
    parse_kinds,
    parse_person,
    parse_specs,
    rounded_ratio,
    spec_ids,
)


def test_specs_are_normalised_deduplicated_and_checked_without_a_model():
    assert parse_specs(" hair, head + Scarf ,hair") == ("hair", "head+Scarf")
    assert check_spec("Torso-skin") == "Torso-skin"  # a CIHP name
    assert check_spec("Jumpsuits") == "Jumpsuits"  # a LIP name
    with pytest.raises(OutputRequestError, match="unknown mask 'tail'"):
        parse_specs("hair,tail")
    with pytest.raises(OutputRequestError, match="unknown mask 'Human'"):
        check_spec("Human")


def test_spec_ids_follow_the_label_set():
    assert spec_ids("upper_clothes", CIHP_LABELS) == (5, 6, 7)
    assert spec_ids("upper_clothes", LIP_LABELS) == (5, 6, 7, 10)
    assert spec_ids("head+Scarf", CIHP_LABELS) == (1, 2, 4, 11, 13)
    assert group_ids("foreground", CIHP_LABELS) == tuple(range(1, 20))
    assert group_ids("skin", CIHP_LABELS) == (10, 13, 14, 15, 16, 17)


def test_kinds_keep_and_person():
    assert parse_kinds("upper_body, overall") == ("upper_body", "overall")
    assert set(AGNOSTIC_KINDS) == {"upper_body", "lower_body", "dresses", "overall"}
    with pytest.raises(OutputRequestError, match="unknown agnostic mask 'tops'"):
        parse_kinds("tops")
    assert parse_keep("face,hands") == ("face", "hands")
    assert parse_keep("none") == ()
    assert tuple(KEEP_PARTS) == ("face", "hair", "hands", "feet")
    with pytest.raises(OutputRequestError, match="unknown part to keep"):
        parse_keep("face,toes")
    assert parse_person("main") == "main" and parse_person("12") == 12
    for bad in ("-1", "1.5", "first", "1000", "", "٣"):
        with pytest.raises(OutputRequestError, match="a person is 'main' or"):
            parse_person(bad)


def test_rounded_ratio_rounds_half_up_with_integers():
    assert [rounded_ratio(n, 50) for n in (0, 24, 25, 74, 75, 524)] == [1, 1, 1, 1, 2, 10]
