"""The CLI where PyTorch is not installed (the slim runtime): a command that needs it fails
with one line naming the extra, never a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import GOLDEN
from tests.utils.without_torch import run_without_torch


def test_parse_from_a_checkpoint_says_which_extra_to_install(tiny_model_dir: Path, tmp_path):
    proc = run_without_torch(
        f"""
        import sys

        from m2fp.cli import run

        code = run(["parse", {str(GOLDEN / "image.png")!r}, "--model", {str(tiny_model_dir)!r},
                    "--out", {str(tmp_path)!r}])
        print(code)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "1"
    problems = [line for line in proc.stderr.splitlines() if line.strip()]
    assert problems == [
        "m2fp: this needs PyTorch, which the slim runtime (m2fp[runtime]) leaves out: "
        "pip install 'm2fp[torch]'"
    ]
    assert "Traceback" not in proc.stderr
