"""deploy/k8s/ray: the RayJob example valid against KubeRay's CRD schema (shipped in
tests/data/kuberay, strict: no field the schema does not name, which the API server would
silently drop), its entrypoint a valid ``m2fp batch`` command that fits the workers' CPUs,
and every pod restricted as the service's are."""

from __future__ import annotations

import copy
import gzip
import hashlib
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from m2fp.cli.arguments import build_parser

ROOT = Path(__file__).resolve().parents[2]
RAYJOB = ROOT / "deploy" / "k8s" / "ray" / "rayjob.yaml"
CRD = ROOT / "tests" / "data" / "kuberay" / "ray.io_rayjobs.yaml.gz"
CRD_SHA256 = "01a5cf3b17c1769fda44af7e82debcd98722f0c27b9ab84d084681c6649121f5"


@pytest.fixture(scope="module")
def schema() -> dict:
    text = gzip.decompress(CRD.read_bytes())
    assert hashlib.sha256(text).hexdigest() == CRD_SHA256
    # the C loader when there is one: the CRD is 1.4 MB of YAML
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return yaml.safe_load(RAYJOB.read_text())


def unknown_fields(doc: object, schema: dict, where: str = "") -> list[str]:
    """Paths in ``doc`` that ``schema`` does not name (the API server prunes them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(doc, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in doc.items():
            if properties is not None and key in properties:
                found += unknown_fields(value, properties[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(value, extra, f"{where}.{key}")
            elif properties is not None:
                found.append(f"{where}.{key}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(doc):
            found += unknown_fields(item, schema["items"], f"{where}[{index}]")
    return found


def check(doc: dict, schema: dict) -> None:
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    jsonschema.validate({k: v for k, v in doc.items() if k != "metadata"}, schema)
    assert unknown_fields(doc, schema) == []


def test_the_rayjob_matches_kuberays_crd_schema(rayjob, schema):
    check(rayjob, schema)


def test_the_schema_check_refuses_a_misspelt_and_a_mistyped_field(rayjob, schema):
    misspelt = copy.deepcopy(rayjob)
    misspelt["spec"]["shutdownAfterJobFinish"] = misspelt["spec"].pop("shutdownAfterJobFinishes")
    with pytest.raises(AssertionError, match="shutdownAfterJobFinish"):
        check(misspelt, schema)
    mistyped = copy.deepcopy(rayjob)
    mistyped["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        check(mistyped, schema)


def _pods(rayjob: dict) -> list[dict]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    return [
        rayjob["spec"]["submitterPodTemplate"]["spec"],
        cluster["headGroupSpec"]["template"]["spec"],
        *(group["template"]["spec"] for group in cluster["workerGroupSpecs"]),
    ]


def test_the_entrypoint_is_an_m2fp_batch_command_that_fits_the_workers(rayjob):
    program, *arguments = shlex.split(rayjob["spec"]["entrypoint"])
    assert program == "m2fp"
    args = build_parser().parse_args(arguments)
    assert args.command == "batch" and args.ray_address == "auto" and args.skip_existing
    assert args.key_file.startswith("/run/secrets/m2fp/")
    groups = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    cpus = sum(int(g["rayStartParams"]["num-cpus"]) * g["replicas"] for g in groups)
    assert args.actors * args.threads <= cpus
    for group in groups:
        (worker,) = group["template"]["spec"]["containers"]
        limits = worker["resources"]["limits"]
        assert int(limits["cpu"]) == int(group["rayStartParams"]["num-cpus"])
        assert worker["resources"]["requests"] == limits


def test_every_pod_is_restricted_and_the_key_stays_in_memory(rayjob):
    for pod in _pods(rayjob):
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]
            # the key is a mounted file, never an environment variable
            assert all("KEY" not in env["name"] for env in container.get("env", []))
        keys = [v for v in pod.get("volumes", []) if v["name"] == "model-key"]
        assert keys in (
            [],
            [{"name": "model-key", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
        )
