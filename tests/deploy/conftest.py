"""Fixtures of the container tests: one podman run per session (tests/deploy/podman.py), the
local base images (tests/deploy/base_image.py) and the image of deploy/Dockerfile, each built
once, removed at the end; and the golden tiny model in the two forms the image takes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.base_image import build_python_base, build_services_image, unreachable_sources
from tests.deploy.podman import Podman, podman_run, unavailable

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
IMAGE_UID = 10001  # USER of deploy/Dockerfile
IMAGE_BUILD_TIMEOUT = 1200.0
# The base's Python: the torch wheel must be built for it.
BASE_PYTHON_TAG = "cp311"


@dataclass(frozen=True)
class BuiltImage:
    """An image this run built, and how long the build took."""

    name: str
    seconds: float


def local_torch_wheels() -> Path | None:
    """The directory holding this machine's CPU torch wheel for the base's Python, if pip is
    configured to find one there (``find-links``), as it is here."""
    pin = re.search(r'"torch==([^"]+)"', DOCKERFILE.read_text())
    assert pin, "deploy/Dockerfile pins torch"
    config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    places = re.findall(r"find-links='([^']*)'", config)
    places.append(os.environ.get("PIP_FIND_LINKS", ""))
    for place in " ".join(places).split():
        directory = Path(place.removeprefix("file://"))
        if list(directory.glob(f"torch-{pin.group(1)}*-{BASE_PYTHON_TAG}-*linux*.whl")):
            return directory
    return None


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    reason = unavailable() or unreachable_sources()
    if reason:
        pytest.skip(reason)
    with podman_run(tmp_path_factory.mktemp("podman")) as run:
        yield run


@pytest.fixture(scope="session")
def python_base(podman: Podman) -> BuiltImage:
    """The local python:3.11-slim-bookworm stand-in."""
    name, start = podman.image("python"), time.monotonic()
    build_python_base(podman, tag=name)
    return BuiltImage(name=name, seconds=time.monotonic() - start)


def _build(podman: Podman, *, base: BuiltImage, target: str, name: str) -> BuiltImage:
    """``target`` of deploy/Dockerfile built as a user would, on the stand-in base. Docker image
    format: the OCI format has no HEALTHCHECK."""
    start, extra = time.monotonic(), []
    wheels = local_torch_wheels()
    if target == "full" and wheels:
        extra = [
            "-v", f"{wheels}:/wheels:ro",
            "--build-arg", "TORCH_INDEX_URL=", "--build-arg", "TORCH_FIND_LINKS=/wheels",
        ]  # fmt: skip
    podman(
        "build", "--format", "docker", "--network=host", "--layers=false", "--force-rm",
        "--build-arg", f"PYTHON_IMAGE={base.name}", "--target", target, *extra,
        "-f", str(DOCKERFILE), "-t", name, str(REPO),
        timeout=IMAGE_BUILD_TIMEOUT,
    )  # fmt: skip
    return BuiltImage(name=name, seconds=time.monotonic() - start)


@pytest.fixture(scope="session")
def m2fp_image(podman: Podman, python_base: BuiltImage) -> BuiltImage:
    """The full image (the default target, with torch): torch from this machine's wheel
    directory where there is one, else from the Dockerfile's default index."""
    return _build(podman, base=python_base, target="full", name=podman.image("m2fp"))


@pytest.fixture(scope="session")
def runtime_image(podman: Podman, python_base: BuiltImage) -> BuiltImage:
    """The slim image (``--target runtime``, no torch)."""
    return _build(podman, base=python_base, target="runtime", name=podman.image("m2fp-runtime"))


@pytest.fixture(scope="session")
def services_image(podman: Podman, python_base: BuiltImage) -> BuiltImage:
    """The nginx and redis stand-in of deploy/compose.yaml."""
    name, start = podman.image("services"), time.monotonic()
    build_services_image(podman, base=python_base.name, tag=name)
    return BuiltImage(name=name, seconds=time.monotonic() - start)


@dataclass(frozen=True)
class EncryptedModel:
    """The visible tiny model as an encrypted .m2fp file and its key file."""

    model: Path  # mode 0644 in a directory of its own (mounted as /models)
    key: Path  # owned by the image's user, mode 0400


@pytest.fixture(scope="session")
def model_dir(visible_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The visible tiny model (its label maps show several classes, so the container's answer
    can disagree with the host's) as a plain directory the image's user can read (a model is
    not a secret file: 0755 directory, 0644 files)."""
    target = tmp_path_factory.mktemp("container-model") / "model"
    shutil.copytree(visible_model_dir, target)
    target.chmod(0o755)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.fixture(scope="session")
def encrypted_tiny_model(
    visible_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> EncryptedModel:
    """The visible tiny model (see ``model_dir``) encrypted under a new key, the key file
    handed over as the README says for containers: owned by the container's user, mode 0400.
    Made with the CLI a user would use."""
    tmp = tmp_path_factory.mktemp("container-encrypted")
    encrypted = EncryptedModel(
        model=tmp / "models" / "m2fp.m2fp", key=tmp / "secrets" / "m2fp_model_key"
    )
    for directory in (encrypted.model.parent, encrypted.key.parent):
        directory.mkdir(mode=0o755)
    m2fp = [sys.executable, "-m", "m2fp", "model"]
    for argv in (
        [*m2fp, "keygen", "--out", str(encrypted.key)],
        [
            *m2fp,
            "encrypt",
            str(visible_model_dir),
            "--key-file",
            str(encrypted.key),
            "--out",
            str(encrypted.model),
        ],
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
    encrypted.model.chmod(0o644)
    os.chown(encrypted.key, IMAGE_UID, IMAGE_UID)
    encrypted.key.chmod(0o400)
    return encrypted


@pytest.fixture(scope="session")
def openvino_visible_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``model_dir`` with its OpenVINO fp32 package beside the weights, exported with the CLI as
    a user would on a machine with torch: what the slim image serves (it cannot convert)."""
    target = tmp_path_factory.mktemp("container-openvino") / "model"
    shutil.copytree(model_dir, target)
    subprocess.run(
        [sys.executable, "-m", "m2fp", "model", "export", str(target), "--format", "openvino"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.fixture(scope="session")
def openvino_encrypted_model(
    encrypted_tiny_model: EncryptedModel,
    openvino_visible_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> EncryptedModel:
    """``encrypted_tiny_model`` with the OpenVINO fp32 package of the same weights inside (a
    new .m2fp under the same key, which stays the one key file), as ``m2fp model export
    --format openvino --out`` writes it; the package is the one ``openvino_visible_model_dir``
    converted, attached rather than converted twice (a minute or more on a busy machine)."""
    from m2fp.engines.openvino_package import attachment_name, package_file_name
    from m2fp.protection.convert import attach
    from m2fp.protection.keys import read_key_file

    models = tmp_path_factory.mktemp("container-openvino-encrypted") / "models"
    models.mkdir(mode=0o755)
    model = models / "m2fp.m2fp"
    attach(
        encrypted_tiny_model.model,
        key=read_key_file(encrypted_tiny_model.key),
        out=model,
        name=attachment_name("fp32"),
        data=(openvino_visible_model_dir / package_file_name("fp32")).read_bytes(),
    )
    model.chmod(0o644)
    return EncryptedModel(model=model, key=encrypted_tiny_model.key)
