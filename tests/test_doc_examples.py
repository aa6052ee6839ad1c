"""The code examples of README.md and docs/*.md run, as written, doctest-style.

Every fenced ``python`` block of README.md and docs/*.md, and every ``bash`` block of
README.md, runs in a fresh temporary directory laid out so the examples' own names are true:

- ``path/to/model_dir`` is the golden tiny model (tests/data, its class head pinned so parts
  are found: ``tests.utils.visible_model``); ``photo.jpg`` and ``model.jpg`` are its photo (one
  person in the frame) saved as JPEG; ``paths`` is ``[Path("photo.jpg")]``;
- the Python blocks of one page share one namespace, in page order (a page defines
  ``parser`` once and later blocks use it), starting with ``parser`` already loaded from
  ``path/to/model_dir`` for pages that use one without showing how;
- bash blocks run under ``bash -euo pipefail`` with ``.venv/bin`` of this checkout, the
  model found through ``M2FP_HOME`` (no ``--model`` needed, as after ``scripts/setup.sh
  --with-model``) and no network: nothing may contact the hub.

A block that cannot run here opts out with a marker on the line just above its fence,
naming why:

    <!-- doc-test: skip REASON -->

A marker without a reason fails, and so does any block that raises or exits non-zero.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from m2fp.weights.location import default_model_dir

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*doc-test:\s*skip\b(.*?)-->\s*$")
RUN_LANGUAGES = {"python"}
README_LANGUAGES = {"python", "bash"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None  # the marker's reason, "" for a marker without one

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order, with the skip marker above each, if any."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            index += 1
        marker = MARKER.match(lines[start - 1]) if start else None
        found.append(
            Block(
                page=page,
                line=start + 1,
                language=match.group(1),
                code="\n".join(lines[start + 1 : index]) + "\n",
                skip=marker.group(1).strip() if marker else None,
            )
        )
        index += 1
    return found


def runnable(page: Path) -> list[Block]:
    languages = README_LANGUAGES if page.name == "README.md" else RUN_LANGUAGES
    return [block for block in blocks(page) if block.language in languages]


PAGE_BLOCKS = [(page, runnable(page)) for page in PAGES if runnable(page)]


@pytest.fixture
def workspace(tmp_path: Path, visible_model_dir: Path, golden_image_path: Path) -> Path:
    """The temporary directory the examples run in (see the module docstring)."""
    model = tmp_path / "path" / "to" / "model_dir"
    shutil.copytree(visible_model_dir, model)
    home = tmp_path / "m2fp_home"
    shutil.copytree(visible_model_dir, home / default_model_dir().name)
    with Image.open(golden_image_path) as photo:
        for name in ("photo.jpg", "model.jpg"):
            photo.convert("RGB").save(tmp_path / name, quality=95)
    return tmp_path


def run_python(block: Block, namespace: dict) -> None:
    code = compile(block.code, block.name, "exec")
    exec(code, namespace)  # nosec B102 # the project's own documentation


def run_bash(block: Block, workspace: Path) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(workspace),
        "M2FP_HOME": str(workspace / "m2fp_home"),
        # every request goes to a closed local port: a block that tries the network fails
        # at once, and nothing leaves this machine
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    (workspace / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(
    ("page", "page_blocks"), PAGE_BLOCKS, ids=[str(p.relative_to(ROOT)) for p, _ in PAGE_BLOCKS]
)
def test_the_examples_of_a_page_run(page, page_blocks, workspace, monkeypatch):
    from m2fp import HumanParser

    monkeypatch.chdir(workspace)
    namespace: dict = {
        "__name__": "__doc_example__",
        "parser": HumanParser.from_pretrained(workspace / "path" / "to" / "model_dir"),
        "paths": [Path("photo.jpg")],
    }
    ran = 0
    for block in page_blocks:
        if block.skip is not None:
            assert block.skip, f"{block.name}: a doc-test skip marker needs a reason"
            continue
        if block.language == "python":
            run_python(block, namespace)
        else:
            run_bash(block, workspace)
        ran += 1
    assert ran or all(block.skip for block in page_blocks)


def test_the_readme_shows_runnable_python():
    python = [b for b in runnable(ROOT / "README.md") if b.language == "python"]
    assert python and all(block.skip is None for block in python)
