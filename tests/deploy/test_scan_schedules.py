"""The daily ``m2fp scan``: the Kubernetes CronJob (locked down like the other pods) and the
systemd timer with its sandboxed one-shot service."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

from tests.deploy.test_k8s import _check_pod_security

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_cronjob_runs_the_scan_daily_in_a_restricted_pod() -> None:
    cronjob = yaml.safe_load((DEPLOY / "k8s" / "scan-cronjob.yaml").read_text())
    assert cronjob["kind"] == "CronJob" and cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    minute, hour, *daily = spec["schedule"].split()
    assert daily == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] <= 3600
    pod = job["template"]["spec"]
    _check_pod_security(pod)
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"][:2] == ["m2fp", "scan"]
    assert container["command"][2].startswith("https://")
    # the webhook as a mounted file (tests/deploy/test_k8s.py checks the mount)
    (webhook,) = container["env"]
    assert webhook["name"] == "M2FP_ALERT_WEBHOOK_FILE"
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert "scan-cronjob.yaml" in kustomization["resources"]


def test_systemd_timer_starts_a_sandboxed_scan() -> None:
    def read(name: str) -> configparser.ConfigParser:
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # systemd keys are case-sensitive
        unit.read_string((DEPLOY / "systemd" / name).read_text())
        return unit

    timer = read("m2fp-scan.timer")
    assert timer["Timer"]["OnCalendar"] == "daily"
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = read("m2fp-scan.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].split()[1:3] == ["scan", "${M2FP_SCAN_URL}"]
    assert service["User"] == "m2fp" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["LimitCORE"] == "0"
