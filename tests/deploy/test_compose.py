"""deploy/compose.yaml: nginx with TLS, two hardened app replicas, a private Redis without
persistence, and every key or password coming from a secret file."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.nginx_config import TEMPLATE, placeholders

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
IMAGE_USER = "10001:10001"  # USER of deploy/Dockerfile


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _apps(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_two_app_replicas_behind_nginx(compose: dict) -> None:
    apps = _apps(compose)
    assert sum(app.get("deploy", {}).get("replicas", 1) for app in apps.values()) >= 2
    env = compose["services"]["nginx"]["environment"]
    upstreams = {v.split(":")[0] for k, v in env.items() if k.startswith("NGINX_UPSTREAM_")}
    assert upstreams == apps.keys()
    depends = compose["services"]["nginx"]["depends_on"]
    assert all(depends[name]["condition"] == "service_healthy" for name in apps)


def test_app_cpus_are_whole_and_match_the_k8s_deployment(compose: dict) -> None:
    """Each replica's CPU limit (its cgroup quota, which m2fp derives its threads from) is a
    whole number of CPUs, the same as the k8s Deployment's, and no M2FP_THREADS overrides
    the derivation."""
    pods = yaml.safe_load_all((DEPLOY / "k8s" / "deployment.yaml").read_text())
    (deployment,) = [doc for doc in pods if doc and doc["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for name, app in _apps(compose).items():
        cpus = app["deploy"]["resources"]["limits"]["cpus"]
        assert str(cpus).isdigit() and int(cpus) >= 1, name
        assert cpus == str(container["resources"]["limits"]["cpu"]), name
        assert "M2FP_THREADS" not in app["environment"], name
        assert "--threads" not in str(app.get("command", "")), name


def _default(value: str) -> tuple[str, str]:
    """The variable and default of a compose ``${NAME:-default}`` value."""
    match = re.fullmatch(r"\$\{(\w+):-([^}]+)\}", value)
    assert match, f"{value} is not ${{NAME:-default}}"
    return match.group(1), match.group(2)


def test_apps_build_either_image_the_full_one_by_default(compose: dict) -> None:
    """M2FP_TARGET picks the Dockerfile target (full by default, runtime the slim one) and
    M2FP_IMAGE its name; the engine is the image's own default, so nothing else changes."""
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M)
    documented = (DEPLOY / "compose.yaml").read_text()
    for name, app in _apps(compose).items():
        variable, target = _default(app["build"]["target"])
        assert (variable, target) == ("M2FP_TARGET", stages[-1]), name
        assert "runtime" in stages and f"{variable}=runtime" in documented
        variable, image = _default(app["image"])
        assert (variable, image) == ("M2FP_IMAGE", "m2fp:0.1.0"), name
        assert "M2FP_ENGINE" not in app["environment"], name


def test_every_service_is_hardened(compose: dict) -> None:
    assert re.findall(r"^USER (\S+)", (DEPLOY / "Dockerfile").read_text(), re.M) == [IMAGE_USER]
    for name, service in compose["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["ulimits"]["core"] == 0, name
        assert any(t.startswith("/tmp:") for t in service["tmpfs"]), name
        assert "cap_add" not in service and "privileged" not in service, name
        # secret files keep their host owner: one non-root UID (the image's USER) reads them all
        assert service.get("user", IMAGE_USER) == IMAGE_USER, name


def test_only_nginx_is_published_and_redis_is_internal(compose: dict) -> None:
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"nginx"}
    backend = compose["networks"]["backend"]
    assert backend["internal"] is True
    assert compose["services"]["redis"]["networks"] == ["backend"]


def test_redis_keeps_nothing_and_needs_its_password(compose: dict) -> None:
    command = " ".join(compose["services"]["redis"]["entrypoint"])
    assert "--save ''" in command and "--appendonly no" in command
    assert "requirepass" in command and "/run/secrets/redis_password" in command
    assert compose["services"]["redis"]["secrets"] == ["redis_password"]


def test_app_gets_keys_from_secrets_and_trusts_only_nginx(compose: dict) -> None:
    nginx_ip = compose["services"]["nginx"]["networks"]["backend"]["ipv4_address"]
    subnet = compose["networks"]["backend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(nginx_ip) in ipaddress.ip_network(subnet)
    for name, app in _apps(compose).items():
        env = app["environment"]
        assert env["M2FP_TRUSTED_PROXIES"] == nginx_ip, name
        assert env["M2FP_MODEL_KEY_FILE"] == "/run/secrets/m2fp_model_key", name
        assert {"m2fp_model_key", "redis_password", "m2fp_log_salt"} <= set(app["secrets"])
        # secrets as files the server reads, never in its environment (nor in this file)
        assert env["M2FP_STORAGE_URI"] == "redis://redis:6379/0", "no password in the address"
        assert env["M2FP_STORAGE_PASSWORD_FILE"] == "/run/secrets/redis_password", name
        assert env["M2FP_LOG_SALT_FILE"] == "/run/secrets/m2fp_log_salt", name
        assert not any(k in env for k in ("M2FP_LOG_SALT", "M2FP_ALERT_WEBHOOK")), name
        # the image's entrypoint, which lowers the core-dump limit to 0 first
        assert "entrypoint" not in app, name
        assert all(v.endswith(":ro") for v in app["volumes"]), "model mounted read-only"
        assert "ports" not in app, name


def test_nginx_terminates_tls_with_secret_files(compose: dict) -> None:
    nginx = compose["services"]["nginx"]
    env = nginx["environment"]
    assert placeholders(TEMPLATE.read_text()) <= env.keys()
    assert env["NGINX_TLS_KEY"] == "/run/secrets/tls_key"
    assert env["NGINX_TLS_CERT"] == "/run/secrets/tls_cert"
    assert {"tls_key", "tls_cert"} <= set(nginx["secrets"])
    assert sorted(p.split(":")[1] for p in nginx["ports"]) == sorted(
        [env["NGINX_HTTP_PORT"], env["NGINX_HTTPS_PORT"]]
    )
    (mount,) = nginx["volumes"]
    assert mount.startswith("./nginx/m2fp.conf.template:") and mount.endswith(":ro")


def test_secrets_are_files_kept_out_of_git(compose: dict) -> None:
    secrets = compose["secrets"]
    assert {"tls_cert", "tls_key", "redis_password", "m2fp_model_key", "m2fp_log_salt"} <= set(
        secrets
    )
    assert all(s["file"].startswith("./secrets/") for s in secrets.values())
    gitignore = (DEPLOY.parent / ".gitignore").read_text().splitlines()
    assert "deploy/secrets/" in gitignore
