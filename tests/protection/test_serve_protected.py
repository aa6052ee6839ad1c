"""`m2fp serve` with an encrypted model: key from the environment or a key file, in memory
only; a wrong or badly protected key stops start-up with one line that never shows the key."""

from __future__ import annotations

import os
import sys

import httpx
import pytest

from m2fp.cli import run
from m2fp.protection.keys import encode_key, generate_key
from tests.conftest import GOLDEN
from tests.server.conftest import free_port, running_process
from tests.utils.model_keys import assert_no_key, make_key_file


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("M2FP_"):
            monkeypatch.delenv(name)


def serve_command(model, port: int) -> list[str]:
    return [sys.executable, "-m", "m2fp", "serve", "--model", str(model), "--port", str(port)]


@pytest.mark.parametrize("key_source", ["file", "value"])
def test_encrypted_model_serves(encrypted_model, key_file, model_key, tmp_path, key_source):
    port = free_port()
    env = {"M2FP_MIN_SIZE": "128", "M2FP_MAX_SIZE": "256"}
    if key_source == "file":
        env["M2FP_MODEL_KEY_FILE"] = str(key_file)
    else:
        env["M2FP_MODEL_KEY"] = encode_key(model_key)
    log = tmp_path / "server.log"
    with running_process(serve_command(encrypted_model, port), port, log, env=env) as server:
        data = (GOLDEN / "image.png").read_bytes()
        response = httpx.post(
            f"{server.url}/api/v1/parse",
            files={"image": ("photo.png", data, "image/png")},
            timeout=60,
        )
        assert response.status_code == 200
        assert response.json()["persons"]
    assert_no_key(log.read_bytes(), model_key)


def one_line_failure(capsys, *args: str) -> str:
    assert run(["serve", *args, "--port", "1"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("m2fp: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_wrong_key_refuses_to_start(capsys, encrypted_model, tmp_path, model_key):
    wrong = generate_key()
    wrong_file = make_key_file(tmp_path / "wrong.key", wrong)
    line = one_line_failure(capsys, "--model", str(encrypted_model), "--key-file", str(wrong_file))
    assert "key" in line.lower()
    assert_no_key(line, wrong, model_key)


def test_key_readable_by_others_refuses_to_start(capsys, encrypted_model, tmp_path, model_key):
    loose = make_key_file(tmp_path / "loose.key", model_key, mode=0o644)
    line = one_line_failure(capsys, "--model", str(encrypted_model), "--key-file", str(loose))
    assert "permission" in line.lower() or "chmod" in line
    assert_no_key(line, model_key)


def test_missing_key_refuses_to_start(capsys, encrypted_model):
    line = one_line_failure(capsys, "--model", str(encrypted_model))
    assert "M2FP_MODEL_KEY" in line
