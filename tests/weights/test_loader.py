"""The loader: plain directories and protected weights give the same network and outputs,
nothing is written to disk, decrypted bytes are wiped, refusals are clear."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.torch_version import TorchVersion

from m2fp import HumanParser
from m2fp.compute.options import Precision
from m2fp.engines.openvino_package import OpenVINOPackage
from m2fp.errors import CheckpointError, IntegrityError, ModelKeyError
from m2fp.protection.envelope_header import MIN_CHUNK_SIZE, TAG_BYTES, open_envelope
from m2fp.protection.keys import encode_key, generate_key
from m2fp.weights import loader
from m2fp.weights.checkpoint import state_dict_from_bytes
from m2fp.weights.loader import load_model
from tests.conftest import golden_options
from tests.utils.write_watch import nothing_written


def outputs(parser: HumanParser, image: Path) -> tuple:
    result = parser(image)
    scores = result.to_modelscope()["scores"]
    return (
        result.label_map.tobytes(),
        tuple(round(float(s), 6) for s in scores),
        tuple((round(p.score, 6), p.bbox) for p in result.persons),
    )


def test_the_write_watch_sees_writes(private_tmp):
    with pytest.raises(AssertionError), nothing_written(private_tmp):
        (private_tmp / "plain.bin").write_bytes(b"weights")
    with pytest.raises(AssertionError), nothing_written(private_tmp):
        os.close(os.open(private_tmp / "created", os.O_RDONLY | os.O_CREAT))


def test_installed_torch_is_not_vulnerable_to_cve_2025_32434():
    assert TorchVersion(torch.__version__) >= "2.6"


def test_old_torch_is_refused(monkeypatch, tiny_model_dir, encrypted_model, model_key):
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    for call in (
        lambda: load_model(tiny_model_dir),
        lambda: load_model(encrypted_model, key=model_key),
        lambda: state_dict_from_bytes(b"", kind="pt"),
    ):
        with pytest.raises(CheckpointError, match=r"CVE-2025-32434.*torch>=2\.6"):
            call()


def test_encrypted_model_gives_identical_network_and_outputs(
    private_tmp, tiny_parser, encrypted_model, model_key, golden_image_path
):
    with nothing_written(private_tmp, encrypted_model.parent):
        parser = HumanParser.from_pretrained(
            encrypted_model, key=model_key, options=golden_options()
        )
    plain = tiny_parser.model.state_dict()
    loaded = parser.model.state_dict()
    assert plain.keys() == loaded.keys()
    assert all(torch.equal(plain[k], loaded[k]) for k in plain)
    assert parser.class_names == tiny_parser.class_names
    assert parser.ins_score_thr == tiny_parser.ins_score_thr
    expected = outputs(tiny_parser, golden_image_path)
    assert expected[1], "the golden image must produce instances"
    assert outputs(parser, golden_image_path) == expected


@pytest.mark.parametrize("form", [encode_key, bytes.hex, lambda k: encode_key(k).encode() + b"\n"])
def test_key_may_be_given_as_text(encrypted_model, model_key, form):
    model, config, *_ = load_model(encrypted_model, key=form(model_key))
    assert config["num_parsing"] == 20 and not model.training


def test_decrypted_bytes_are_wiped_after_loading(monkeypatch, encrypted_model, model_key):
    seen: list[dict] = []
    original = loader.fill_skeleton

    def keep(config, state_dict, **kwargs):
        seen.append(state_dict)
        return original(config, state_dict, **kwargs)

    monkeypatch.setattr(loader, "fill_skeleton", keep)
    model, *_ = load_model(encrypted_model, key=model_key)
    views = seen[0]
    assert all(not v.any() for v in views.values() if v.numel())
    assert any(p.abs().sum() > 0 for p in model.parameters())


def test_decrypted_bytes_are_wiped_when_loading_fails(monkeypatch, encrypted_model, model_key):
    seen: list[dict] = []

    def fail(config, state_dict, **kwargs):
        seen.append(state_dict)
        assert any(v.any() for v in state_dict.values())
        raise CheckpointError("weights do not fit the network")

    monkeypatch.setattr(loader, "fill_skeleton", fail)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(encrypted_model, key=model_key)
    assert all(not v.any() for v in seen[0].values() if v.numel())


def test_hash_pin_applies_to_the_decrypted_weights(encrypted_model, model_key):
    with open_envelope(encrypted_model) as (_, header):
        digest = header.plaintext_sha256
    _, _, sha, _ = load_model(encrypted_model, key=model_key, expected_sha256=digest.upper())
    assert sha == digest
    with pytest.raises(IntegrityError, match="pinned hash"):
        load_model(encrypted_model, key=model_key, expected_sha256=hashlib.sha256(b"x").hexdigest())


def test_plain_directory_pin_still_works(tiny_model_dir):
    digest = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert load_model(tiny_model_dir, expected_sha256=digest)[2] == digest
    with pytest.raises(CheckpointError, match="pinned hash"):
        load_model(tiny_model_dir, expected_sha256="0" * 64)


def test_missing_and_wrong_keys(encrypted_model):
    with pytest.raises(ModelKeyError, match=r"no model key was given.*M2FP_MODEL_KEY_FILE"):
        HumanParser.from_pretrained(encrypted_model)
    with pytest.raises(ModelKeyError, match="wrong model key"):
        HumanParser.from_pretrained(encrypted_model, key=generate_key())
    with pytest.raises(ModelKeyError, match="256-bit"):
        HumanParser.from_pretrained(encrypted_model, key=b"short")


def test_tampered_file_is_refused_through_the_public_api(tmp_path, encrypted_model, model_key):
    data = bytearray(encrypted_model.read_bytes())
    data[len(data) // 2] ^= 0x10
    tampered = tmp_path / "tampered.m2fp"
    tampered.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="failed authentication"):
        HumanParser.from_pretrained(tampered, key=model_key)


def test_unknown_files_are_refused(tmp_path, model_key):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="neither a model directory"):
        load_model(other, key=model_key)


def test_every_source_kind_yields_the_same_checked_record(
    tiny_model_dir, encrypted_model, model_key
):
    from m2fp.weights.loader import open_model

    with open_model(tiny_model_dir) as plain:
        plain_report = plain.describe()
        assert plain.kind == "directory" and plain.protection is None
        assert plain.weights_file == "model.safetensors"
    with open_model(encrypted_model, key=model_key) as protected:
        assert protected.kind == "m2fp" and protected.protection["cipher"] == "AES-256-GCM"
        assert protected.parameters == plain.parameters
        assert protected.config == plain.config
        report = protected.describe()
    assert report["protection"]["format"] == "m2fp"
    assert {
        k: v
        for k, v in report.items()
        if k not in ("protection", "sha256", "weights_file", "weights_bytes")
    } == {
        k: v
        for k, v in plain_report.items()
        if k not in ("sha256", "weights_file", "weights_bytes")
    }


def test_loaded_network_owns_its_parameters(tiny_model_dir, tiny_parser):
    """Built empty and filled: no meta tensor left, values equal to a plain load, and the
    read buffer is not kept alive through views."""
    model = load_model(tiny_model_dir).model
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert tensor.device.type == "cpu", name
    reference = tiny_parser.model.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())
    storages = {t.untyped_storage().data_ptr() for t in model.state_dict().values() if t.numel()}
    assert len(storages) == len([t for t in model.state_dict().values() if t.numel()])


def test_weights_in_another_dtype_are_converted(tmp_path):
    import shutil

    from safetensors.torch import save_file

    from tests.conftest import GOLDEN, golden_state_dict

    state = {k: v.double() if v.is_floating_point() else v for k, v in golden_state_dict().items()}
    shutil.copy(GOLDEN / "configuration.json", tmp_path / "configuration.json")
    save_file(state, str(tmp_path / "model.safetensors"))
    model = load_model(tmp_path).model
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_model_config_reads_the_classes_without_the_weights(
    tmp_path, tiny_model_dir, encrypted_model, model_key
):
    """``model_config``: the directory's config, and the same from an ``.m2fp`` header only
    once it authenticates with the key; no key, a wrong key, a header altered in place and
    a file that is no model are refused as ``open_model`` refuses them."""
    from m2fp.weights.loader import model_config, open_model

    with open_model(tiny_model_dir) as plain:
        expected = plain.config
    assert model_config(tiny_model_dir) == expected
    assert model_config(encrypted_model, key=model_key) == expected
    with pytest.raises(ModelKeyError, match="no model key was given"):
        model_config(encrypted_model)
    with pytest.raises(ModelKeyError, match="wrong model key"):
        model_config(encrypted_model, key=generate_key())
    data = encrypted_model.read_bytes()
    assert data.count(b'"Hair"') == 1
    tampered = tmp_path / "tampered.m2fp"
    tampered.write_bytes(data.replace(b'"Hair"', b'"Hbir"'))  # a class renamed in the header
    with pytest.raises(IntegrityError, match="failed authentication"):
        model_config(tampered, key=model_key)
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="neither a model directory"):
        model_config(other, key=model_key)


SMALL = 16 * MIN_CHUNK_SIZE  # 64 KiB chunks: the weights and the package span many


@pytest.fixture(scope="module")
def packaged_envelope(openvino_model_dir, tmp_path_factory, model_key):
    """The tiny model with its fp32 OpenVINO package as an ``.m2fp`` file in small chunks
    (the weights, then the package attachment), and the file's header."""
    from m2fp.protection.convert import encrypt_payload, model_dir_payload

    payload = model_dir_payload(openvino_model_dir)
    package = (openvino_model_dir / "openvino_fp32.ovpkg").read_bytes()
    restamped = replace(OpenVINOPackage.from_bytes(package), weights_sha256=payload.sha256)
    out = tmp_path_factory.mktemp("packaged") / "tiny.m2fp"
    attachments = {"openvino_fp32": restamped.to_bytes()}
    encrypt_payload(payload, key=model_key, out=out, attachments=attachments, chunk_size=SMALL)
    with open_envelope(out) as (_, header):
        return out, header


def test_package_only_loading_keeps_only_the_package(monkeypatch, packaged_envelope, model_key):
    # it used to decrypt the whole payload (weights and package) into one buffer
    from m2fp.protection import envelope_chunks

    def whole_payload(*args, **kwargs):
        raise AssertionError("the whole payload was decrypted into memory")

    monkeypatch.setattr(envelope_chunks, "decrypted_payload", whole_payload)
    path, header = packaged_envelope
    loaded = load_model(path, key=model_key, openvino=Precision.FP32)
    assert loaded.model is None and loaded.sha256 == header.plaintext_sha256
    assert loaded.openvino.weights_sha256 == header.plaintext_sha256


@pytest.mark.parametrize("section", ["weights", "openvino_fp32"])
def test_package_only_loading_authenticates_every_section(
    tmp_path, packaged_envelope, model_key, section
):
    path, header = packaged_envelope
    start = next(begin for name, begin, _, _ in header.sections() if name == section)
    chunk = (start + 100) // SMALL  # a chunk inside the section, past the weights' header
    data = bytearray(path.read_bytes())
    data[len(header.raw) + chunk * (SMALL + TAG_BYTES) + 7] ^= 1
    tampered = tmp_path / "tampered.m2fp"
    tampered.write_bytes(data)
    with pytest.raises(IntegrityError, match="failed authentication"):
        load_model(tampered, key=model_key, openvino=Precision.FP32)


def test_package_only_loading_checks_the_pin(packaged_envelope, model_key):
    path, _ = packaged_envelope
    with pytest.raises(IntegrityError):
        load_model(path, key=model_key, openvino=Precision.FP32, expected_sha256="0" * 64)
