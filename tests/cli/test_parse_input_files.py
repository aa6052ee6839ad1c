"""``m2fp parse`` reading hostile input files: FIFOs, huge sparse files, oversized files,
symlinks out of the input folder, terminal escapes in names. Each refusal is one line, the
other images still run, the exit code is 1; nothing blocks and nothing is read whole."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from m2fp.cli import run
from m2fp.cli.parse_inputs import collect, walk, watch
from m2fp.defaults import DEFAULT_MAX_FILE_BYTES
from tests.conftest import golden_sizes
from tests.utils.child_output import wait_for

SIZES = [f"--min-size={golden_sizes()[0]}", f"--max-size={golden_sizes()[1]}"]
GIB = 1 << 30
# peak RSS of `m2fp parse` with the tiny model is ~0.5 GB here; a sparse file read whole
# would add its full size
PEAK_RSS_BOUND = 1.5 * GIB
SPARSE_BYTES = 2 * GIB


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)  # holes: no disk, but reading it fills memory
    return path


def hostile_folder(tmp_path: Path, golden_image_path: Path) -> tuple[Path, Path]:
    """An input folder holding one good image and one of each hostile kind; a folder
    outside it holding a good image the symlinks point at."""
    inputs, outside = tmp_path / "in", tmp_path / "elsewhere"
    (inputs / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(golden_image_path, inputs / "good.png")
    shutil.copy(golden_image_path, outside / "secret.png")
    os.mkfifo(inputs / "pipe.jpg")
    sparse(inputs / "huge.jpg", SPARSE_BYTES)
    (inputs / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4096)
    (inputs / "out.png").symlink_to(outside / "secret.png")
    (inputs / "sub" / "linked").symlink_to(outside, target_is_directory=True)
    (inputs / "evil\x1b[2J\x1b]0;owned\x07.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return inputs, outside


def m2fp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "m2fp", "parse", *args, *SIZES],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def statuses(stdout: bytes) -> dict[str, str]:
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line]
    return {line["image"]: line["status"] for line in lines}


def test_a_hostile_folder_gives_one_line_per_refusal(tmp_path, tiny_model_dir, golden_image_path):
    inputs, _ = hostile_folder(tmp_path, golden_image_path)
    out = tmp_path / "out"
    proc = m2fp(
        str(inputs),
        "--recursive",
        "--max-file-size=4K",
        f"--model={tiny_model_dir}",
        f"--out={out}",
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "\x1b" not in stderr and "\x07" not in stderr
    problems = sorted(line for line in stderr.splitlines() if line.startswith("m2fp:"))
    assert problems == sorted(
        [
            f"m2fp: {inputs}/big.png: 4104 bytes, more than the limit of 4096",
            "m2fp: evil\\x1b[2J\\x1b]0;owned\\x07.png: the image could not be decoded",
            f"m2fp: {inputs}/huge.jpg: {SPARSE_BYTES} bytes, more than the limit of 4096",
            f"m2fp: {inputs}/out.png: a symlink out of {inputs} "
            "(pass --follow-symlinks to take it)",
            f"m2fp: {inputs}/pipe.jpg: not a regular file",
            f"m2fp: {inputs}/sub/linked: a symlink out of {inputs} "
            "(pass --follow-symlinks to take it)",
        ]
    )
    assert statuses(proc.stdout) == {
        "good.png": "ok",
        "big.png": "failed",
        "evil\x1b[2J\x1b]0;owned\x07.png": "failed",  # stdout's JSON escapes it
        "huge.jpg": "failed",
        "out.png": "failed",
        "pipe.jpg": "failed",
        "sub/linked": "failed",
    }
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "good_labels.png", "good_vis.png"]


def test_followed_symlinks_are_parsed(tmp_path, tiny_model_dir, golden_image_path):
    inputs, _ = hostile_folder(tmp_path, golden_image_path)
    for name in ("pipe.jpg", "huge.jpg", "big.png", "evil\x1b[2J\x1b]0;owned\x07.png"):
        (inputs / name).unlink()
    proc = m2fp(
        str(inputs),
        "--recursive",
        "--follow-symlinks",
        f"--model={tiny_model_dir}",
        f"--out={tmp_path / 'out'}",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert statuses(proc.stdout) == {
        "good.png": "ok",
        "out.png": "ok",
        "sub/linked/secret.png": "ok",
    }


def test_a_named_fifo_and_an_oversized_file_do_not_stop_the_others(
    tmp_path, tiny_model_dir, golden_image_path, capsys
):
    fifo = tmp_path / "named.jpg"
    os.mkfifo(fifo)
    big = tmp_path / "big.png"
    big.write_bytes(golden_image_path.read_bytes() + b"\0" * 100)  # one byte too many
    code = run(
        [
            "parse",
            str(fifo),
            str(big),
            str(golden_image_path),
            f"--max-file-size={golden_image_path.stat().st_size}",
            f"--model={tiny_model_dir}",
            f"--out={tmp_path / 'out'}",
            *SIZES,
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert statuses(captured.out.encode()) == {
        "named.jpg": "failed",
        "big.png": "failed",
        "image.png": "ok",
    }
    assert f"m2fp: {fifo}: not a regular file" in captured.err.splitlines()


@pytest.mark.parametrize("size", ["0", "-5", "ten", "1.5M", "10T"])
def test_max_file_size_must_be_a_positive_size(size, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        run(["parse", "x.png", f"--max-file-size={size}", f"--out={tmp_path}"])
    assert exited.value.code == 2
    assert "--max-file-size: must be a positive size in bytes" in capsys.readouterr().err


def test_the_default_cap_is_the_servers_upload_limit():
    from m2fp.cli.arguments import build_parser
    from m2fp.server.settings import Settings

    args = build_parser().parse_args(["parse", "x.png", "--out=o"])
    assert args.max_file_size == DEFAULT_MAX_FILE_BYTES == Settings().max_upload_bytes


def test_a_symlink_loop_is_walked_once(tmp_path):
    inputs, outside = tmp_path / "in", tmp_path / "elsewhere"
    inputs.mkdir()
    outside.mkdir()
    (outside / "a.png").write_bytes(b"a")
    (inputs / "out").symlink_to(outside, target_is_directory=True)
    (outside / "back").symlink_to(outside, target_is_directory=True)  # a loop
    (inputs / "inner").symlink_to(inputs, target_is_directory=True)  # inside: walked already
    found = walk(inputs, recursive=True, out_dir=tmp_path / "o", follow_symlinks=True)
    assert found == [(inputs / "out" / "a.png", None)]
    refused = walk(inputs, recursive=True, out_dir=tmp_path / "o")
    assert [(path, error.kind) for path, error in refused] == [(inputs / "out", "outside_input")]
    # not recursive: no folder is entered, so none is refused either
    assert walk(inputs, recursive=False, out_dir=tmp_path / "o") == []


def test_refused_folders_never_collide_with_outputs(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "x.png").write_bytes(b"x")
    (inputs / "x").symlink_to(tmp_path, target_is_directory=True)
    items = collect([str(inputs)], recursive=True, out_dir=tmp_path / "o")
    assert [(item.name, item.refused is not None) for item in items] == [
        ("x.png", False),
        ("x", True),
    ]


def test_watch_hands_a_fifo_over_at_once_and_only_stats_files(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.jpg")
    items = watch(inbox, recursive=False, out_dir=tmp_path / "out", sleep=lambda _: None)
    first = next(items)
    assert first.name == "pipe.jpg" and first.root == inbox


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_watch_refuses_hostile_files_without_reading_them(
    tmp_path, tiny_model_dir, golden_image_path
):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(golden_image_path, inbox / "early.png")
    os.mkfifo(inbox / "fifo.jpg")
    sparse(inbox / "huge.jpg", SPARSE_BYTES)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m2fp",
            "parse",
            f"--watch={inbox}",
            f"--out={out}",
            f"--model={tiny_model_dir}",
            *SIZES,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(out / "early.json", process)
        # taken after the hostile ones (each look hands its items over in order)
        shutil.copy(golden_image_path, tmp_path / "late.png")
        (tmp_path / "late.png").rename(inbox / "late.png")
        wait_for(out / "late.json", process)
        peak = vm_hwm(process.pid)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / GIB:.2f} GiB: the sparse file was read"
    assert process.returncode == 1
    assert statuses(stdout) == {
        "early.png": "ok",
        "fifo.jpg": "failed",
        "huge.jpg": "failed",
        "late.png": "ok",
    }
    lines = stderr.decode().splitlines()
    assert f"m2fp: {inbox}/fifo.jpg: not a regular file" in lines
    limit = DEFAULT_MAX_FILE_BYTES
    assert f"m2fp: {inbox}/huge.jpg: {SPARSE_BYTES} bytes, more than the limit of {limit}" in lines
