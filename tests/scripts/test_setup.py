"""``scripts/setup.sh``: the install steps, and ``--with-model`` fetching the default model
through ``m2fp model download`` (which checks and resumes it). Run on a copy of the script
whose ``.venv`` holds stand-ins that record their arguments: no install, no hub; and the
cached model it leaves is found by ``m2fp serve`` / ``model info`` without ``--model``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from m2fp.weights.location import default_model_dir

SETUP = Path(__file__).parents[2] / "scripts" / "setup.sh"
STAND_IN = '#!/bin/sh\necho "$(basename "$0") $*" >> "$(dirname "$0")/../../calls.log"\n'


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the script in a fake checkout with a recording .venv and .venv-checkov."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SETUP, tmp_path / "scripts" / "setup.sh")
    for venv, names in ((".venv", ("python", "m2fp")), (".venv-checkov", ("python",))):
        bin_dir = tmp_path / venv / "bin"
        bin_dir.mkdir(parents=True)
        for name in names:
            (bin_dir / name).write_text(STAND_IN)
            (bin_dir / name).chmod(0o755)
    return tmp_path


def setup(checkout: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "setup.sh"), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    log = checkout / "calls.log"
    return done, log.read_text().splitlines() if log.exists() else []


def test_plain_setup_installs_and_fetches_nothing(checkout):
    done, calls = setup(checkout)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "python -m pip install --quiet torch==2.13.0",
        "python -m pip install --quiet -e .[torch,server,crypto,ray,test]",
        # checkov, in its tool venv (.venv-checkov)
        "python -m pip install --quiet -r scripts/checkov-requirements.txt",
    ]


def test_with_model_downloads_the_default_model_after_installing(checkout):
    done, calls = setup(checkout, "--with-model")
    assert done.returncode == 0, done.stderr
    assert calls[-1] == "m2fp model download"
    assert len(calls) == 4 and "no --model needed" in done.stdout


def test_an_unknown_option_is_refused_before_anything_runs(checkout):
    done, calls = setup(checkout, "--with-models")
    assert done.returncode == 2 and calls == []
    assert done.stderr.strip() == (
        "setup.sh: unknown option --with-models (use --with-model or --help)"
    )


def test_the_cached_default_is_used_without_model(tiny_model_dir, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(tiny_model_dir, home / default_model_dir().name)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "M2FP_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "m2fp", "model", "info", "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["task"] == "multi-person" and report["weights_file"] == "model.safetensors"
