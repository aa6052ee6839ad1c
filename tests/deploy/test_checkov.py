"""checkov on deploy/: every finding is fixed or skipped inline with its reason (a
``checkov.io/skipN`` annotation in a manifest, ``# checkov:skip=`` in the Dockerfile); nothing is
skipped in configuration or on the command line, so any new finding fails this test.

checkov runs from its own venv (``.venv-checkov``, made by scripts/setup.sh: its pins would
downgrade the project's packaging and networkx). Its passes: Kubernetes over every manifest
under deploy/ (KubeRay's included, when present), kustomize over every kustomization (rendered
with kubectl), Dockerfile, and secrets over every file (compose.yaml included: checkov has no
compose checks of its own; tests/deploy/test_compose.py holds compose's rules).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOL_VENV = ROOT / ".venv-checkov"
CHECKOV = TOOL_VENV / "bin" / "checkov"
REQUIREMENTS = ROOT / "scripts" / "checkov-requirements.txt"
FRAMEWORKS = ("kubernetes", "kustomize", "dockerfile", "secrets")
# the skip annotations whose reason is "kustomization.yaml sets this": re-checked after rendering
KUSTOMIZE_SKIP = re.compile(r"kustomization\.yaml")


def _pinned_version() -> str:
    (version,) = re.findall(r"^checkov==(\S+)$", REQUIREMENTS.read_text(), re.M)
    return version


def _checkov(*args: str, cwd: Path) -> list[dict]:
    if not CHECKOV.exists():
        pytest.skip(f"{TOOL_VENV.name} is absent: bash scripts/setup.sh creates it (CI does)")
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.fail("kubectl is not installed: checkov's kustomize pass needs it (apt-get "
                    "install kubernetes-client)")  # fmt: skip
    # --skip-download: nothing fetched from Prisma Cloud (not reachable here, and not needed)
    result = subprocess.run(
        [str(CHECKOV), *args, "--skip-download", "--output", "json", "--compact"],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def _findings(reports: list[dict]) -> list[str]:
    return [
        f"{report['check_type']} {failed['file_path']}:{failed['file_line_range'][0]} "
        f"{failed['check_id']} {failed['resource']}"
        for report in reports
        for failed in report["results"]["failed_checks"]
    ]


@pytest.fixture(scope="module")
def reports() -> list[dict]:
    return _checkov("--directory", "deploy", "--framework", *FRAMEWORKS, cwd=ROOT)


def test_checkov_finds_nothing_unskipped_in_deploy(reports: list[dict]) -> None:
    assert _findings(reports) == []
    by_type = {report["check_type"]: report["summary"] for report in reports}
    # a pass that found nothing to read would pass silently: each must have scanned something
    for framework in ("kubernetes", "kustomize", "dockerfile"):
        assert by_type[framework]["resource_count"] > 0, framework
        assert by_type[framework]["parsing_errors"] == 0, framework
        assert by_type[framework]["checkov_version"] == _pinned_version()


def test_every_manifest_under_deploy_is_scanned(reports: list[dict]) -> None:
    manifests = {
        (doc["kind"], doc["metadata"]["name"])
        for path in DEPLOY.rglob("*.yaml")
        if path.name != "compose.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc and "kind" in doc and doc["kind"] != "Kustomization"
    }
    (kubernetes,) = [r for r in reports if r["check_type"] == "kubernetes"]
    # kinds without any check (HPA, NetworkPolicy...) appear in no result, only in the count
    assert kubernetes["summary"]["resource_count"] >= len(manifests)
    checked = kubernetes["results"]["passed_checks"] + kubernetes["results"]["skipped_checks"]
    workloads = {m for m in manifests if m[0] in {"Deployment", "CronJob", "Job"}}
    assert workloads <= {tuple(check["resource"].split(".")[::2]) for check in checked}


def test_every_skip_gives_its_reason(reports: list[dict]) -> None:
    skipped = [c for report in reports for c in report["results"]["skipped_checks"]]
    assert skipped, "the inline skips were not read"
    for check in skipped:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert len(reason.strip()) > 10 and reason != "No comment provided", check["check_id"]


def test_what_kustomization_sets_passes_once_rendered(tmp_path: Path) -> None:
    """The manifests skip the namespace and digest checks because kustomization.yaml sets
    both; rendered, with those skips removed, the same checks must pass."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (apt-get install kubernetes-client)")
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        rendered = subprocess.run(
            [kubectl, "kustomize", str(kustomization.parent)],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
        for doc in docs:
            annotations = doc["metadata"].get("annotations", {})
            for key in [k for k, v in annotations.items() if KUSTOMIZE_SKIP.search(str(v))]:
                del annotations[key]
        out = tmp_path / kustomization.parent.name
        out.mkdir()
        (out / "rendered.yaml").write_text(yaml.safe_dump_all(docs))
        reports = _checkov("--directory", str(out), "--framework", "kubernetes", cwd=tmp_path)
        assert _findings(reports) == []
        assert reports[0]["summary"]["resource_count"] >= len(docs)
