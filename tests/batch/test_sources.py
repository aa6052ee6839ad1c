"""What a batch job lists (no Ray here): a folder walked like ``m2fp parse DIR --recursive``,
path lists in three formats, file URIs, clashing stems refused; and the one rule that only
``m2fp.batch`` imports Ray."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from m2fp.batch.errors import BatchError
from m2fp.batch.sources import list_sources, read_source
from m2fp.imaging.input_file import InputFileError

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "m2fp"


def _tree(root: Path) -> None:
    for name in ("a.jpg", "sub/b.png", "sub/deeper/c.JPEG", ".hidden.png", "notes.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_a_folder_is_walked_recursively_with_parse_stems(tmp_path):
    _tree(tmp_path / "in")
    (tmp_path / "in" / "out").mkdir()
    (tmp_path / "in" / "out" / "old_vis.png").write_bytes(b"x")
    sources, refusals = list_sources(
        str(tmp_path / "in"), out_dir=tmp_path / "in" / "out", follow_symlinks=False
    )
    assert [(s.name, s.stem) for s in sources] == [
        ("a.jpg", "a"), ("sub/b.png", "sub/b"), ("sub/deeper/c.JPEG", "sub/deeper/c"),
    ]  # fmt: skip
    assert {s.root for s in sources} == {str(tmp_path / "in")} and refusals == []


def test_a_symlinked_folder_out_of_the_input_is_a_refusal(tmp_path):
    _tree(tmp_path / "elsewhere")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link").symlink_to(tmp_path / "elsewhere")
    sources, refusals = list_sources(
        str(tmp_path / "in"), out_dir=tmp_path / "out", follow_symlinks=False
    )
    assert sources == [] and [r.code for r in refusals] == ["outside_input"]


@pytest.mark.parametrize("form", ["txt", "csv", "parquet"])
def test_lists_of_paths_name_files_relative_to_the_list(tmp_path, form):
    _tree(tmp_path)
    paths = ["a.jpg", str(tmp_path / "sub" / "b.png")]
    listing = tmp_path / f"list.{form}"
    if form == "txt":
        listing.write_text("# photos\n" + "\n".join(paths) + "\n\n")
    elif form == "csv":
        listing.write_text("path,label\n" + "".join(f"{p},x\n" for p in paths))
    else:
        pq.write_table(pa.table({"path": paths}), listing)
    sources, _ = list_sources(str(listing), out_dir=tmp_path / "out", follow_symlinks=False)
    assert [(s.name, s.stem, s.root) for s in sources] == [("a.jpg", "a", ""), ("b.png", "b", "")]
    assert read_source(sources[0], max_bytes=10, follow_symlinks=False) == b"x"


def test_a_list_without_a_path_column_and_clashing_stems_are_refused(tmp_path):
    (tmp_path / "list.csv").write_text("file\na.jpg\n")
    with pytest.raises(BatchError, match="no 'path' column"):
        list_sources(str(tmp_path / "list.csv"), out_dir=tmp_path, follow_symlinks=False)
    (tmp_path / "list.txt").write_text("x/a.jpg\ny/a.png\n")
    with pytest.raises(BatchError, match="would write the same outputs"):
        list_sources(str(tmp_path / "list.txt"), out_dir=tmp_path, follow_symlinks=False)
    with pytest.raises(BatchError, match="no such file"):
        list_sources(str(tmp_path / "missing"), out_dir=tmp_path, follow_symlinks=False)


def test_a_filesystem_uri_is_listed_and_read_within_the_cap(tmp_path):
    _tree(tmp_path / "in")
    (tmp_path / "in" / "big.png").write_bytes(bytes(64))
    sources, _ = list_sources(f"file://{tmp_path / 'in'}", out_dir=tmp_path / "out",
                              follow_symlinks=False)  # fmt: skip
    assert [s.stem for s in sources] == ["a", "big", "sub/b", "sub/deeper/c"]
    assert all(s.path.startswith("file://") for s in sources)
    assert read_source(sources[0], max_bytes=10, follow_symlinks=False) == b"x"
    with pytest.raises(InputFileError) as refused:
        read_source(sources[1], max_bytes=10, follow_symlinks=False)
    assert refused.value.kind == "file_too_large"


def test_only_the_batch_package_imports_ray():
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "ray" or name.startswith("ray.") for name in names):
                importers.add(path.relative_to(PACKAGE).parts[0])
    assert importers == {"batch"}
