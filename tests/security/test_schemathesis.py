"""Schemathesis (a tool nobody here wrote) against a live ``m2fp serve``: every check, a fixed
seed, a bounded number of cases per operation, rate limits raised. It fails on any response
the OpenAPI schema does not describe (status, content type, body), any 5xx, any schema-valid
request refused with an undocumented status, and any invalid one accepted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261201
MAX_EXAMPLES = 30
RUN_TIMEOUT = 420


def schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed (it is in the test extra)")
    return [found]


def test_schemathesis_finds_nothing(docs_server, tmp_path):
    command = [
        *schemathesis(),
        "--config-file", str(CONFIG),
        "run", f"{docs_server.url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--request-timeout", "30",
        "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout, result.stdout  # cases did run


def test_the_schema_describes_the_real_contract(docs_server):
    import httpx

    schema = httpx.get(f"{docs_server.url}/openapi.json", timeout=10).json()
    parse = schema["paths"]["/api/v1/parse"]["post"]
    bodies = set(parse["requestBody"]["content"])
    assert bodies == {"multipart/form-data", "image/jpeg", "image/png"}
    statuses = set(parse["responses"])
    assert {"200", "400", "401", "403", "406", "408", "413", "415", "429", "503"} <= statuses
    assert "422" not in statuses  # FastAPI's validation answer, never sent
    for status, response in parse["responses"].items():
        if status != "200":
            assert response["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    assert set(parse["responses"]["200"]["content"]) == {"application/json", "image/png"}
    (classes,) = [p for p in parse["parameters"] if p["name"] == "classes"]
    assert (classes["style"], classes["explode"]) == ("form", False)
    assert "Face" in classes["schema"]["items"]["enum"]
    described = {p["name"]: p["schema"] for p in parse["parameters"]}
    assert described["agnostic"]["items"]["enum"] == [
        "upper_body",
        "lower_body",
        "dresses",
        "overall",
    ]
    assert described["label_set"]["enum"] == ["cihp", "lip", "atr", "viton"]
    assert described["encoding"]["enum"] == ["png", "rle"]
    metrics = schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
