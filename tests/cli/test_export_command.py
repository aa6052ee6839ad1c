"""``m2fp model export`` and the OpenVINO package's journey: converted once beside the
weights, carried into the ``.m2fp`` envelope by ``model encrypt``, loaded by ``--engine
openvino`` without converting again and without plaintext reaching the disk; refusals in one
line. (The ONNX file's contents are checked in tests/engines/test_onnx_export.py.)"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from m2fp import HumanParser
from m2fp.cli import run
from m2fp.engines import openvino_convert
from m2fp.engines.openvino_package import OpenVINOPackage, package_file_name
from tests.conftest import golden_options
from tests.utils.same_parse import assert_same_parse

pytest.importorskip("openvino", reason="OpenVINO engine tests need m2fp[openvino]")


def files_under(directory: Path) -> set[Path]:
    return {p for p in directory.rglob("*") if p.is_file()}


@pytest.fixture
def no_conversion(monkeypatch):
    """Loading must find the exported package: converting again fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("converted again instead of loading the exported package")

    monkeypatch.setattr(openvino_convert, "convert_package", refuse)


@pytest.fixture(scope="module")
def visible_openvino_dir(visible_model_dir, tmp_path_factory) -> Path:
    """The visible model (its label maps show several classes, so agreeing with the PyTorch
    engine means something) with its OpenVINO fp32 package exported beside the weights."""
    directory = tmp_path_factory.mktemp("m2fp_visible_openvino")
    for path in visible_model_dir.iterdir():
        shutil.copy(path, directory / path.name)
    assert run(["model", "export", str(directory), "--format", "openvino"]) == 0
    return directory


def test_export_writes_the_package_beside_the_weights(openvino_model_dir, capsys):
    path = openvino_model_dir / package_file_name("fp32")
    assert (os.stat(path).st_mode & 0o777) == 0o600  # the graphs hold the weights
    package = OpenVINOPackage.from_bytes(path.read_bytes())
    assert package.precision == "fp32"
    assert run(["model", "info", "--json", str(openvino_model_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    listed = info["openvino_packages"]["fp32"]
    assert listed["where"] == package_file_name("fp32") and listed["matches_weights"] is True


def test_openvino_engine_loads_the_package(
    visible_openvino_dir, visible_parser, golden_image_path, no_conversion
):
    options = replace(golden_options(), engine="openvino")
    parser = HumanParser.from_pretrained(visible_openvino_dir, options=options)
    assert parser.describe_compute()["engine"] == "openvino"
    # another engine: scores within ModelScope's own tolerance (tests/data PROVENANCE)
    assert_same_parse(parser(golden_image_path), visible_parser(golden_image_path))


def test_encrypted_model_carries_the_package_and_loads_from_memory(
    visible_openvino_dir, visible_parser, golden_image_path, tmp_path, private_tmp,
    no_conversion, capsys, monkeypatch,
):  # fmt: skip
    from tests.utils.model_keys import make_key_file

    key_file = make_key_file(tmp_path / "model.key")
    out = tmp_path / "tiny.m2fp"
    args = ["model", "encrypt", str(visible_openvino_dir), "--key-file", str(key_file)]
    assert run([*args, "--out", str(out)]) == 0
    assert "with openvino_fp32" in capsys.readouterr().out
    info_args = ["model", "info", "--json", str(out), "--key-file", str(key_file)]
    assert run(info_args) == 0
    listed = json.loads(capsys.readouterr().out)["openvino_packages"]["fp32"]
    assert listed["where"] == "attachment openvino_fp32" and listed["matches_weights"] is True

    monkeypatch.chdir(tmp_path)
    before = files_under(tmp_path)
    options = replace(golden_options(), engine="openvino")
    key = (tmp_path / "model.key").read_bytes()
    from m2fp.protection.keys import parse_key

    parser = HumanParser.from_pretrained(out, options=options, key=parse_key(key))
    result = parser(golden_image_path)
    assert_same_parse(result, visible_parser(golden_image_path))
    # no plaintext weights or graphs anywhere we can see: not beside the model, not in TMPDIR
    assert files_under(tmp_path) == before
    assert files_under(private_tmp) == set()


def test_an_encrypted_models_package_goes_into_a_new_m2fp(
    encrypted_model, key_file, tmp_path, capsys
):
    base = ["model", "export", str(encrypted_model), "--key-file", str(key_file)]
    assert run([*base, "--format", "openvino", "--out", str(tmp_path / "x.ovpkg")]) == 2
    assert "must name a new .m2fp file" in capsys.readouterr().err


def test_onnx_refusals(encrypted_model, tiny_model_dir, tmp_path, capsys, monkeypatch):
    for name in ("M2FP_MODEL_KEY", "M2FP_MODEL_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    out = str(tmp_path / "m.onnx")
    # an encrypted model without its key
    assert run(["model", "export", str(encrypted_model), "--format", "onnx", "--out", out]) != 0
    err = capsys.readouterr().err.strip()
    assert "key" in err and "\n" not in err
    assert not Path(out).exists()
    base = ["model", "export", str(tiny_model_dir), "--format", "onnx"]
    assert run(base) == 2
    assert "needs --out" in capsys.readouterr().err
    assert run([*base, "--out", out, "--precision", "int8"]) == 2
    assert "fp32 network" in capsys.readouterr().err
    Path(out).write_bytes(b"mine")
    assert run([*base, "--out", out]) == 2
    assert "already exists" in capsys.readouterr().err
    assert Path(out).read_bytes() == b"mine"


def test_int8_export_beside_an_fp32_package_calibrates_with_the_network(
    openvino_model_dir, tmp_path
):
    # the fp32 package is reused, and the network is loaded beside it for calibration
    # although a package is there (the loader's package-only path must not serve export)
    pytest.importorskip("nncf", reason="int8 export needs m2fp[int8]")
    directory = tmp_path / "model"
    shutil.copytree(openvino_model_dir, directory)
    export = ["model", "export", str(directory), "--format", "openvino"]
    assert run([*export, "--precision", "int8", "--calibration", "2"]) == 0
    package = OpenVINOPackage.from_bytes((directory / package_file_name("int8")).read_bytes())
    assert package.precision == "int8"
