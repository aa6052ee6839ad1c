"""Output options the model cannot make are refused by ``m2fp batch`` before the job: the
one line ``m2fp parse`` prints for them, exit code 2, no Ray daemon started, nothing written
under DST. The classes come from the model's config (an encrypted model's authenticated
header, opened with its key file), not from a network built in the driver."""

from __future__ import annotations

import pytest

from m2fp.cli import run
from tests.batch.conftest import DaemonWatch, size_flags, write_photos
from tests.utils.model_keys import make_key_file

REFUSED = [
    # a class the model's label set lacks
    ("tiny", ["--masks", "Jumpsuits"], "'Jumpsuits' is neither a mask group nor a cihp class"),
    # a group the label set cannot make whole
    ("lip", ["--masks", "skin"], "a skin mask cannot be made from lip: it has no Torso-skin"),
    # a label map not derivable from the model's
    ("lip", ["--label-set", "cihp"], "a cihp label map cannot be made from lip"),
    # the same class refusal read from an encrypted model's header
    ("encrypted", ["--masks", "Jumpsuits"], "'Jumpsuits' is neither a mask group nor a cihp"),
]


def _problems(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("m2fp:")]


@pytest.fixture
def models(tiny_model_dir, lip_model_dir, encrypted_model, key_file) -> dict[str, list[str]]:
    return {
        "tiny": ["--model", str(tiny_model_dir)],
        "lip": ["--model", str(lip_model_dir)],
        "encrypted": ["--model", str(encrypted_model), "--key-file", str(key_file)],
    }


@pytest.mark.parametrize(("model", "options", "reason"), REFUSED)
def test_an_output_the_model_cannot_make_is_refused_before_ray_starts(
    capsys, tmp_path, models, model, options, reason
):
    write_photos(tmp_path / "in", 2)
    flags = [*models[model], *size_flags(), *options]
    assert run(["parse", str(tmp_path / "in"), "--out", str(tmp_path / "parsed"), *flags]) == 2
    parse_says = _problems(capsys)
    dst = tmp_path / "dst"
    with DaemonWatch() as watch:
        code = run(["batch", str(tmp_path / "in"), "--out", str(dst), *flags])
    batch_says = _problems(capsys)
    assert code == 2
    assert batch_says == parse_says and len(batch_says) == 1
    assert reason in batch_says[0]
    assert watch.started == set(), "a Ray was started for a job refused up front"
    assert not dst.exists()


def test_a_wrong_key_for_an_encrypted_model_is_refused_before_ray_starts(
    capsys, tmp_path, encrypted_model
):
    write_photos(tmp_path / "in", 1)
    other = make_key_file(tmp_path / "other.key")
    dst = tmp_path / "dst"
    with DaemonWatch() as watch:
        code = run(["batch", str(tmp_path / "in"), "--out", str(dst), "--model",
                    str(encrypted_model), "--key-file", str(other), *size_flags()])  # fmt: skip
    (line,) = _problems(capsys)
    assert code == 1 and "wrong model key" in line
    assert watch.started == set() and not dst.exists()
