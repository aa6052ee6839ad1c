"""What a batch job parses, and how one input's bytes are read.

``SRC`` is a local folder (walked recursively, as ``m2fp parse DIR --recursive`` walks it), a
list of paths (``.txt``: one a line, ``#`` comments; ``.csv`` or ``.parquet``: a ``path``
column; relative paths are relative to the list's folder), a single image, or any of these
behind a pyarrow filesystem URI (``s3://bucket/photos/``, ``gs://...``). Each input gets the
output stem ``m2fp parse`` gives it: a walked file its path below the folder, a listed file
its own stem.

Local files are read through ``m2fp.imaging.input_file`` (regular files only, size cap, no
symlinks out of the folder); a URI's object is read to at most the same cap.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from m2fp.batch.errors import BatchError
from m2fp.imaging.input_file import InputFileError, read_input_file
from m2fp.imaging.input_folder import IMAGE_SUFFIXES, walk

LIST_SUFFIXES = (".txt", ".csv", ".parquet")


@dataclass(frozen=True)
class Source:
    """One input image.

    Attributes:
        name: how the summary JSON and failure records name it (as ``m2fp parse`` does).
        stem: output stem relative to ``--out``, POSIX form (``shoes/a`` for ``shoes/a.jpg``).
        path: a local path or a filesystem URI.
        root: the local folder it was found in (its symlinks may not lead out), or "" for
            a file named directly or by a list.
    """

    name: str
    stem: str
    path: str
    root: str = ""


@dataclass(frozen=True)
class Refusal:
    """An input refused while listing (a symlinked folder leading out of ``SRC``)."""

    path: str
    code: str
    message: str


def is_uri(text: str) -> bool:
    """A filesystem URI (``s3://...``), not a local path."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isalnum()


def list_sources(
    src: str, *, out_dir: Path, follow_symlinks: bool
) -> tuple[list[Source], list[Refusal]]:
    """Every input of ``src``, and the refusals met while walking.

    Raises:
        BatchError: ``src`` does not exist, a list has no ``path`` column, or two inputs
            would write the same outputs.
    """
    if is_uri(src):
        sources = _uri_sources(src)
        refusals: list[Refusal] = []
    else:
        sources, refusals = _local_sources(Path(src), out_dir, follow_symlinks)
    seen: dict[str, str] = {}
    for source in sources:
        if source.stem in seen:
            raise BatchError(
                f"{seen[source.stem]} and {source.name} would write the same outputs "
                f"({source.stem}_*); parse them into different --out directories"
            )
        seen[source.stem] = source.name
    return sources, refusals


def _local_sources(
    src: Path, out_dir: Path, follow_symlinks: bool
) -> tuple[list[Source], list[Refusal]]:
    if src.is_dir():
        if src.resolve() == out_dir.resolve():
            raise BatchError("--out must not be the folder images are read from")
        found = walk(src, recursive=True, out_dir=out_dir, follow_symlinks=follow_symlinks)
        sources, refusals = [], []
        for path, refused in found:
            if refused is not None:
                refusals.append(Refusal(str(path), refused.kind, str(refused)))
                continue
            below = PurePosixPath(path.relative_to(src).as_posix())
            sources.append(
                Source(
                    name=str(path.relative_to(src)),
                    stem=str(below.with_suffix("")),
                    path=str(path),
                    root=str(src),
                )
            )
        return sources, refusals
    if not src.exists():
        raise BatchError(f"{src}: no such file or folder")
    if src.suffix.lower() in LIST_SUFFIXES:
        with open(src, "rb") as handle:
            paths = _list_paths(handle.read(), src.suffix.lower(), src.name)
        return [_named(p if is_uri(p) else str(src.parent / p)) for p in paths], []
    return [_named(str(src))], []


def _named(path: str) -> Source:
    """A file named directly or by a list: its own name and stem, as ``m2fp parse FILE``."""
    name = PurePosixPath(path.split("://", 1)[-1]).name if is_uri(path) else Path(path).name
    return Source(name=name, stem=str(PurePosixPath(name).with_suffix("")), path=path)


def _list_paths(data: bytes, suffix: str, name: str) -> list[str]:
    """The paths of a list file's bytes."""
    if suffix == ".txt":
        lines = (line.strip() for line in data.decode("utf-8").splitlines())
        return [line for line in lines if line and not line.startswith("#")]
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    table = (
        pq.read_table(io.BytesIO(data))
        if suffix == ".parquet"
        else pa_csv.read_csv(io.BytesIO(data))
    )
    if "path" not in table.column_names:
        raise BatchError(f"{name}: no 'path' column (found: {', '.join(table.column_names)})")
    return [str(p) for p in table.column("path").to_pylist() if p]


def _uri_sources(src: str) -> list[Source]:
    from pyarrow import fs

    filesystem, base = fs.FileSystem.from_uri(src)
    scheme = src.partition("://")[0]
    info = filesystem.get_file_info(base)
    if info.type == fs.FileType.NotFound:
        raise BatchError(f"{src}: not found")
    if info.type == fs.FileType.Directory:
        sources = []
        selector = fs.FileSelector(base, recursive=True)
        for entry in sorted(filesystem.get_file_info(selector), key=lambda e: e.path):
            below = PurePosixPath(entry.path).relative_to(base)
            hidden = any(part.startswith(".") for part in below.parts)
            if entry.type != fs.FileType.File or hidden:
                continue
            if below.suffix.lower() in IMAGE_SUFFIXES:
                sources.append(
                    Source(
                        name=str(below),
                        stem=str(below.with_suffix("")),
                        path=f"{scheme}://{entry.path}",
                    )
                )
        return sources
    suffix = PurePosixPath(base).suffix.lower()
    if suffix in LIST_SUFFIXES:
        with filesystem.open_input_stream(base) as stream:
            paths = _list_paths(stream.read(), suffix, PurePosixPath(base).name)
        parent = PurePosixPath(base).parent
        return [_named(p if is_uri(p) else f"{scheme}://{parent / p}") for p in paths]
    return [_named(src)]


def read_source(source: Source, *, max_bytes: int, follow_symlinks: bool) -> bytes:
    """The bytes of one input, at most ``max_bytes``.

    Raises:
        InputFileError: as ``read_input_file`` (``not_found``, ``not_a_file``,
            ``outside_input``, ``file_too_large``, ``unreadable``), for URIs too.
    """
    if not is_uri(source.path):
        return read_input_file(
            Path(source.path),
            max_bytes=max_bytes,
            root=Path(source.root) if source.root else None,
            follow_symlinks=follow_symlinks,
        )
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(source.path)
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.NotFound:
            raise InputFileError("not_found", f"{source.path}: no such file")
        if info.type != fs.FileType.File:
            raise InputFileError("not_a_file", f"{source.path}: not a regular file")
        if info.size is not None and info.size > max_bytes:
            raise InputFileError("file_too_large", f"{source.path}: larger than {max_bytes} bytes")
        with filesystem.open_input_stream(path) as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise InputFileError("unreadable", f"{source.path}: could not be read") from exc
    if len(data) > max_bytes:
        raise InputFileError("file_too_large", f"{source.path}: larger than {max_bytes} bytes")
    return data
