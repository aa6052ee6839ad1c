"""One naming scheme for the CLI's files and the WebUI's downloads: the names themselves, and
the page's mirror (``server/static/file_names.js``, run in node) giving the same name as
``m2fp.outputs.file_names`` on every case."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from m2fp.outputs import file_names
from m2fp.outputs.file_names import (
    agnostic_mask_name,
    grouped_mask_name,
    label_map_name,
    overlay_name,
    summary_name,
)

STATIC = Path(file_names.__file__).parents[1] / "server" / "static" / "file_names.js"
NODE = shutil.which("node")

# (python function, javascript function, positional args, options as keywords)
CASES: list[tuple[str, str, list, dict]] = [
    ("overlay_name", "overlayName", ["photo"], {}),
    ("overlay_name", "overlayName", ["photo"], {"alpha": 0.6}),
    ("overlay_name", "overlayName", ["photo"], {"alpha": 0.35}),
    ("overlay_name", "overlayName", ["photo"], {"alpha": 0.29}),
    ("overlay_name", "overlayName", ["photo"], {"alpha": 0.0, "person": 0}),
    ("overlay_name", "overlayName", ["photo"], {"alpha": 1.0, "person": 3}),
    ("label_map_name", "labelMapName", ["photo"], {}),
    ("label_map_name", "labelMapName", ["photo"], {"label_set": "atr"}),
    ("grouped_mask_name", "groupedMaskName", ["photo", "hair"], {}),
    ("grouped_mask_name", "groupedMaskName", ["photo", "head+Scarf"], {"invert": True}),
    ("grouped_mask_name", "groupedMaskName", ["photo", "hair"], {"person": 0, "crop": True}),
    ("grouped_mask_name", "groupedMaskName", ["photo", "hair"], {"person": None, "crop": True}),
    (
        "grouped_mask_name",
        "groupedMaskName",
        ["a b", "upper_clothes"],
        {"person": "main", "crop": True, "dilate": 12, "feather": 3, "invert": True},
    ),
    ("agnostic_mask_name", "agnosticMaskName", ["photo", "upper_body"], {}),
    ("agnostic_mask_name", "agnosticMaskName", ["photo", "upper_body"], {"grey": True}),
    ("agnostic_mask_name", "agnosticMaskName", ["photo", "overall"], {"dilate": 0}),
    ("agnostic_mask_name", "agnosticMaskName", ["photo", "overall"], {"keep": []}),
    (
        "agnostic_mask_name",
        "agnosticMaskName",
        ["photo", "lower_body"],
        {"person": 1, "crop": True, "dilate": 20, "keep": ["hair", "face"], "grey": True},
    ),
    ("summary_name", "summaryName", ["photo"], {}),
]

JS_KEYS = {"label_set": "labelSet"}


def python_name(function: str, args: list, options: dict) -> str:
    if "keep" in options:
        options = {**options, "keep": tuple(options["keep"])}
    return getattr(file_names, function)(*args, **options)


def javascript_names(cases: list[tuple[str, str, list, dict]]) -> list[str]:
    calls = [
        [js, args, {JS_KEYS.get(k, k): v for k, v in options.items()}]
        for _, js, args, options in cases
    ]
    script = (
        f"import * as names from {json.dumps(STATIC.as_uri())};\n"
        "const calls = JSON.parse(process.argv[1]);\n"
        "console.log(JSON.stringify(calls.map(([f, args, o]) => names[f](...args, o))));\n"
    )
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")
def test_the_page_names_files_exactly_as_the_cli():
    expected = [python_name(py, args, options) for py, _, args, options in CASES]
    assert javascript_names(CASES) == expected
    # the only repeats: alpha 0.6 is the default; a crop without a person crops nothing
    assert len(set(expected)) == len(expected) - 2


def test_default_options_keep_the_plain_names():
    assert overlay_name("image") == "image_vis.png"
    assert label_map_name("image") == "image_labels.png"
    assert grouped_mask_name("image", "hair") == "image_mask_hair.png"
    assert agnostic_mask_name("image", "upper_body") == "image_agnostic_upper_body.png"
    assert summary_name("image") == "image.json"


def test_every_option_that_changes_the_pixels_is_in_the_name():
    name = grouped_mask_name("p", "hair", person=0, crop=True, dilate=5, feather=2, invert=True)
    assert name == "p_mask_hair_person1_crop_dilate5_feather2_inverted.png"
    assert agnostic_mask_name(
        "p", "overall", person="main", crop=True, dilate=0, keep=("feet", "face"), grey=True
    ) == ("p_agnostic_overall_main_crop_dilate0_keep-face-feet_grey.png")
    assert agnostic_mask_name("p", "overall", keep=()) == "p_agnostic_overall_keep-none.png"
    # the grey and the binary agnostic masks differ (the WebUI once named them alike)
    assert agnostic_mask_name("p", "upper_body", grey=True) != agnostic_mask_name("p", "upper_body")
    assert overlay_name("p", alpha=0.4, person=1) == "p_vis_alpha40_person2.png"
    assert label_map_name("p", label_set="lip") == "p_labels_lip.png"
