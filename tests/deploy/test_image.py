"""deploy/Dockerfile built for real with podman, on the local python:3.11-slim-bookworm stand-in
(tests/deploy/base_image.py lists how it differs), and run as users will: read-only root, /tmp a
tmpfs, every capability dropped, no-new-privileges, the visible tiny model mounted read-only at
/models, first as a plain directory, then as an encrypted .m2fp with its key file (mode 0400,
owned by the image's UID 10001), the port published on 127.0.0.1.

Docker's semantics where podman's differ: ``--read-only-tmpfs=false``, since podman's
``--read-only`` would also mount tmpfs on /run and /var/tmp, which Docker's does not.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import GOLDEN, golden_sizes
from tests.deploy.conftest import DOCKERFILE, IMAGE_UID, BuiltImage, EncryptedModel
from tests.deploy.podman import ULIMITS, Podman, PodmanError, unavailable
from tests.utils.same_parse import assert_informative, assert_maps_agree, assert_same_persons

UNAVAILABLE = unavailable()
pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or ""),
]

# Uncompressed, as `podman image inspect` reports it. Measured here: 1.22 GB, of which the
# virtualenv /opt/m2fp is 1.02 GB (torch alone about 0.75 GB) and the stand-in base 0.2 GB (the
# real slim base is smaller). The CUDA build of torch, a compiler or a second copy of the
# virtualenv would each break these.
IMAGE_SIZE_LIMIT = 1_350_000_000
VENV_SIZE_LIMIT = 1_100_000_000
START_TIMEOUT = 120.0
REQUEST_TIMEOUT = httpx.Timeout(60.0)
# What may not be in the final image: package managers and compilers, found anywhere on PATH or
# as files, and pip in any form (module, wheel, ensurepip), checked from the inside.
SCAN = r"""
import os, shutil, subprocess
TOOLS = ("pip", "pip3", "apt", "apt-get", "dpkg", "dpkg-deb", "gcc", "cc", "c++", "g++",
         "clang", "tcc", "ld", "as", "make")
found = [shutil.which(tool) for tool in TOOLS if shutil.which(tool)]
for directory in os.environ["PATH"].split(":"):
    if os.path.isdir(directory):
        found += [os.path.join(directory, name) for name in os.listdir(directory)
                  if name.startswith(("pip", "apt", "dpkg", "gcc", "g++", "clang"))]
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
    found += [os.path.join(root, d) for d in dirs if d in ("pip", "ensurepip")]
    found += [os.path.join(root, f) for f in files if f.endswith(".whl")]
for python in ("/usr/local/bin/python", "/opt/m2fp/bin/python"):
    for module in ("pip", "ensurepip"):
        if subprocess.run([python, "-c", "import " + module], capture_output=True).returncode == 0:
            found.append(python + " imports " + module)
print("\n".join(sorted(set(found))))
"""


def _inside(podman: Podman, image: BuiltImage, *argv: str) -> str:
    """What ``argv`` prints in a fresh container of ``image`` (no network)."""
    return podman(
        "run", "--rm", *ULIMITS, "--network=none", "--entrypoint", argv[0], image.name, *argv[1:],
        timeout=300,
    ).stdout  # fmt: skip


def test_image_keeps_no_package_manager_compiler_or_pip(
    podman: Podman, m2fp_image: BuiltImage
) -> None:
    found = _inside(podman, m2fp_image, "/opt/m2fp/bin/python", "-c", SCAN)
    assert found.split() == []


def test_image_runs_as_the_unprivileged_user_by_default(
    podman: Podman, m2fp_image: BuiltImage
) -> None:
    config = json.loads(podman("image", "inspect", m2fp_image.name, timeout=60).stdout)[0]
    assert config["Config"]["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert _inside(podman, m2fp_image, "id", "-u").strip() == str(IMAGE_UID)


def test_image_size_is_bounded(
    podman: Podman, python_base: BuiltImage, m2fp_image: BuiltImage
) -> None:
    inspected = podman("image", "inspect", "--format", "{{.Size}}", m2fp_image.name, timeout=60)
    size = int(inspected.stdout)
    venv = int(_inside(podman, m2fp_image, "du", "-sb", "/opt/m2fp").split()[0])
    print(
        f"image {size / 1e9:.2f} GB, /opt/m2fp {venv / 1e9:.2f} GB; built in "
        f"{m2fp_image.seconds:.0f} s on a base made in {python_base.seconds:.0f} s"
    )
    assert venv < VENV_SIZE_LIMIT
    assert size < IMAGE_SIZE_LIMIT


def test_image_has_the_cpu_build_of_torch(podman: Podman, m2fp_image: BuiltImage) -> None:
    versions = _inside(
        podman, m2fp_image, "/opt/m2fp/bin/python", "-c",
        "import torch; print(torch.__version__, torch.version.cuda)",
    )  # fmt: skip
    pin = re.search(r'"torch==([^"]+)"', DOCKERFILE.read_text()).group(1)
    assert versions.split() == [f"{pin}+cpu", "None"]


@dataclass
class Served:
    """A running container of the image, published on 127.0.0.1."""

    form: str
    container: str
    url: str
    pid: int  # the server, the container's PID 1, as the host sees it

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=REQUEST_TIMEOUT)

    def parse(self, jpeg: bytes) -> httpx.Response:
        return httpx.post(
            self.url + "/api/v1/parse",
            files={"image": ("photo.jpg", jpeg, "image/jpeg")},
            timeout=REQUEST_TIMEOUT,
        )


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo() -> bytes:
    """The golden image as a real JPEG file."""
    return _jpeg(Image.open(GOLDEN / "image.png"))


@pytest.fixture(scope="module", params=["directory", "encrypted"])
def served(
    request: pytest.FixtureRequest,
    podman: Podman,
    m2fp_image: BuiltImage,
    model_dir: Path,
    encrypted_tiny_model: EncryptedModel,
) -> Iterator[Served]:
    form = request.param
    if form == "directory":
        model = ["-v", f"{model_dir}:/models:ro", "-e", "M2FP_MODEL=/models"]
    else:
        encrypted = encrypted_tiny_model
        model = [
            "-v", f"{encrypted.model.parent}:/models:ro",
            "-e", f"M2FP_MODEL=/models/{encrypted.model.name}",
            "-v", f"{encrypted.key}:/run/secrets/m2fp_model_key:ro",
            "-e", "M2FP_MODEL_KEY_FILE=/run/secrets/m2fp_model_key",
        ]  # fmt: skip
    min_size, max_size = golden_sizes()
    name = f"{podman.run_id}-{form}"
    podman("network", "create", "--label", podman.label, name, timeout=60)
    try:
        podman(
            "run", "-d", "--name", name, "--label", podman.label, "--network", name, *ULIMITS,
            "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:size=64m,mode=1777",
            "--cap-drop=ALL", "--security-opt", "no-new-privileges",
            *model, "-e", f"M2FP_MIN_SIZE={min_size}", "-e", f"M2FP_MAX_SIZE={max_size}",
            "-p", "127.0.0.1::8000", m2fp_image.name,
            timeout=START_TIMEOUT,
        )  # fmt: skip
        port = podman("port", name, "8000/tcp", timeout=60).stdout.strip().rsplit(":", 1)[1]
        state = _wait_ready(podman, name, f"http://127.0.0.1:{port}")
        yield Served(form=form, container=name, url=f"http://127.0.0.1:{port}", pid=state["Pid"])
    finally:
        podman("rm", "-f", "-t", "5", name, timeout=60, check=False)
        podman("network", "rm", "-f", name, timeout=60, check=False)


def _wait_ready(podman: Podman, container: str, url: str) -> dict:
    """Poll /readyz until it answers 200; fail with the container's log if it stops first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = _inspect(podman, container)["State"]
        if not state["Running"]:
            break
        try:
            if httpx.get(url + "/readyz", timeout=2.0).status_code == 200:
                return state
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    log = podman("logs", container, timeout=60, check=False)
    raise PodmanError(f"{container} not ready:\n{log.stdout[-3000:]}{log.stderr[-3000:]}")


def _inspect(podman: Podman, container: str) -> dict:
    return json.loads(podman("inspect", container, timeout=60).stdout)[0]


def test_parses_a_jpeg_through_the_published_port(
    served: Served, photo: bytes, visible_parser
) -> None:
    response = served.parse(photo)
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert (body["width"], body["height"]) == (150, 100)
    label_map = np.array(Image.open(io.BytesIO(base64.b64decode(body["label_map_png"]))))
    # the same answer as this machine's own install gives for the same file
    expected = visible_parser(photo)
    assert_informative(expected.label_map)
    assert_maps_agree(label_map, expected.label_map)  # another process, another thread count
    person_map = np.array(Image.open(io.BytesIO(base64.b64decode(body["person_map_png"]))))
    assert_maps_agree(person_map, expected.person_map())
    assert_same_persons(body["persons"], expected.to_dict()["persons"])


def test_health_and_readiness_answer(served: Served) -> None:
    assert served.get("/healthz").json() == {"status": "ok"}
    assert served.get("/readyz").json()["status"] == "ready"


def test_health_check_command_succeeds_inside(served: Served, podman: Podman) -> None:
    dockerfile = DOCKERFILE.read_text().replace("\\\n", " ")  # continuation lines joined
    declared = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", dockerfile, re.M)
    healthcheck = _inspect(podman, served.container)["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", *json.loads(declared.group(1))]
    podman("healthcheck", "run", served.container, timeout=60)  # exits 1 when unhealthy
    assert _inspect(podman, served.container)["State"]["Health"]["Status"] == "healthy"


def test_server_process_is_confined(served: Served, podman: Podman) -> None:
    proc = Path(f"/proc/{served.pid}")
    assert b"m2fp\0serve" in (proc / "cmdline").read_bytes()
    status = dict(line.split(":\t", 1) for line in (proc / "status").read_text().splitlines())
    assert status["Uid"].split() == [str(IMAGE_UID)] * 4
    assert status["Gid"].split() == [str(IMAGE_UID)] * 4
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, capabilities
    assert status["NoNewPrivs"].strip() == "1"
    (core,) = [line for line in (proc / "limits").read_text().splitlines() if "core" in line]
    assert core.split()[-3:-1] == ["0", "0"], core  # ulimit -c 0, soft and hard
    mounts = {
        line.split()[4]: line.split() for line in (proc / "mountinfo").read_text().splitlines()
    }
    assert "ro" in mounts["/"][5].split(",")
    assert "ro" in mounts["/models"][5].split(",")
    assert "rw" in mounts["/tmp"][5].split(",") and "tmpfs" in mounts["/tmp"]
    for path in ("/probe", "/run/probe", "/opt/m2fp/probe", "/models/probe"):
        touched = podman("exec", served.container, "touch", path, timeout=60, check=False)
        assert "Read-only file system" in touched.stderr, path
    if served.form == "encrypted":
        key = os.stat(proc / "root/run/secrets/m2fp_model_key")
        assert (key.st_uid, key.st_mode & 0o777) == (IMAGE_UID, 0o400)


def _tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Everything below ``root``: relative path -> (is a directory, size, mtime in ns)."""
    found = {}
    for path in root.rglob("*"):
        info = path.lstat()
        found[str(path.relative_to(root))] = (path.is_dir(), info.st_size, info.st_mtime_ns)
    return found


def test_nothing_is_written_inside_during_a_parse(served: Served, podman: Podman) -> None:
    # bigger than the 1 MiB past which multipart parsers spool an upload to a temp file
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    upload = _jpeg(Image.fromarray(noise), quality=95)
    assert len(upload) > 2 * 2**20
    tmp = Path(f"/proc/{served.pid}/root/tmp")  # the container's tmpfs, seen from the host
    before = _tree(tmp)
    # start-up leaves nothing there either (not even an empty cache directory)
    assert before == {}, before
    changed_before = podman("diff", served.container, timeout=60).stdout
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.001):
            seen.update(os.listdir(tmp))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        response = served.parse(upload)
    finally:
        done.set()
        watcher.join()
    assert response.status_code == 200, response.text[:300]
    assert seen <= set(before), seen - set(before)
    assert _tree(tmp) == before
    assert podman("diff", served.container, timeout=60).stdout == changed_before


def test_stops_on_sigterm_without_being_killed(served: Served, podman: Podman) -> None:
    """Last for each form (it stops the container): ``docker stop`` sends SIGTERM and kills
    after 10 s; the server ends by itself long before."""
    podman("stop", "-t", "10", served.container, timeout=60)
    state = _inspect(podman, served.container)["State"]
    # not killed: that would be exit code 137 after the 10 s (no wall-clock margin of our own)
    assert (state["Running"], state["ExitCode"]) == (False, 0)
