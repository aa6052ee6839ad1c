"""OpenVINO's usage telemetry never runs in m2fp: no client ID in $HOME, no analytics queued.

Run in fresh interpreters (the refusal acts on the first import of OpenVINO) with a home of
their own and ``CI`` unset (openvino-telemetry stays quiet under ``CI=true``, which would hide
what a user's machine does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def _run(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "code",
    [
        # the engines' import, then a conversion-time import (OpenVINO's converter has its own
        # telemetry hooks)
        "from m2fp.engines.openvino_package import import_openvino\n"
        "ov = import_openvino()\nimport openvino.tools.ovc",
        # int8 quantisation imports NNCF, which sends its own events through the same module
        "from m2fp.engines.int8 import import_nncf\nimport_nncf()",
    ],
    ids=["openvino", "nncf"],
)
def test_importing_openvino_through_m2fp_writes_nothing_and_loads_no_telemetry(
    tmp_path: Path, code: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    check = (
        code + "\nimport sys\n"
        "assert sys.modules.get('openvino_telemetry') is None, 'telemetry loaded'\n"
        "assert 'openvino_telemetry.main' not in sys.modules, 'telemetry loaded'\n"
    )
    done = _run(check, home)
    assert done.returncode == 0, done.stderr
    assert list(home.rglob("*")) == [], "OpenVINO wrote into $HOME"


def test_the_check_sees_telemetry_when_openvino_is_imported_directly(tmp_path: Path) -> None:
    """The control: without m2fp's refusal the same import writes its client ID (so the test
    above would fail if the refusal went away), where openvino-telemetry is installed."""
    pytest.importorskip("openvino_telemetry")
    home = tmp_path / "home"
    home.mkdir()
    done = _run("import openvino", home)
    assert done.returncode == 0, done.stderr
    assert (home / "intel" / "openvino_ga_cid").exists()
