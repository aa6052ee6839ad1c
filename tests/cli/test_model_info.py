"""``m2fp model info`` checks what it describes: unusable weights are one line and exit 1."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from m2fp.cli import run
from tests.conftest import GOLDEN, golden_state_dict


def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    shutil.copy(GOLDEN / "configuration.json", directory / "configuration.json")
    return directory


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_code_executing_pickle_is_refused_and_runs_nothing(tmp_path, capsys):
    directory = model_dir(tmp_path)
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    buffer = io.BytesIO()
    torch.save({"model": {"x": exploit}}, buffer)
    (directory / "pytorch_model.pt").write_bytes(buffer.getvalue())
    assert run(["model", "info", "--json", str(directory)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "weights_only" in captured.err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("sem_seg_head.predictor.query_feat.weight"), "1 missing key"),
        (lambda s: s.update({"backbone.extra": torch.zeros(1)}), "1 unexpected key"),
        (
            lambda s: s.update({"sem_seg_head.predictor.class_embed.bias": torch.zeros(3)}),
            "1 mis-shaped key",
        ),
    ],
)
def test_weights_that_do_not_fit_are_one_line(tmp_path, capsys, change, message):
    directory = model_dir(tmp_path)
    state = golden_state_dict()
    change(state)
    save_file(state, str(directory / "model.safetensors"))
    assert run(["model", "info", "--json", str(directory)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err


def test_report_of_an_encrypted_model_matches_the_directory(
    tiny_model_dir, encrypted_model, key_file, capsys
):
    assert run(["model", "info", "--json", str(tiny_model_dir)]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert run(["model", "info", "--json", str(encrypted_model), "--key-file", str(key_file)]) == 0
    protected = json.loads(capsys.readouterr().out)
    assert protected["parameters"] == plain["parameters"]
    assert protected["classes"] == plain["classes"]
    assert protected["protection"]["format"] == "m2fp" and "protection" not in plain


def test_a_closed_pipe_is_not_a_traceback(tiny_model_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "m2fp", "model", "info", "--json", str(tiny_model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head` exiting before the report is written
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert proc.returncode == 1


def test_the_default_is_a_readable_summary_and_json_the_whole_report(
    tiny_model_dir, encrypted_model, key_file, capsys
):
    assert run(["model", "info", "--json", str(tiny_model_dir), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert run(["model", "info", str(tiny_model_dir), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    lines = text.splitlines()
    rows = {line.split()[0]: line for line in lines[:-1]}
    assert list(rows) == [
        "model", "task", "classes", "network", "sha256", "openvino", "compute", "available"
    ]  # fmt: skip
    assert rows["task"].split(None, 1)[1] == "multi-person, label set cihp"
    assert rows["sha256"].split()[1] == report["sha256"]
    assert f"{report['parameters']:,} parameters" in rows["network"]
    assert rows["classes"].split(None, 1)[1].startswith(f"{len(report['classes'])}: Background")
    assert "cpu, torch, fp32 (exact)" in rows["compute"]
    # the values start in one column
    assert len({line.index(line.split()[1]) for line in lines[:-1]}) == 1
    assert "--json" in lines[-1]

    assert run(["model", "verify", str(encrypted_model), "--key-file", str(key_file)]) == 0
    verified = capsys.readouterr().out
    assert "\nencrypted  AES-256-GCM, key id " in verified and report["sha256"] in verified
    assert verified.splitlines()[0].startswith(f"model      {encrypted_model}")
