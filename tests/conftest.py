"""Shared fixtures: the tiny golden model (from tests/data/m2fp_tiny, see PROVENANCE.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "m2fp_tiny"


def golden_state_dict() -> dict[str, torch.Tensor]:
    weights = np.load(GOLDEN / "weights.npz", allow_pickle=False)
    return {k: torch.from_numpy(weights[k]).contiguous() for k in weights.files}


def golden_config() -> dict:
    return json.loads((GOLDEN / "configuration.json").read_text())["model"]


def golden_sizes() -> tuple[int, int]:
    expected = json.loads((GOLDEN / "expected.json").read_text())
    return expected["min_size"], expected["max_size"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ModelScope-layout directory (configuration.json + model.safetensors) of the golden
    tiny model."""
    directory = tmp_path_factory.mktemp("m2fp_tiny_model")
    shutil.copy(GOLDEN / "configuration.json", directory / "configuration.json")
    save_file(golden_state_dict(), str(directory / "model.safetensors"))
    return directory


@pytest.fixture(scope="session")
def tiny_parser(tiny_model_dir: Path):
    from m2fp import HumanParser

    min_size, max_size = golden_sizes()
    return HumanParser.from_pretrained(tiny_model_dir, min_size=min_size, max_size=max_size)


@pytest.fixture(scope="session")
def golden_image_path() -> Path:
    return GOLDEN / "image.png"
