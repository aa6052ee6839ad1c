"""The m2fp command: outputs, one-line failures and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from m2fp.cli import run
from m2fp.compute.precision import native_bf16


def m2fp(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "m2fp", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_parse_writes_outputs_and_reports_bad_images(tiny_model_dir, golden_image_path, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a not really")
    out = tmp_path / "out"
    code = run(
        [
            "parse",
            str(golden_image_path),
            str(bad),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--min-size",
            "128",
            "--max-size",
            "256",
        ]
    )
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "image.json",
        "image_labels.png",
        "image_vis.png",
    ]
    summary = json.loads((out / "image.json").read_text())
    assert summary["width"] == 150 and summary["persons"]
    assert {"score", "bbox", "area", "parts"} <= set(summary["persons"][0])


def test_parse_all_good_exits_zero(tiny_model_dir, golden_image_path, tmp_path):
    code = run(
        ["parse", str(golden_image_path), "--model", str(tiny_model_dir), "--out", str(tmp_path)]
    )
    assert code == 0


def test_bad_image_is_one_line(tiny_model_dir, tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    proc = m2fp("parse", str(bad), "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["m2fp: x.png: the image could not be decoded"]


def test_no_weights_anywhere(tmp_path, golden_image_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "M2FP_HOME": str(tmp_path / "none")}
    proc = m2fp("parse", str(golden_image_path), "--out", str(tmp_path / "o"), env=env)
    assert proc.returncode == 2
    from m2fp.weights.location import HOW_TO_GET

    assert proc.stderr.strip().splitlines() == [f"m2fp: {HOW_TO_GET}"]
    assert "m2fp model download" in HOW_TO_GET
    assert "Traceback" not in proc.stderr


def test_a_missing_input_file_is_named_as_missing(tiny_model_dir, tmp_path):
    missing = tmp_path / "holiday" / "photo.jpg"
    proc = m2fp("parse", str(missing), "--model", str(tiny_model_dir), "--out", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"m2fp: {missing}: the file does not exist"]
    assert json.loads(proc.stdout)["error"] == f"{missing}: the file does not exist"


@pytest.mark.parametrize("command", ["parse", "serve", "model info"])
def test_a_model_path_that_does_not_exist_is_named(command, tmp_path, golden_image_path):
    missing = tmp_path / "does" / "not" / "exist"
    extra = {"parse": [str(golden_image_path), "--out", str(tmp_path / "o")]}.get(command, [])
    where = [str(missing)] if command == "model info" else ["--model", str(missing)]
    proc = m2fp(*command.split(), *where, *extra)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"m2fp: the model path {missing} does not exist"]


def test_a_missing_m2fp_model_is_named(tmp_path, golden_image_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "M2FP_MODEL": str(tmp_path / "gone")}
    proc = m2fp("parse", str(golden_image_path), "--out", str(tmp_path / "o"), env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"m2fp: M2FP_MODEL's path {tmp_path / 'gone'} does not exist"
    ]


def test_model_dir_without_weights(tmp_path, golden_image_path):
    (tmp_path / "configuration.json").write_text("{}")
    proc = m2fp("parse", str(golden_image_path), "--model", str(tmp_path), "--out", str(tmp_path))
    assert proc.returncode in (1, 2)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_model_info(tiny_model_dir, capsys):
    assert run(["model", "info", "--json", str(tiny_model_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == 684590
    assert info["classes"][-1] == "Human" and len(info["classes"]) == 21
    import hashlib

    weights = Path(tiny_model_dir) / "model.safetensors"
    assert info["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "args", [["parse", "x.png"], ["model"], ["parse", "x", "--out", "o", "--alpha", "2"]]
)
def test_usage_errors_exit_2(args):
    proc = m2fp(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.skipif(native_bf16(), reason="this CPU has native bf16")
def test_parse_refuses_bf16_without_native_support(tiny_model_dir, golden_image_path, tmp_path):
    result = m2fp(
        "parse",
        str(golden_image_path),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(tmp_path / "out"),
        "--precision",
        "bf16",
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "bf16" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16")
def test_parse_runs_bf16_with_native_support(tiny_model_dir, golden_image_path, tmp_path):
    out = tmp_path / "out"
    result = m2fp(
        "parse",
        str(golden_image_path),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--precision",
        "bf16",
    )
    assert result.returncode == 0, result.stderr
    stem = golden_image_path.stem
    assert (out / f"{stem}_labels.png").is_file() and (out / f"{stem}.json").is_file()
