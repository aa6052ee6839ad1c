"""Local stand-ins for the images deploy/ builds on, which no registry reachable here serves.

``python:3.11-slim-bookworm`` (the Dockerfile's ``PYTHON_IMAGE``): Debian bookworm by
``debootstrap --variant=minbase`` from the mirror apt uses here, with Debian's python3.11,
python3-venv and ca-certificates, imported with ``podman import``. It behaves like the real
image where the Dockerfile relies on it, and differs as follows:
- ``python`` is /usr/local/bin/python, as in the real image, but it is Debian's 3.11 (a link to
  /usr/bin/python3.11), not a CPython built into /usr/local;
- pip and setuptools are installed into /usr/local (from Debian's own wheels, in Debian's
  ``dist-packages`` where the real image has ``site-packages``) so that the Dockerfile's
  ``python -m pip uninstall`` has them to remove; the real image also has ``wheel``;
- no EXTERNALLY-MANAGED marker: the real image's Python is not managed by Debian either;
- ensurepip's wheels lie in /usr/share/python-wheels (Debian's ``WHEEL_PKG_DIR``), not inside
  ensurepip: the Dockerfile removes both places;
- the CA certificates added on this host (/usr/local/share/ca-certificates, here the egress
  proxy's) are trusted, so pip inside the build reaches the package index as the host does;
- 199 MB instead of about 125 MB: Debian's documentation and locales stay.

``nginx:1.28-bookworm`` and ``redis:7.2-bookworm`` (deploy/compose.yaml): one image on that base
with Debian's nginx-light (1.22) and redis-server (7.0), and the part of the nginx image's
entrypoint compose relies on: rendering its templates with envsubst (images/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.deploy.podman import Podman, PodmanError, describe, die_with_parent, remove_tree

SUITE = "bookworm"
PYTHON_PACKAGES = ("python3.11", "python3-venv", "ca-certificates")
IMAGES = Path(__file__).parent / "images"
ROOTFS_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_CONFIG = (f"ENV PATH={ROOTFS_PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]')
DEBOOTSTRAP_TIMEOUT = 600.0
STEP_TIMEOUT = 300.0
DEBIAN_DEFAULT = "http://deb.debian.org/debian"  # debootstrap's own default mirror
INDEX_DEFAULT = "https://pypi.org/simple/"  # pip's, inside the image build
REACH_TIMEOUT = 15.0


def apt_mirror() -> str | None:
    """The Debian archive apt fetches bookworm from on this machine, or None (debootstrap's
    default) when apt names none."""
    listing = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(IDENTIFIER)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    for line in listing.splitlines():
        words = line.split()
        if words[1:] == [SUITE, "Packages"]:
            return words[0]
    return None


def package_index() -> str:
    """The package index pip uses inside the image build (``--network=host``): PIP_INDEX_URL,
    else pip's configured index-url, else PyPI."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"].split()[0]
    config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return (
        config.stdout.strip() if config.returncode == 0 and config.stdout.strip() else INDEX_DEFAULT
    )


def _reachable(url: str) -> bool:
    """Anything answers at ``url`` (an HTTP error status is an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=REACH_TIMEOUT):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def unreachable_sources() -> str | None:
    """Why the images cannot be built from here, naming the Debian mirror (debootstrap) or
    the package index (pip inside ``podman build --network=host``) that does not answer;
    None when both do."""
    sources = {
        "the Debian mirror": apt_mirror() or DEBIAN_DEFAULT,
        "the package index": package_index(),
    }
    missing = [f"{what} ({url})" for what, url in sources.items() if not _reachable(url)]
    if missing:
        return f"the container images are built from the network; unreachable: {', '.join(missing)}"
    return None


def _run(argv: list[str], *, timeout: float) -> None:
    result = subprocess.run(
        argv,
        env={"PATH": ROOTFS_PATH, "LANG": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=die_with_parent,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(describe(argv, result))


def build_python_base(podman: Podman, *, tag: str) -> None:
    """Build the python:3.11-slim-bookworm stand-in as ``tag``; the root file system is built
    in ``podman.rootfs`` and removed afterwards."""
    rootfs = podman.rootfs
    mirror = apt_mirror()
    try:
        _run(
            [
                "debootstrap", "--variant=minbase", f"--include={','.join(PYTHON_PACKAGES)}",
                SUITE, str(rootfs), *([mirror] if mirror else []),
            ],
            timeout=DEBOOTSTRAP_TIMEOUT,
        )  # fmt: skip
        _like_python_slim(rootfs)
        with subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
            preexec_fn=die_with_parent,
        ) as tar:
            changes = [arg for change in IMAGE_CONFIG for arg in ("--change", change)]
            podman("import", *changes, "-", tag, timeout=STEP_TIMEOUT, stdin=tar.stdout)
        if tar.returncode != 0:
            raise PodmanError(f"tar of {rootfs} exited {tar.returncode}")
    finally:
        remove_tree(rootfs)


def _like_python_slim(rootfs: Path) -> None:
    """The changes listed in the module docstring, made inside ``rootfs``."""
    chroot = ["chroot", str(rootfs)]
    wheels = "/usr/share/python-wheels"
    (pip_wheel,) = (rootfs / wheels.lstrip("/")).glob("pip-*.whl")
    _run(
        [
            *chroot, "python3.11", f"{wheels}/{pip_wheel.name}/pip", "install", "--quiet",
            "--no-index", "--find-links", wheels, "--ignore-installed",
            "--break-system-packages", "--root-user-action=ignore", "pip", "setuptools",
        ],
        timeout=STEP_TIMEOUT,
    )  # fmt: skip
    (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3.11")
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink()
    local_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    for certificate in local_cas:
        (rootfs / "usr/local/share/ca-certificates" / certificate.name).write_bytes(
            certificate.read_bytes()
        )
    if local_cas:
        _run([*chroot, "update-ca-certificates"], timeout=STEP_TIMEOUT)
    for leftover in (*(rootfs / "var/cache/apt/archives").glob("*.deb"),
                     *(rootfs / "var/lib/apt/lists").glob("*_*")):  # fmt: skip
        leftover.unlink()


def build_services_image(podman: Podman, *, base: str, tag: str) -> None:
    """Build the nginx and redis stand-in (images/services.Containerfile) on ``base``."""
    podman(
        "build", "--network=host", "--layers=false", "--force-rm", "--build-arg", f"BASE={base}",
        "-t", tag, "-f", str(IMAGES / "services.Containerfile"), str(IMAGES),
        timeout=STEP_TIMEOUT,
    )  # fmt: skip
