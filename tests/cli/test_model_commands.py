"""`m2fp model keygen|encrypt|verify|rekey|info` and `m2fp parse` with encrypted weights: every
failure is one line, no traceback, and no key in any output or log."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from m2fp.cli import run
from m2fp.protection.keys import encode_key, generate_key, key_id, parse_key
from tests.conftest import GOLDEN
from tests.utils.model_keys import assert_no_key, make_key_file

IMAGE = str(GOLDEN / "image.png")
SIZES = ["--min-size", "128", "--max-size", "256"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv("M2FP_MODEL_KEY", raising=False)
    monkeypatch.delenv("M2FP_MODEL_KEY_FILE", raising=False)


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = run(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keygen_to_file_and_stdout(tmp_path, capsys):
    path = tmp_path / "m2fp.key"
    code, out, err = cli(["model", "keygen", "--out", str(path)], capsys)
    assert code == 0 and err == ""
    key = parse_key(path.read_bytes())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id(key) in out
    assert_no_key(out, key)
    code, out, _ = cli(["model", "keygen", "--out", str(path)], capsys)
    assert code == 1 and parse_key(path.read_bytes()) == key
    code, out, err = cli(["model", "keygen", "--stdout"], capsys)
    assert code == 0 and len(out.strip()) == 44 and len(parse_key(out)) == 32


def test_keygen_needs_exactly_one_destination(tmp_path):
    for args in (["model", "keygen"], ["model", "keygen", "--stdout", "--out", "x"]):
        with pytest.raises(SystemExit) as info:
            run(args)
        assert info.value.code == 2


def test_encrypt_verify_info_rekey(tmp_path, tiny_model_dir, capsys):
    key_file = make_key_file(tmp_path / "old.key")
    new_key_file = make_key_file(tmp_path / "new.key")
    out = tmp_path / "tiny.m2fp"
    code, printed, _ = cli(
        ["model", "encrypt", str(tiny_model_dir), "--key-file", str(key_file), "--out", str(out)],
        capsys,
    )
    assert code == 0 and key_id(parse_key(key_file.read_bytes())) in printed
    code, printed, _ = cli(
        ["model", "verify", "--json", str(out), "--key-file", str(key_file)], capsys
    )
    assert code == 0
    verified = json.loads(printed)
    code, printed, _ = cli(
        ["model", "info", "--json", str(out), "--key-file", str(key_file)], capsys
    )
    info = json.loads(printed)
    # info adds what the default device, engine and precision mean here
    assert code == 0 and info.pop("compute")["accuracy"] == "exact" and info == verified
    code, printed, _ = cli(["model", "info", "--json", str(tiny_model_dir)], capsys)
    plain = json.loads(printed)
    del plain["compute"]
    assert set(verified) == set(plain) | {"protection"}
    assert verified["parameters"] == plain["parameters"] == 684590
    assert verified["config"] == plain["config"] and verified["classes"] == plain["classes"]
    assert verified["protection"]["cipher"] == "AES-256-GCM"
    assert verified["protection"]["key_id"] == key_id(parse_key(key_file.read_bytes()))

    rekeyed = tmp_path / "rekeyed.m2fp"
    code, _, _ = cli(
        [
            *("model", "rekey", str(out), "--key-file", str(key_file)),
            *("--new-key-file", str(new_key_file), "--out", str(rekeyed)),
        ],
        capsys,
    )
    assert code == 0
    code, printed, _ = cli(
        ["model", "verify", "--json", str(rekeyed), "--key-file", str(new_key_file)], capsys
    )
    assert code == 0 and json.loads(printed)["sha256"] == verified["sha256"]
    code, _, err = cli(
        ["model", "verify", "--json", str(rekeyed), "--key-file", str(key_file)], capsys
    )
    assert code == 1 and "wrong model key" in err


def parse_outputs(out_dir: Path) -> dict:
    return json.loads((out_dir / "image.json").read_text())


def test_parse_with_encrypted_model_matches_the_plain_model(
    tmp_path, tiny_model_dir, encrypted_model, key_file, model_key, monkeypatch, capsys
):
    assert (
        run(["parse", IMAGE, "--model", str(tiny_model_dir), "--out", str(tmp_path / "p"), *SIZES])
        == 0
    )
    expected = parse_outputs(tmp_path / "p")
    model = ["--model", str(encrypted_model)]
    assert (
        run(
            [
                "parse",
                IMAGE,
                *model,
                "--key-file",
                str(key_file),
                "--out",
                str(tmp_path / "a"),
                *SIZES,
            ]
        )
        == 0
    )
    monkeypatch.setenv("M2FP_MODEL_KEY_FILE", str(key_file))
    assert run(["parse", IMAGE, *model, "--out", str(tmp_path / "b"), *SIZES]) == 0
    monkeypatch.delenv("M2FP_MODEL_KEY_FILE")
    monkeypatch.setenv("M2FP_MODEL_KEY", encode_key(model_key))
    assert run(["parse", IMAGE, *model, "--out", str(tmp_path / "c"), *SIZES]) == 0
    for name in "abc":
        assert parse_outputs(tmp_path / name) == expected
    assert (tmp_path / "a" / "image_labels.png").read_bytes() == (
        tmp_path / "p" / "image_labels.png"
    ).read_bytes()
    assert_no_key(capsys.readouterr().err, model_key)


def damaged(encrypted_model: Path, tmp_path: Path, how: str) -> Path:
    data = bytearray(encrypted_model.read_bytes())
    if how == "header":
        data[40] ^= 0x01
    elif how == "body":
        data[len(data) // 2] ^= 0x01
    elif how == "last_chunk":
        data[-20] ^= 0x01
    elif how == "truncated":
        del data[-5000:]
    elif how == "trailing":
        data += b"\x00" * 16
    path = tmp_path / f"{how}.m2fp"
    path.write_bytes(bytes(data))
    return path


FAILURES = {
    "wrong key": "wrong model key",
    "header": "",
    "body": "failed authentication",
    "last_chunk": "chunk 11 of 11 failed authentication",
    "truncated": "truncated",
    "trailing": "unexpected bytes",
    "key file 0644": "accessible by group or others",
    "key file almost a key": "256-bit",
    "no key": "no model key",
    "env key wrong": "wrong model key",
    "env key malformed": "256-bit",
    "both env vars": "only one of",
}


@pytest.mark.parametrize("case", sorted(FAILURES))
@pytest.mark.parametrize("command", ["verify", "info", "parse"])
def test_failures_are_one_line_without_the_key(
    case, command, tmp_path, encrypted_model, key_file, model_key, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = generate_key()
    path, key_args = encrypted_model, ["--key-file", str(key_file)]
    if case == "wrong key":
        key_args = ["--key-file", str(make_key_file(tmp_path / "wrong.key", wrong))]
    elif case in {"header", "body", "last_chunk", "truncated", "trailing"}:
        path = damaged(encrypted_model, tmp_path, case)
    elif case == "key file 0644":
        key_args = ["--key-file", str(make_key_file(tmp_path / "open.key", model_key, 0o644))]
    elif case == "key file almost a key":
        almost = tmp_path / "almost.key"
        almost.write_text(model_key.hex()[:-2] + "\n")
        almost.chmod(0o600)
        key_args = ["--key-file", str(almost)]
    elif case == "no key":
        key_args = []
    elif case == "env key wrong":
        key_args = []
        monkeypatch.setenv("M2FP_MODEL_KEY", encode_key(wrong))
    elif case == "env key malformed":
        key_args = []
        monkeypatch.setenv("M2FP_MODEL_KEY", encode_key(model_key)[:-3])
    elif case == "both env vars":
        key_args = []
        monkeypatch.setenv("M2FP_MODEL_KEY", encode_key(model_key))
        monkeypatch.setenv("M2FP_MODEL_KEY_FILE", str(key_file))
    if command == "parse":
        args = ["parse", IMAGE, "--model", str(path), "--out", str(tmp_path / "o"), *key_args]
    else:
        args = ["model", command, str(path), *key_args]
    code, out, err = cli(args, capsys)
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("m2fp: "), err
    assert FAILURES[case] in lines[0]
    assert "Traceback" not in err and out == ""
    assert_no_key(out + err + caplog.text, model_key, wrong)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_encrypt_and_rekey_refuse_open_key_files(tmp_path, tiny_model_dir, encrypted_model, capsys):
    key = generate_key()
    open_key = make_key_file(tmp_path / "open.key", key, 0o640)
    good = make_key_file(tmp_path / "good.key")
    commands = [
        ["model", "encrypt", str(tiny_model_dir), "--key-file", str(open_key)],
        ["model", "rekey", str(encrypted_model), "--key-file", str(good)],
    ]
    for args, extra in zip(commands, [[], ["--new-key-file", str(open_key)]], strict=True):
        code, out, err = cli([*args, *extra, "--out", str(tmp_path / "x.m2fp")], capsys)
        assert code == 1 and err.count("\n") == 1 and "chmod 600" in err
        assert_no_key(out + err, key)
    assert not (tmp_path / "x.m2fp").exists()


def test_rekey_with_the_wrong_old_key(tmp_path, encrypted_model, capsys):
    wrong, new = generate_key(), generate_key()
    args = ["model", "rekey", str(encrypted_model)]
    args += ["--key-file", str(make_key_file(tmp_path / "w.key", wrong))]
    args += ["--new-key-file", str(make_key_file(tmp_path / "n.key", new))]
    code, out, err = cli([*args, "--out", str(tmp_path / "x.m2fp")], capsys)
    assert code == 1 and "wrong model key" in err and err.count("\n") == 1
    assert_no_key(out + err, wrong, new)


def test_whole_process_output_holds_no_key(tmp_path, encrypted_model, model_key):
    """A real process: the key in the environment, a modified file, nothing but one line."""
    env = {**os.environ, "M2FP_MODEL_KEY": encode_key(model_key)}
    env.pop("M2FP_MODEL_KEY_FILE", None)
    tampered = damaged(encrypted_model, tmp_path, "body")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "m2fp", "parse", IMAGE),
            *("--model", str(tampered), "--out", str(tmp_path / "o")),
        ],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count(b"\n") == 1 and b"Traceback" not in proc.stderr
    assert b"failed authentication" in proc.stderr
    assert_no_key(proc.stdout + proc.stderr, model_key)


def test_missing_cryptography_is_one_clear_line(encrypted_model, key_file, monkeypatch, capsys):
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    for name in ("loading", "envelope", "fernet_compat", "convert"):
        monkeypatch.delitem(sys.modules, f"m2fp.protection.{name}", raising=False)
    args = ["model", "verify", "--json", str(encrypted_model), "--key-file", str(key_file)]
    code, out, err = cli(args, capsys)
    assert code == 1 and out == ""
    assert err == (
        "m2fp: encrypted models need the 'cryptography' package: pip install 'm2fp[crypto]'\n"
    )
