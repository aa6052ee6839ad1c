"""The readable form of ``m2fp model info`` / ``verify``: the report (``describe()`` of the
weights, the OpenVINO packages, the compute choice) as a few aligned lines a person reads at
a glance. ``--json`` prints the report itself, whole, for scripts; this form leaves out the
network configuration and may change wording between versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_MIB = 1 << 20
# class names shown before "..." in the classes line
_CLASSES_SHOWN = 6


def _size(count: int) -> str:
    return f"{count / _MIB:.1f} MiB" if count >= _MIB // 10 else f"{count} bytes"


def _classes(names: list[str]) -> str:
    shown = ", ".join(names[:_CLASSES_SHOWN])
    more = f", ... {names[-1]}" if len(names) > _CLASSES_SHOWN else ""
    return f"{len(names)}: {shown}{more}"


def _network(config: dict[str, Any], parameters: int) -> str:
    backbone = config.get("backbone", {})
    decoder = config.get("decoder", {})
    parts = [f"{parameters:,} parameters"]
    if "depth" in backbone:
        parts.insert(0, f"ResNet-{backbone['depth']} backbone")
    if "num_queries" in decoder:
        parts.insert(1, f"{decoder['num_queries']} queries")
    return ", ".join(parts)


def _protection(protection: dict[str, Any]) -> str:
    chunks = protection.get("chunks")
    return (
        f"{protection.get('cipher', 'encrypted')}, key id {protection.get('key_id')}, "
        f"{chunks} chunk(s), {_size(protection.get('file_bytes', 0))}"
    )


def _packages(packages: dict[str, dict[str, Any]]) -> str:
    if not packages:
        return "none (m2fp model export --format openvino makes one)"
    described = []
    for precision, package in packages.items():
        fits = "matches the weights" if package.get("matches_weights") else "OTHER WEIGHTS"
        described.append(f"{precision} ({package.get('where')}, {fits})")
    return "; ".join(described)


def _compute(compute: dict[str, Any]) -> list[tuple[str, str]]:
    if "unavailable" in compute:  # the torch engine on the slim runtime
        return [("compute", f"{compute.get('engine')} engine: {compute['unavailable']}")]
    threads = compute.get("threads")
    chosen = f"{compute.get('device')}, {compute.get('engine')}, {compute.get('precision')}"
    chosen += f" ({compute.get('accuracy')})"
    if threads is not None:
        chosen += f", {threads} thread(s) ({compute.get('threads_source')})"
    lines = [("compute", chosen)]
    available = compute.get("available") or {}
    if available:
        cuda = available.get("cuda") or []
        facts = [
            f"auto = {available.get('auto')}",
            f"CUDA: {', '.join(map(str, cuda)) if cuda else 'none'}",
            f"bf16 units: {', '.join(available.get('cpu_bf16_units') or []) or 'none'}",
            f"int8 units: {', '.join(available.get('cpu_int8_units') or []) or 'none'}",
            f"OpenVINO: {available.get('openvino') or 'not installed'}",
        ]
        lines.append(("available", "; ".join(facts)))
    return lines


def summary_lines(path: Path, report: dict[str, Any]) -> list[str]:
    """The report as ``label  value`` lines, labels aligned, the ``--json`` hint last."""
    rows = [
        ("model", f"{path} ({report['weights_file']}, {_size(report['weights_bytes'])})"),
        ("task", f"{report['task']}, label set {report['label_set']}"),
        ("classes", _classes(list(report["classes"]))),
        ("network", _network(report.get("config", {}), report["parameters"])),
        ("sha256", report["sha256"]),
    ]
    if "protection" in report:
        rows.append(("encrypted", _protection(report["protection"])))
    rows.append(("openvino", _packages(report.get("openvino_packages", {}))))
    if "compute" in report:
        rows += _compute(report["compute"])
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    lines.append("(--json prints all of it, the network configuration included, as JSON)")
    return lines
