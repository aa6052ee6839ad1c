"""The manual builds, offline and strictly, and the README's links land somewhere.

`mkdocs build --strict` fails on a link to a missing page or anchor, so a renamed heading or
a moved page breaks this test instead of a reader's click. The README is not part of the site
(it is the repository's front page), so its relative links are checked here directly.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def build_site(project: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "docs", project / "docs")
    for name in ("mkdocs.yml", "BENCHMARKS.md"):
        shutil.copy(ROOT / name, project / name)
    return project


def test_the_manual_builds_strictly(tmp_path: Path) -> None:
    built = build_site(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "site" / "benchmarks" / "index.html").is_file()
    # The site must not make a reader's browser fetch fonts or scripts from elsewhere.
    pages = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "fonts.googleapis.com" not in pages and "fonts.gstatic.com" not in pages


@pytest.mark.parametrize(
    "broken", ["[x](no-such-page.md)", "[x](engines.md#no-such-heading)"], ids=["page", "anchor"]
)
def test_a_broken_link_fails_the_build(tmp_path: Path, broken: str) -> None:
    project = copy_project(tmp_path)
    page = project / "docs" / "index.md"
    page.write_text(page.read_text() + f"\n{broken}\n")
    built = build_site(project, tmp_path / "site")
    assert built.returncode != 0
    assert "no-such" in built.stdout + built.stderr


def relative_links(markdown: Path) -> list[str]:
    return [
        link
        for link in LINK.findall(markdown.read_text())
        if not re.match(r"[a-z]+:", link) and not link.startswith("#")
    ]


def test_the_readme_links_point_at_files_of_the_repository() -> None:
    links = relative_links(ROOT / "README.md")
    assert links, "the README links into docs/"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert missing == []


@pytest.mark.parametrize(
    "document",
    [
        "README.md",
        "BENCHMARKS.md",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
    ],
)
def test_no_document_points_outside_the_repository(document: str) -> None:
    assert "../shared" not in (ROOT / document).read_text()
