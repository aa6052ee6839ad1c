"""``m2fp serve`` start-up failures: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from m2fp.cli import run
from m2fp.compute.precision import native_bf16
from m2fp.server.app import load_parser
from m2fp.server.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("M2FP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("M2FP_HOME", "/nonexistent-m2fp-home")


def one_line_usage_error(capsys, *args: str) -> str:
    assert run(["serve", *args, "--port", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("m2fp: ")
    return lines[0]


def test_missing_model_in_a_real_process(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("M2FP_")}
    result = subprocess.run(
        [sys.executable, "-m", "m2fp", "serve", "--model", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=clean,
        timeout=180,
    )
    assert result.returncode == 2
    # a path that was given and is not there is named, not "download the weights"
    assert result.stderr.strip().splitlines() == [
        f"m2fp: the model path {tmp_path / 'none'} does not exist"
    ]


def test_no_model_anywhere(capsys):
    assert "no M2FP weights found" in one_line_usage_error(capsys)


def test_model_from_environment(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("M2FP_MODEL", str(tmp_path))
    assert "configuration.json" in one_line_usage_error(capsys)


@pytest.mark.parametrize(
    ("name", "value"),
    [("M2FP_CORS_ORIGINS", "*"), ("M2FP_API_KEYS", "my-plaintext-api-key")],
)
def test_unsafe_setting(capsys, monkeypatch, tiny_model_dir, name, value):
    monkeypatch.setenv(name, value)
    line = one_line_usage_error(capsys, "--model", str(tiny_model_dir))
    assert name in line
    assert value not in line or value == "*"


def test_pinned_hash_mismatch(capsys, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("M2FP_MODEL_SHA256", "0" * 64)
    assert "sha256" in one_line_usage_error(capsys, "--model", str(tiny_model_dir)).lower()


@pytest.mark.skipif(native_bf16(), reason="this CPU has native bf16")
def test_bf16_without_native_support_refuses_to_start(capsys, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("M2FP_PRECISION", "bf16")
    assert "bf16" in one_line_usage_error(capsys, "--model", str(tiny_model_dir))


def test_unknown_precision_is_a_setting_error(capsys, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("M2FP_PRECISION", "fp8")
    assert "M2FP_PRECISION" in one_line_usage_error(capsys, "--model", str(tiny_model_dir))


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16")
def test_bf16_with_native_support_serves_a_bf16_parser(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("M2FP_PRECISION", "bf16")
    parser = load_parser(load_settings(model=str(tiny_model_dir)))
    assert parser.describe_compute()["precision"] == "bf16"
