"""deploy/k8s: every manifest valid against the Kubernetes API schemas (strict: no unknown
field) of the minor releases upstream supports, checked offline with kubernetes-validate; and
read from the manifests: restricted pod security, probes, resources, no service links, HPA, the
Secret template and a Redis without persistence."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The three minor releases upstream supports as kubernetes-validate 1.37 ships them.
KUBERNETES_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")
# Volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def _documents() -> list[tuple[str, dict]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for _, doc in _documents()
        if doc["kind"] != "Kustomization"
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_api_schemas(version: str) -> None:
    checked = set()
    for name, doc in _documents():
        if doc["kind"] == "Kustomization":
            continue  # kustomize's own file, not an API object: no schema
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name}, {doc['kind']} {doc['metadata']['name']}: {error.message}")
        checked.add(doc["kind"])
    kinds = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob"}
    assert checked == kinds | {"NetworkPolicy", "Ingress", "Secret", "Namespace"}


def test_schema_check_refuses_an_unknown_field(manifests: dict) -> None:
    """Strict validation is what catches a misspelt security setting, which Kubernetes would
    otherwise drop."""
    broken = copy.deepcopy(manifests[("Deployment", "m2fp")])
    security = broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def _check_pod_security(pod: dict) -> None:
    assert pod["automountServiceAccountToken"] is False
    # no Docker-link variables (they would land in the M2FP_ settings namespace)
    assert pod["enableServiceLinks"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()
    for volume in pod["volumes"]:
        assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod.get("initContainers", []):
        security = container["securityContext"]
        assert security.get("privileged", False) is False
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "add" not in security["capabilities"]
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[kind].keys()
    mounts = {m["mountPath"]: m["name"] for c in pod["containers"] for m in c["volumeMounts"]}
    assert "/tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"]["medium"] == "Memory"


def test_app_deployment_is_locked_down(manifests: dict) -> None:
    deployment = manifests[("Deployment", "m2fp")]
    pod = deployment["spec"]["template"]["spec"]
    _check_pod_security(pod)
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    (container,) = pod["containers"]
    model_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/models")
    assert model_mount["readOnly"] is True
    assert deployment["spec"]["replicas"] >= 2


def test_app_probes(manifests: dict) -> None:
    (container,) = manifests[("Deployment", "m2fp")]["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_app_cpu_is_guaranteed_whole_cpus_and_threads_are_derived(manifests: dict) -> None:
    """The CPUs m2fp sizes its threads for (the limit, read back as cpu.max) are the CPUs the
    scheduler promises (the request): requests equal limits, in whole CPUs, so the pod is
    Guaranteed and a static CPU manager may give it its own cores; the threads are left to
    the derivation, not pinned by M2FP_THREADS."""
    pod = manifests[("Deployment", "m2fp")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resources = container["resources"]
    assert resources["requests"] == resources["limits"]
    assert str(resources["limits"]["cpu"]).isdigit() and int(resources["limits"]["cpu"]) >= 1
    assert "M2FP_THREADS" not in {variable["name"] for variable in container["env"]}
    assert "--threads" not in container.get("args", [])


def _pods(manifests: dict) -> dict[str, dict]:
    pods = {}
    for (kind, name), doc in manifests.items():
        if kind == "Deployment":
            pods[name] = doc["spec"]["template"]["spec"]
        elif kind == "CronJob":
            pods[name] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pods


def _secret_file(pod: dict, container: dict, path: str) -> tuple[str, dict]:
    """The Secret key mounted at ``path`` in ``container``, and its volume's secret source."""
    directory, name = path.rsplit("/", 1)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    source = volume["secret"]
    (item,) = [i for i in source["items"] if i["path"] == name]
    # kubelet's file is root:fsGroup: group-readable for the pod's user, nothing for others
    assert source["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    return item["key"], source


def test_no_secret_reaches_a_pod_as_an_environment_variable(manifests: dict) -> None:
    """Environment variables leak into crash reports, /proc/PID/environ and child processes
    (checkov CKV_K8S_35): every secret is a mounted file."""
    pods = _pods(manifests)
    assert set(pods) == {"m2fp", "m2fp-redis", "m2fp-scan"}
    for name, pod in pods.items():
        for container in pod["containers"] + pod.get("initContainers", []):
            for env in container.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {}), (name, env["name"])
            assert "envFrom" not in container, name


def test_app_settings_come_from_secret_files_and_trust_no_wildcard(manifests: dict) -> None:
    pod = manifests[("Deployment", "m2fp")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    secret = manifests[("Secret", "m2fp-secrets")]
    assert "M2FP_MODEL_KEY" not in env, "a key in the environment shows in /proc/PID/environ"
    for variable, key in (
        ("M2FP_STORAGE_PASSWORD_FILE", "redis-password"),
        ("M2FP_LOG_SALT_FILE", "log-salt"),
    ):
        mounted, source = _secret_file(pod, container, env[variable])
        assert (mounted, source["secretName"]) == (key, "m2fp-secrets")
        assert key in secret["stringData"]
    # the address only: the password comes from its file
    assert env["M2FP_STORAGE_URI"] == "redis://m2fp-redis:6379/0"
    proxies = env["M2FP_TRUSTED_PROXIES"]
    assert "*" not in proxies and not proxies.endswith("/0")


def test_scan_webhook_is_a_mounted_file(manifests: dict) -> None:
    pod = _pods(manifests)["m2fp-scan"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    key, source = _secret_file(pod, container, env["M2FP_ALERT_WEBHOOK_FILE"])
    assert (key, source["secretName"]) == ("alert-webhook", "m2fp-secrets")


def test_model_key_reaches_the_server_as_a_private_file_in_ram(manifests: dict) -> None:
    pod = manifests[("Deployment", "m2fp")]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (init,) = pod["initContainers"]
    (container,) = pod["containers"]
    key_file = next(e["value"] for e in container["env"] if e["name"] == "M2FP_MODEL_KEY_FILE")
    key_dir = key_file.rsplit("/", 1)[0]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == key_dir]
    assert mount["readOnly"] is True
    assert volumes[mount["name"]]["emptyDir"]["medium"] == "Memory"
    script = init["command"][-1]
    assert script.startswith("umask 077 && ") and script.endswith(f"> {key_file}")
    (source,) = [m for m in init["volumeMounts"] if m["name"] != mount["name"]]
    secret = volumes[source["name"]]["secret"]
    assert secret["secretName"] == "m2fp-secrets"
    assert f"{source['mountPath']}/{secret['items'][0]['path']}" in script
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_secret_is_a_template_without_a_real_key(manifests: dict) -> None:
    secret = manifests[("Secret", "m2fp-secrets")]
    assert all(value.startswith("REPLACE ") for value in secret["stringData"].values())
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    expected = {p.name for p in K8S.glob("*.yaml")} - {"secret.example.yaml", "kustomization.yaml"}
    assert set(kustomization["resources"]) == expected


def test_service_and_hpa_target_the_deployment(manifests: dict) -> None:
    labels = manifests[("Deployment", "m2fp")]["spec"]["template"]["metadata"]["labels"]
    service = manifests[("Service", "m2fp")]
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = manifests[("HorizontalPodAutoscaler", "m2fp")]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "m2fp",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_redis_has_no_persistence_and_a_password(manifests: dict) -> None:
    pod = manifests[("Deployment", "m2fp-redis")]["spec"]["template"]["spec"]
    _check_pod_security(pod)
    (container,) = pod["containers"]
    command = " ".join(container["command"])
    assert "--save ''" in command and "--appendonly no" in command
    assert "requirepass" in command
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    password_file = "/run/secrets/redis/redis-password"
    assert f'"$(cat {password_file})"' in command
    key, source = _secret_file(pod, container, password_file)
    assert (key, source["secretName"]) == ("redis-password", "m2fp-secrets")
    service = manifests[("Service", "m2fp-redis")]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_redis_runs_as_a_high_uid_and_is_ready_only_when_it_answers(manifests: dict) -> None:
    pod = manifests[("Deployment", "m2fp-redis")]["spec"]["template"]["spec"]
    app_uid = manifests[("Deployment", "m2fp")]["spec"]["template"]["spec"]["securityContext"]
    uid = pod["securityContext"]["runAsUser"]
    assert uid >= 10000 and uid != app_uid["runAsUser"]  # checkov CKV_K8S_40
    (container,) = pod["containers"]
    probe = " ".join(container["readinessProbe"]["exec"]["command"])
    # an authenticated PING, the password kept off redis-cli's command line
    assert "REDISCLI_AUTH=" in probe and "ping" in probe and "grep -qx PONG" in probe
    assert " -a " not in probe


def test_namespace_and_image_digests_are_set_once_in_the_kustomization(manifests: dict) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == manifests[("Namespace", "m2fp")]["metadata"]["name"]
    assert all("namespace" not in doc["metadata"] for doc in manifests.values())
    labels = manifests[("Namespace", "m2fp")]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pinned = {image["name"]: image for image in kustomization["images"]}
    for name, pod in _pods(manifests).items():
        for container in pod["containers"] + pod.get("initContainers", []):
            image = pinned[container["image"].split(":")[0]]
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"]), name
            # with a digest, IfNotPresent runs exactly the pinned bytes
            assert container.get("imagePullPolicy", "IfNotPresent") == "IfNotPresent", name


def test_either_m2fp_image_fits_the_manifests(manifests: dict) -> None:
    """The kustomization's m2fp entry picks the full or the slim image alone: no pod names an
    engine (each image has its own default: torch, or OpenVINO in the slim one, which has no
    torch) and both images come from deploy/Dockerfile's targets."""
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (K8S.parent / "Dockerfile").read_text(), re.M)
    assert {"runtime", "full"} <= set(stages)
    assert "--target runtime" in (K8S / "kustomization.yaml").read_text()
    for name, pod in _pods(manifests).items():
        for container in pod["containers"] + pod.get("initContainers", []):
            if container["image"].split(":")[0] == "m2fp":
                env = {variable["name"] for variable in container.get("env", [])}
                assert "M2FP_ENGINE" not in env, name
                assert "--engine" not in " ".join(container.get("args", [])), name


def test_network_policies_fence_app_and_redis(manifests: dict) -> None:
    redis_policy = manifests[("NetworkPolicy", "m2fp-redis")]
    (rule,) = redis_policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "m2fp"}}}]
    app_policy = manifests[("NetworkPolicy", "m2fp")]
    assert app_policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "m2fp"}
