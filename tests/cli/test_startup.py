"""``m2fp --help`` and ``m2fp model keygen`` start without torch: argument parsing and the
key command are standard library only, and the package import is lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "PIL", "fastapi", "safetensors")

CHECK = """
import sys
from m2fp.cli import run
try:
    code = run(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY", heavy, file=sys.stderr)
sys.exit(code)
"""


def run_and_report(*args: str) -> tuple[subprocess.CompletedProcess, str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHECK.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    heavy = next(line for line in proc.stderr.splitlines() if line.startswith("HEAVY"))
    return proc, heavy


def test_importing_the_cli_does_not_import_torch():
    code = "import m2fp.cli, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["parse", "--help"],
        ["model", "keygen", "--stdout"],
        ["model", "--help"],
        ["serve", "--help"],
        ["parse", "x.png"],  # a usage error is reported before anything heavy loads
    ],
)
def test_light_commands_import_nothing_heavy(args):
    proc, heavy = run_and_report(*args)
    assert proc.returncode in (0, 2), proc.stderr
    assert heavy == "HEAVY []"


def test_a_heavy_command_does_load_torch(tiny_model_dir):
    """The check above can fail: a command that needs the network shows torch loaded."""
    proc, heavy = run_and_report("model", "info", str(tiny_model_dir))
    assert proc.returncode == 0, proc.stderr
    assert "'torch'" in heavy
