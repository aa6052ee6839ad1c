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
