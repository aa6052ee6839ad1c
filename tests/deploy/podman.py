"""podman for the container tests, as it runs on these machines, and the removal of everything
one test run made with it, even when pytest is killed.

How Debian bookworm's podman 4.3 runs here, and why each setting:
- rootful only, with runc and cgroupfs: the default crun runtime fails on this kernel's cgroup
  set-up;
- file and process limits lowered to 1024: raising them is not permitted. containers.conf's
  ``default_ulimits`` is dropped as soon as a container sets any ``--ulimit`` (the image and
  compose set ``core``), so ``ULIMITS`` are also passed with every run;
- netavark networks with aardvark-dns: CNI's dnsname plugin does not serve internal networks,
  and compose's backend network is internal;
- no systemd: podman cannot arm HEALTHCHECK timers (it logs an error per container and runs
  the container anyway), so the tests run health checks themselves (``podman healthcheck run``).

Every container and network carries the run's label (compose ones its project name, which is
the run id) and every image is tagged ``localhost/<run id>-...``. A reaper process, in its own
session so that Ctrl-C does not reach it, waits for the end of a pipe held by pytest: when
pytest exits, however it dies, the pipe closes and the reaper removes what is left.

Run as a script (``python podman.py RUN_ID WORKDIR``), this module is the reaper.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

LABEL = "m2fp-test"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
[network]
network_backend = "netavark"
"""
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
# What the tests need, where Debian installs it.
TOOLS = {
    "podman": "podman",
    "runc": "runc",
    "netavark": "/usr/lib/podman/netavark",
    "aardvark-dns": "/usr/lib/podman/aardvark-dns",
    "debootstrap": "debootstrap",
}
CLEANUP_TIMEOUT = 120.0
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>
_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"  # debootstrap and chroot live in sbin


def unavailable() -> str | None:
    """Why the container tests cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "needs root: Debian's podman 4.3 runs containers here only rootful (runc, cgroupfs)"
    missing = [
        name
        for name, tool in TOOLS.items()
        if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool, path=_PATH))
    ]
    if missing:
        return (
            "needs Debian's podman, runc, netavark, aardvark-dns and debootstrap (.ci/run "
            f"installs them); missing: {', '.join(missing)}"
        )
    return None


def die_with_parent() -> None:
    """Runs in a child before exec: SIGKILL it when the test process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class PodmanError(RuntimeError):
    """A podman command failed; the message holds its command line and output tail."""


class Podman:
    """Runs podman for one test run.

    Args:
        run_id: names this run's images, labels its containers and networks.
        workdir: this run's scratch directory: containers.conf (``CONTAINERS_CONF``, which every
            call uses) and the root file systems being built (``rootfs``).
    """

    def __init__(self, *, run_id: str, workdir: Path) -> None:
        self.run_id = run_id
        self.workdir = workdir
        self.rootfs = workdir / "rootfs"
        conf = workdir / "containers.conf"
        if not conf.exists():
            conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "PATH": _PATH}
        self.label = f"{LABEL}={run_id}"

    def image(self, name: str) -> str:
        """The full name of this run's image ``name``."""
        return f"localhost/{self.run_id}-{name}:test"

    def __call__(
        self, *args: str, timeout: float, check: bool = True, stdin: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``podman ARGS``: output captured, killed after ``timeout`` seconds or with pytest."""
        try:
            result = subprocess.run(
                ["podman", *args],
                env=self.env,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                preexec_fn=die_with_parent,
            )
        except subprocess.TimeoutExpired as error:
            raise PodmanError(f"podman {' '.join(args)}: no answer in {timeout:.0f} s") from error
        if check and result.returncode != 0:
            raise PodmanError(describe(["podman", *args], result))
        return result

    def ids(self, *args: str) -> list[str]:
        """The words printed by ``podman ARGS`` (a listing with ``-q`` or a format)."""
        return self(*args, timeout=CLEANUP_TIMEOUT, check=False).stdout.split()

    def remove_all(self) -> None:
        """Remove this run's containers (build containers included), networks and images."""
        mine = (f"label={self.label}", f"label=io.podman.compose.project={self.run_id}")
        containers = [found for mark in mine for found in self.ids("ps", "-aq", "--filter", mark)]
        for entry in self.ids("ps", "-a", "--external", "--format", "{{.ID}}:{{.Names}}"):
            container, _, name = entry.partition(":")
            if name.startswith(self.run_id):  # a build's working container
                containers.append(container)
        networks = [
            found for mark in mine for found in self.ids("network", "ls", "-q", "--filter", mark)
        ]
        # by name, not by ID: an image that also carries another tag only loses this run's
        images = [
            name
            for name in self.ids("images", "--format", "{{.Repository}}:{{.Tag}}")
            if name.startswith(f"localhost/{self.run_id}-")
        ]
        for command, found in (
            (("rm", "-f", "-t", "0"), containers),
            (("network", "rm", "-f"), networks),
            (("rmi", "-f"), images),
        ):
            if found:
                self(*command, *sorted(set(found)), timeout=CLEANUP_TIMEOUT, check=False)


def describe(argv: list[str], result: subprocess.CompletedProcess[str], lines: int = 40) -> str:
    """A failed command in a few lines: the command and the tail of what it printed."""
    output = "\n".join((result.stdout + result.stderr).splitlines()[-lines:])
    return f"{' '.join(argv)} exited {result.returncode}:\n{output}"


@contextlib.contextmanager
def podman_run(workdir: Path) -> Iterator[Podman]:
    """A Podman for one test run; everything it made is removed on the way out, and by the
    reaper if this process dies first."""
    podman = Podman(run_id=f"m2fp-test-{secrets.token_hex(4)}", workdir=workdir)
    reaper = subprocess.Popen(
        [sys.executable, __file__, podman.run_id, str(workdir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield podman
    finally:
        remove_tree(podman.rootfs)
        podman.remove_all()
        assert reaper.stdin is not None
        reaper.stdin.close()
        reaper.wait(timeout=4 * CLEANUP_TIMEOUT)


def processes_inside(root: Path) -> list[int]:
    """Processes whose root directory is ``root`` or below (e.g. chrooted by debootstrap)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "root")).is_relative_to(root):
                    found.append(int(entry.name))
    return found


def remove_tree(root: Path) -> None:
    """Delete a directory that a chroot tool may have mounted things in: end the processes
    chrooted inside it, unmount what is mounted below it (deepest first), then remove it
    without crossing into another file system."""
    if not root.exists():
        return
    for pid in processes_inside(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    below = [m for m in mounts if Path(m).is_relative_to(root) and Path(m) != root]
    for mount in sorted(below, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, timeout=30)
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False, timeout=300)


def _reap(run_id: str, workdir: str) -> None:
    """Wait until the test process is gone (its end of stdin closes), then clean up."""
    sys.stdin.buffer.read()
    podman = Podman(run_id=run_id, workdir=Path(workdir))
    remove_tree(podman.rootfs)
    podman.remove_all()


if __name__ == "__main__":
    _reap(*sys.argv[1:])
