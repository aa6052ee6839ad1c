"""The CLI with the single-person (LIP) model: info says what it is, parse (with and without
--flip) writes its outputs, the encrypted format and verify/rekey work unchanged for it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from m2fp.cli import run
from m2fp.protection.keys import key_id, parse_key
from tests.conftest import LIP_GOLDEN
from tests.utils.model_keys import make_key_file

IMAGE = str(LIP_GOLDEN / "image.png")


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = run(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_model_info_says_task_and_classes(lip_model_dir, capsys):
    code, out, _ = cli(["model", "info", "--json", str(lip_model_dir)], capsys)
    info = json.loads(out)
    assert code == 0
    assert info["task"] == "single-person" and info["label_set"] == "lip"
    assert len(info["classes"]) == 20 and info["classes"][10] == "Jumpsuits"
    assert info["config"]["input_single_human"] == {"sizes": [[96, 128]]}


def test_model_info_of_the_multi_person_model(tiny_model_dir, capsys):
    info = json.loads(cli(["model", "info", "--json", str(tiny_model_dir)], capsys)[1])
    assert info["task"] == "multi-person" and info["label_set"] == "cihp"


def parse(model: Path, out: Path, *extra: str) -> dict:
    assert run(["parse", IMAGE, "--model", str(model), "--out", str(out), *extra]) == 0
    return json.loads((out / "image.json").read_text())


def test_parse_writes_the_lip_outputs_with_and_without_flip(lip_model_dir, tmp_path):
    plain = parse(lip_model_dir, tmp_path / "plain")
    flipped = parse(lip_model_dir, tmp_path / "flip", "--flip")
    for summary in (plain, flipped):
        assert summary["persons"] == [] and (summary["width"], summary["height"]) == (90, 150)
        assert [p["label"] for p in summary["unassigned_parts"]] == summary["classes_present"][::-1]
    assert plain["classes_present"] == ["Pants", "Skirt"]
    labels = np.asarray(Image.open(tmp_path / "plain" / "image_labels.png"))
    assert set(np.unique(labels).tolist()) == {0, 9, 12}
    assert plain != flipped  # the second pass changed the scores at least


def test_encrypted_lip_model_verify_rekey_and_parse(lip_model_dir, tmp_path, capsys):
    key_file = make_key_file(tmp_path / "lip.key")
    new_key_file = make_key_file(tmp_path / "new.key")
    sealed = tmp_path / "lip.m2fp"
    args = ["model", "encrypt", str(lip_model_dir), "--key-file", str(key_file)]
    assert cli([*args, "--out", str(sealed)], capsys)[0] == 0
    code, out, _ = cli(
        ["model", "verify", "--json", str(sealed), "--key-file", str(key_file)], capsys
    )
    verified = json.loads(out)
    plain = json.loads(cli(["model", "info", "--json", str(lip_model_dir)], capsys)[1])
    assert code == 0 and verified["task"] == "single-person" and verified["label_set"] == "lip"
    assert verified["config"] == plain["config"]
    rekeyed = tmp_path / "rekeyed.m2fp"
    code, out, _ = cli(
        [
            *("model", "rekey", str(sealed), "--key-file", str(key_file)),
            *("--new-key-file", str(new_key_file), "--out", str(rekeyed)),
        ],
        capsys,
    )
    assert code == 0 and key_id(parse_key(new_key_file.read_bytes())) in out
    code, out, _ = cli(
        ["model", "verify", "--json", str(rekeyed), "--key-file", str(new_key_file)], capsys
    )
    assert code == 0 and json.loads(out)["sha256"] == verified["sha256"]
    expected = parse(lip_model_dir, tmp_path / "p")
    assert parse(rekeyed, tmp_path / "e", "--key-file", str(new_key_file)) == expected
    assert (tmp_path / "e" / "image_labels.png").read_bytes() == (
        tmp_path / "p" / "image_labels.png"
    ).read_bytes()
