"""The package's public names, imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import m2fp


def test_every_public_name_resolves():
    for name in m2fp.__all__:
        assert getattr(m2fp, name) is not None, name
    assert set(m2fp.__all__) <= set(dir(m2fp))


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m2fp.nope  # noqa: B018


def test_importing_the_package_does_not_import_torch():
    code = "import m2fp, sys; assert 'torch' not in sys.modules; print(m2fp.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == m2fp.__version__


def _extra_requirements(extra: str) -> set[str]:
    """The requirement names ``m2fp[extra]`` declares, m2fp's own extras followed."""
    import re
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names: set[str] = set()
    pending, seen = [*project["dependencies"], f"m2fp[{extra}]"], set()
    while pending:
        requirement = pending.pop()
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        if name != "m2fp":
            names.add(name)
            continue
        for wanted in re.search(r"\[(.*)\]", requirement).group(1).split(","):
            if wanted.strip() not in seen:
                seen.add(wanted.strip())
                pending.extend(extras[wanted.strip()])
    return names


def test_the_runtime_install_declares_no_torch_and_the_torch_extra_does():
    runtime = _extra_requirements("runtime")
    assert {"openvino", "numpy", "pillow", "fastapi", "uvicorn", "cryptography"} <= runtime
    assert "torch" not in runtime and "safetensors" not in runtime
    assert "torch" in _extra_requirements("torch")
    assert "torch" in _extra_requirements("test")  # CI and scripts/setup.sh install it


def test_the_api_without_torch_names_the_extra_to_install():
    # HumanParser is there (the slim runtime runs OpenVINO packages with it); building a
    # network is what needs torch
    from tests.utils.without_torch import run_without_torch

    proc = run_without_torch(
        """
        import m2fp
        from m2fp.errors import MissingExtraError

        assert m2fp.HumanParser.from_pretrained
        try:
            m2fp.build_model
        except MissingExtraError as exc:
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'm2fp[torch]'" in proc.stdout
