"""Run Python code in a fresh interpreter where ``import torch`` fails, as on the slim runtime.

A meta-path finder placed first refuses ``torch`` and every ``torch.*`` module, so code that
reaches for torch fails loudly instead of quietly loading the installed copy; the script ends by
asserting torch never entered ``sys.modules``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_REFUSE_TORCH = """
import importlib.abc
import sys


class _RefuseTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)", name=name)
        return None


sys.meta_path.insert(0, _RefuseTorch())
"""

_CHECK_ABSENT = """
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")], "torch imported"
"""
# what ``command_without_torch`` prints once the check passed: a long-running child (a
# server stopped by a signal) shows it in its log
ABSENT = "torch never imported"


def command_without_torch(code: str) -> list[str]:
    """The command line running ``code`` in this interpreter with torch refused; when
    ``code`` returns, the check runs and ``ABSENT`` is printed."""
    return [sys.executable, "-c", _script(code) + f"print({ABSENT!r}, flush=True)\n"]


def _script(code: str) -> str:
    return _REFUSE_TORCH + textwrap.dedent(code) + _CHECK_ABSENT


def run_without_torch(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``code`` run by this interpreter with torch refused; stdout/stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-c", _script(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
