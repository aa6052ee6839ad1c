"""deploy/systemd and deploy/gen-dev-cert.sh: the pieces of a host (non-container) install."""

from __future__ import annotations

import configparser
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HARDENING = {
    "LimitCORE": "0",
    "LimitNOFILE": "16384",  # room for M2FP_MAX_CONNECTIONS and spare descriptors
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "UMask": "0077",
}


def test_service_unit_runs_unprivileged_without_core_dumps() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string((DEPLOY / "systemd" / "m2fp@.service").read_text())
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert service["User"] not in ("", "root")
    assert "m2fp serve --host 127.0.0.1 --port %i" in service["ExecStart"]
    assert service["Environment"] == "M2FP_MODEL_KEY_FILE=%d/m2fp_model_key"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (.ci/run)")
def test_dev_certificate_is_valid_for_the_name_and_loopback(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(DEPLOY / "gen-dev-cert.sh"), str(tmp_path), "m2fp.test"],
        check=True,
        capture_output=True,
    )
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    san = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    names = {entry.strip() for entry in san.splitlines()[1].split(",")}
    assert names == {"DNS:m2fp.test", "DNS:localhost", "IP Address:127.0.0.1"}
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)  # the key belongs to the certificate
