"""Engine fixtures: the golden tiny network, its parity input, and its converted forms (each
converted once per session: conversion takes tens of seconds even for the tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m2fp.loader import fill_skeleton
from tests.conftest import GOLDEN, golden_config, golden_state_dict


@pytest.fixture(scope="session")
def golden_network():
    return fill_skeleton(golden_config(), golden_state_dict())


@pytest.fixture(scope="session")
def golden_expected() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "expected.npz", allow_pickle=False))


@pytest.fixture(scope="session")
def golden_batch(golden_network, golden_expected) -> torch.Tensor:
    """The golden parity input, normalised: 1x3x128x192."""
    tensor = torch.from_numpy(golden_expected["input_tensor"])
    return ((tensor - golden_network.pixel_mean) / golden_network.pixel_std)[None]


@pytest.fixture(scope="session")
def fp32_package(golden_network):
    pytest.importorskip("openvino", reason="OpenVINO engine tests need m2fp[openvino]")
    from m2fp.engines.openvino_convert import convert_fp32

    return convert_fp32(golden_network)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected|| (Frobenius), the figure BENCHMARKS.md reports."""
    return float((actual - expected).norm() / expected.norm())
