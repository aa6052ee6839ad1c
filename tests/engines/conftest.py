"""Engine fixtures: the golden tiny network, its parity input, and its converted forms (each
converted once per session: conversion takes tens of seconds even for the tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m2fp.weights.loader import fill_skeleton
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
def fp32_package(openvino_model_dir):
    """The golden network's fp32 package, as ``m2fp model export`` wrote it (converted once
    per session, ``tests.conftest.openvino_model_dir``)."""
    from m2fp.engines.openvino_package import OpenVINOPackage, package_file_name

    return OpenVINOPackage.from_bytes((openvino_model_dir / package_file_name("fp32")).read_bytes())


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected|| (Frobenius), the figure BENCHMARKS.md reports."""
    return float((actual - expected).norm() / expected.norm())
