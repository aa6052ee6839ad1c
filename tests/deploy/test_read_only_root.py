"""The container contract without a container: ``m2fp serve`` on a read-only root filesystem
with a fresh tmpfs on /tmp, no capabilities, no core dumps, as the image runs it, with a model
directory or an encrypted ``.m2fp`` file and its key file (the compose and k8s default).

A private mount namespace (``unshare -m``) remounts ``/`` read-only for the server only; the
model (and key) directory is bind-mounted read-only on /srv, like the image's /models volume.
A checkout under /tmp (CI clones there) is bind-mounted read-only back over the new tmpfs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from m2fp.protection.convert import encrypt_model_dir
from m2fp.protection.keys import generate_key, write_key_file
from tests.conftest import golden_sizes
from tests.deploy.processes import ServerProcess, free_port, http_ok

NAMESPACE_SCRIPT = r"""
set -e
mount --make-rprivate /
mount --bind "$MODEL_SOURCE" /srv
mount -o remount,bind,ro /srv
# a checkout (and its venv) under /tmp must survive the fresh tmpfs: park the old /tmp on /mnt
mount --bind /tmp /mnt
mount -o remount,bind,ro /
mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp
case "$REPO" in
  /tmp/*)
    mkdir -p "$REPO"
    mount --bind "/mnt${REPO#/tmp}" "$REPO"
    mount -o remount,bind,ro "$REPO"
    ;;
esac
for probe in /usr/m2fp-probe "$REPO/m2fp-probe" "$HOME_DIR/m2fp-probe"; do
  if touch "$probe" 2>/dev/null; then echo "writable: $probe"; exit 1; fi
done
touch /tmp/m2fp-probe && rm /tmp/m2fp-probe
echo "root read-only, /tmp writable"
cd /tmp
exec setpriv --inh-caps=-all --bounding-set=-all --no-new-privs \
  /bin/sh -c 'ulimit -c 0 && echo "core limit $(ulimit -H -c)" && exec "$@"' m2fp "$@"
"""


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0 and Path("/srv").is_dir()


def _model_env(form: str, tiny_model_dir: Path, models: Path) -> dict[str, str]:
    """Put the model in ``models`` (mounted on /srv); the settings that point at it."""
    if form == "directory":
        shutil.copytree(tiny_model_dir, models)
        return {"M2FP_MODEL": "/srv"}
    models.mkdir()
    key = generate_key()
    write_key_file(models / "model.key", key)
    encrypt_model_dir(tiny_model_dir, key=key, out=models / "model.m2fp")
    return {"M2FP_MODEL": "/srv/model.m2fp", "M2FP_MODEL_KEY_FILE": "/srv/model.key"}


@pytest.mark.skipif(
    not _can_unshare(), reason="needs root, unshare and setpriv for a private mount namespace"
)
@pytest.mark.parametrize("form", ["directory", "encrypted"])
def test_server_runs_on_read_only_root_with_tmpfs(
    form: str, tiny_model_dir: Path, golden_image_path: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    model_env = _model_env(form, tiny_model_dir, models)
    port = free_port()
    min_size, max_size = golden_sizes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("M2FP_")}
    env.update(
        MODEL_SOURCE=str(models),
        REPO=str(Path(__file__).resolve().parents[2]),
        HOME_DIR=str(Path.home()),
        HOME="/tmp",
        PYTHONDONTWRITEBYTECODE="1",
        M2FP_MIN_SIZE=str(min_size),
        M2FP_MAX_SIZE=str(max_size),
        **model_env,
    )
    server = ServerProcess(
        name="read-only m2fp serve",
        argv=[
            "unshare", "-m", "/bin/sh", "-c", NAMESPACE_SCRIPT, "namespace",
            sys.executable, "-m", "m2fp", "serve", "--host", "127.0.0.1", "--port", str(port),
        ],
        log=tmp_path / "server.log",
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    server.start()
    try:
        server.wait_until(lambda: http_ok(f"{base}/readyz"), timeout=120)
        response = httpx.post(
            f"{base}/api/v1/parse",
            files={"image": ("photo.png", golden_image_path.read_bytes(), "image/png")},
            timeout=60,
        )
        assert response.status_code == 200, response.text[:200]
        assert response.json()["width"] == 150
        assert server.running
    finally:
        server.stop()
    log = server.log.read_text()
    assert "root read-only, /tmp writable" in log and "core limit 0" in log, log
