"""Shared fixtures: the tiny golden models (multi-person tests/data/m2fp_tiny and single-person
tests/data/m2fp_lip_tiny, see their PROVENANCE.md), an encrypted copy and the key that opens
it."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.utils.model_keys import SMALL_CHUNK, make_key_file
from tests.utils.visible_model import pinned_head

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "m2fp_tiny"
LIP_GOLDEN = DATA / "m2fp_lip_tiny"


def golden_state_dict(golden: Path = GOLDEN) -> dict[str, torch.Tensor]:
    weights = np.load(golden / "weights.npz", allow_pickle=False)
    return {k: torch.from_numpy(weights[k]).contiguous() for k in weights.files}


def golden_config(golden: Path = GOLDEN) -> dict:
    return json.loads((golden / "configuration.json").read_text())["model"]


def write_model_dir(directory: Path, config_path: Path, state: dict[str, torch.Tensor]) -> Path:
    """A ModelScope-layout directory: ``config_path`` as configuration.json, ``state`` as
    model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(config_path, directory / "configuration.json")
    save_file(state, str(directory / "model.safetensors"))
    return directory


def golden_sizes() -> tuple[int, int]:
    expected = json.loads((GOLDEN / "expected.json").read_text())
    return expected["min_size"], expected["max_size"]


def golden_options():
    """Parser options at the input sizes the golden vectors were made with."""
    from m2fp import ParserOptions

    min_size, max_size = golden_sizes()
    return ParserOptions(min_size=min_size, max_size=max_size)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ModelScope-layout directory (configuration.json + model.safetensors) of the golden
    tiny model."""
    directory = tmp_path_factory.mktemp("m2fp_tiny_model")
    return write_model_dir(directory, GOLDEN / "configuration.json", golden_state_dict())


@pytest.fixture(scope="session")
def lip_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-person golden tiny model as a ModelScope-layout directory."""
    directory = tmp_path_factory.mktemp("m2fp_lip_tiny_model")
    return write_model_dir(
        directory, LIP_GOLDEN / "configuration.json", golden_state_dict(LIP_GOLDEN)
    )


@pytest.fixture(scope="session")
def lip_parser(lip_model_dir: Path):
    from m2fp import HumanParser

    return HumanParser.from_pretrained(lip_model_dir)


@pytest.fixture(scope="session")
def tiny_parser(tiny_model_dir: Path):
    from m2fp import HumanParser

    return HumanParser.from_pretrained(tiny_model_dir, options=golden_options())


@pytest.fixture(scope="session")
def visible_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden tiny model with its class head pinned so that parts reach the label map:
    every query says Hair, UpperClothes or Face (chosen by its features) with Human as
    runner-up (see ``tests.utils.visible_model``)."""
    state = pinned_head(
        golden_state_dict(),
        {2: 8.0, 5: 8.0, 13: 8.0, 20: 7.5},  # Hair, UpperClothes, Face, Human
        weighted=(5, 13),
    )
    directory = tmp_path_factory.mktemp("m2fp_visible_model")
    return write_model_dir(directory, GOLDEN / "configuration.json", state)


@pytest.fixture(scope="session")
def visible_parser(visible_model_dir: Path):
    from m2fp import HumanParser

    return HumanParser.from_pretrained(visible_model_dir, options=golden_options())


@pytest.fixture(scope="session")
def golden_image_path() -> Path:
    return GOLDEN / "image.png"


@pytest.fixture(scope="session")
def model_key() -> bytes:
    from m2fp.protection.keys import generate_key

    return generate_key()


@pytest.fixture(scope="session")
def protected_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("protected")


@pytest.fixture(scope="session")
def key_file(protected_dir: Path, model_key: bytes) -> Path:
    return make_key_file(protected_dir / "model.key", model_key)


@pytest.fixture(scope="session")
def encrypted_model(tiny_model_dir: Path, protected_dir: Path, model_key: bytes) -> Path:
    """The tiny model as an .m2fp file in 11 chunks (read-only: copy before tampering)."""
    from m2fp.protection.convert import encrypt_model_dir

    out = protected_dir / "tiny.m2fp"
    encrypt_model_dir(tiny_model_dir, key=model_key, out=out, chunk_size=SMALL_CHUNK)
    return out


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A temp dir of our own (the machine's /tmp is shared and busy), used by every temp-file
    API in this process while the test runs."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture(scope="session")
def openvino_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny model directory with its OpenVINO fp32 package exported beside the weights
    by ``m2fp model export --format openvino``: the one fp32 conversion of the session (tens
    of seconds even for the tiny model); the engine tests read their package from here."""
    pytest.importorskip("openvino", reason="OpenVINO engine tests need m2fp[openvino]")
    from m2fp.cli import run

    directory = tmp_path_factory.mktemp("m2fp_tiny_openvino")
    for path in tiny_model_dir.iterdir():
        shutil.copy(path, directory / path.name)
    assert run(["model", "export", str(directory), "--format", "openvino"]) == 0
    return directory


@pytest.fixture(scope="session", params=["torch", "openvino"])
def engine_parser(request: pytest.FixtureRequest, tiny_model_dir: Path):
    """The golden tiny model's parser on each exact engine (fp32): the golden parity tests
    run against both."""
    from dataclasses import replace

    from m2fp import HumanParser

    if request.param == "torch":
        return request.getfixturevalue("tiny_parser")
    directory = request.getfixturevalue("openvino_model_dir")
    options = replace(golden_options(), engine="openvino")
    return HumanParser.from_pretrained(directory, options=options)
