"""`m2fp model download` against a fake ModelScope hub on loopback (no real network)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from m2fp.cli import run
from m2fp.weights.download import DownloadError, download_model
from m2fp.weights.location import HUB_MODELS, default_model_dir, resolve_model_path

FILES = {"configuration.json": b'{"model": {}}', "pytorch_model.pt": bytes(range(256)) * 4000}


STALLED = threading.Event()


class FakeHub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = FILES
    listing_sizes: dict[str, int] = {}
    listing_hashes: dict[str, str] = {}
    ranges_seen: list[str] = []
    paths_seen: list[str] = []
    cut_after: int | None = None
    stall_after: int | None = None  # send this many bytes of the body, then stall

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        parsed = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        self.paths_seen.append(f"{parsed.path} {query['Revision'][0]}")
        if parsed.path.endswith("/repo/files"):
            files = [
                {
                    "Name": name,
                    "Path": name,
                    "Size": self.listing_sizes.get(name, len(body)),
                    "Sha256": self.listing_hashes.get(name, hashlib.sha256(body).hexdigest()),
                }
                for name, body in self.files.items()
            ]
            self._send(200, json.dumps({"Code": 200, "Data": {"Files": files}}).encode())
            return
        body = self.files[query["FilePath"][0]]
        start = 0
        if "Range" in self.headers:
            self.ranges_seen.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        chunk = body[start:]
        if self.cut_after is not None:
            chunk = chunk[: self.cut_after]
        if self.stall_after is not None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            self.wfile.write(chunk[: self.stall_after])
            self.wfile.flush()
            STALLED.wait(timeout=30)  # the client times out meanwhile
            return
        self._send(206 if start else 200, chunk)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hub():
    FakeHub.listing_sizes, FakeHub.listing_hashes, FakeHub.ranges_seen = {}, {}, []
    FakeHub.paths_seen = []
    FakeHub.cut_after = FakeHub.stall_after = None
    FakeHub.files = FILES
    STALLED.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    STALLED.set()
    server.shutdown()
    server.server_close()


def test_download_records_hashes(hub, tmp_path):
    download_model(tmp_path, base_url=hub)
    for name, body in FILES.items():
        assert (tmp_path / name).read_bytes() == body
    sums = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert f"{hashlib.sha256(FILES['pytorch_model.pt']).hexdigest()}  pytorch_model.pt" in sums


def test_download_resumes_a_partial_file(hub, tmp_path):
    body = FILES["pytorch_model.pt"]
    (tmp_path / "pytorch_model.pt.part").write_bytes(body[:1000])
    download_model(tmp_path, base_url=hub)
    assert FakeHub.ranges_seen == ["bytes=1000-"]
    assert (tmp_path / "pytorch_model.pt").read_bytes() == body


def test_short_download_is_an_error_and_can_resume(hub, tmp_path):
    FakeHub.cut_after = 5000
    with pytest.raises(DownloadError, match="expected"):
        download_model(tmp_path, base_url=hub)
    assert not (tmp_path / "pytorch_model.pt").exists()
    FakeHub.cut_after = None
    download_model(tmp_path, base_url=hub)
    assert (tmp_path / "pytorch_model.pt").read_bytes() == FILES["pytorch_model.pt"]


def test_hash_mismatch_removes_the_file(hub, tmp_path):
    FakeHub.listing_hashes = {"pytorch_model.pt": "0" * 64}
    with pytest.raises(DownloadError, match="sha256"):
        download_model(tmp_path, base_url=hub)
    assert not (tmp_path / "pytorch_model.pt").exists()
    assert not (tmp_path / "pytorch_model.pt.part").exists()


def test_offline_is_one_clear_line(tmp_path):
    with pytest.raises(DownloadError, match=r"could not reach 127\.0\.0\.1 \(offline\?\)"):
        download_model(tmp_path, base_url="http://127.0.0.1:9")


def test_plain_http_to_a_remote_host_is_refused(tmp_path):
    with pytest.raises(DownloadError, match="https"):
        download_model(tmp_path, base_url="http://example.com")


def test_default_is_the_multi_person_model(hub, tmp_path):
    download_model(tmp_path, base_url=hub)
    assert set(FakeHub.paths_seen) == {
        "/api/v1/models/damo/cv_resnet101_image-multiple-human-parsing/repo/files v1.0.1",
        "/api/v1/models/damo/cv_resnet101_image-multiple-human-parsing/repo v1.0.1",
    }


def test_cli_downloads_the_single_person_model_into_its_own_cache_dir(
    hub, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("M2FP_HOME", str(tmp_path))
    monkeypatch.delenv("M2FP_MODEL", raising=False)
    assert run(["model", "download", "--model", "single", "--base-url", hub]) == 0
    dest = default_model_dir("single")
    assert dest == tmp_path / "cv_resnet101_image-single-human-parsing"
    assert (dest / "pytorch_model.pt").read_bytes() == FILES["pytorch_model.pt"]
    assert "damo/cv_resnet101_image-single-human-parsing" in capsys.readouterr().out
    assert {p.split()[0].rsplit("/", 1)[0] for p in FakeHub.paths_seen} == {
        "/api/v1/models/damo/cv_resnet101_image-single-human-parsing/repo",
        "/api/v1/models/damo/cv_resnet101_image-single-human-parsing",
    }
    assert {p.split()[1] for p in FakeHub.paths_seen} == {HUB_MODELS["single"].revision}
    # with only the single-person model downloaded, it is the one commands find
    assert resolve_model_path(None) == dest
    default_model_dir("multi").mkdir()
    assert resolve_model_path(None) == default_model_dir("multi")


def test_an_unknown_model_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["model", "download", "--model", "both"])
    assert exit_info.value.code == 2


def test_a_file_longer_than_listed_stops_at_the_listed_size(hub, tmp_path):
    # listed as 10 bytes, served as 2 MB: nothing past byte 10 is written, nothing is left
    FakeHub.listing_sizes = {"pytorch_model.pt": 10}
    FakeHub.files = {**FILES, "pytorch_model.pt": b"x" * (2 << 20)}
    try:
        with pytest.raises(DownloadError, match="more than the 10 bytes it lists"):
            download_model(tmp_path, base_url=hub)
    finally:
        FakeHub.files = FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configuration.json"]


def test_a_resumed_file_longer_than_listed_is_removed(hub, tmp_path):
    body = FILES["pytorch_model.pt"]
    (tmp_path / "pytorch_model.pt.part").write_bytes(body[:1000])
    FakeHub.listing_sizes = {"pytorch_model.pt": 1500}
    with pytest.raises(DownloadError, match="more than the 1500 bytes"):
        download_model(tmp_path, base_url=hub)
    assert not (tmp_path / "pytorch_model.pt.part").exists()


def test_a_failed_write_removes_the_partial_file(hub, tmp_path):
    # a file-size limit of 64 KiB: the write of the weights fails with EFBIG, as on a full disk
    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    proc = subprocess.run(
        [sys.executable, "-m", "m2fp", "model", "download", "--base-url", hub],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
        env={**os.environ, "M2FP_HOME": str(tmp_path)},
    )
    assert proc.returncode == 1
    assert "m2fp: pytorch_model.pt: could not be written (File too large)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.part"))


def test_a_connection_stalled_mid_body_is_one_line_and_resumes(hub, tmp_path, capsys, monkeypatch):
    from m2fp.weights import download

    monkeypatch.setattr(download, "TIMEOUT_S", 1)
    FakeHub.stall_after = 3000
    dest = tmp_path / "model"
    assert run(["model", "download", "--base-url", hub, "--dest", str(dest)]) == 1
    FakeHub.stall_after = None
    STALLED.set()
    err = capsys.readouterr().err
    assert "m2fp: pytorch_model.pt: the connection broke after" in err
    assert "Traceback" not in err
    assert (dest / "pytorch_model.pt.part").stat().st_size == 3000
    download_model(dest, base_url=hub)
    assert FakeHub.ranges_seen == ["bytes=3000-"]
    assert (dest / "pytorch_model.pt").read_bytes() == FILES["pytorch_model.pt"]
