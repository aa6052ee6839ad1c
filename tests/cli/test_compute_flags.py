"""--device, --engine, --precision and --batch-size on parse, serve and model info: listed
in --help (int8 labelled an approximation), impossible choices refused in one line with exit
code 2 before anything loads, batches written like single images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from m2fp.cli import run
from m2fp.cli.arguments import build_parser
from tests.utils.same_parse import assert_informative, assert_maps_agree, assert_same_persons

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def one_line_usage_error(args, capsys) -> str:
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("m2fp: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("command", [["parse"], ["serve"], ["model", "info"]])
def test_help_lists_the_choices(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--device", "--engine", "--precision"):
        assert flag in text
    assert "int8: an approximation" in text
    assert "auto|cpu|cuda|cuda:N|mps" in text


def test_serve_flags_default_to_the_settings():
    args = build_parser().parse_args(["serve"])
    assert (args.device, args.engine, args.precision) == (None, None, None)
    args = build_parser().parse_args(["parse", "x.png", "--out", "o"])
    assert (args.device, args.engine, args.precision, args.batch_size) == (
        "auto",
        "torch",
        "fp32",
        None,
    )


@no_cuda
def test_parse_on_cuda_where_none_exists(tiny_model_dir, golden_image_path, tmp_path, capsys):
    err = one_line_usage_error(
        ["parse", str(golden_image_path), "--model", str(tiny_model_dir), "--out",
         str(tmp_path / "o"), "--device", "cuda"],
        capsys,
    )  # fmt: skip
    assert "device cuda was asked for" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--precision", "int8"], "engine openvino only"),
        (["--engine", "openvino", "--device", "cuda"], "runs on the CPU"),
        (["--device", "gpu"], "device must be one of"),
        (["--device", "cpu", "--precision", "tf32"], "needs a CUDA device"),
    ],
)
def test_parse_refuses_impossible_choices(tiny_model_dir, tmp_path, capsys, flags, message):
    err = one_line_usage_error(
        ["parse", "x.png", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"), *flags],
        capsys,
    )
    assert message in err


def test_batch_size_must_be_positive(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["parse", "x.png", "--out", "o", "--batch-size", "0"])
    assert info.value.code == 2


@no_cuda
def test_serve_refuses_cuda_before_listening(tiny_model_dir, capsys, monkeypatch):
    for name in ("M2FP_DEVICE", "M2FP_ENGINE", "M2FP_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    err = one_line_usage_error(
        ["serve", "--model", str(tiny_model_dir), "--device", "cuda"], capsys
    )
    assert "device cuda was asked for" in err


def test_serve_refuses_int8_on_torch(tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("M2FP_PRECISION", "int8")
    err = one_line_usage_error(["serve", "--model", str(tiny_model_dir)], capsys)
    assert "M2FP_PRECISION/M2FP_ENGINE" in err


def test_model_info_reports_the_choice(tiny_model_dir, capsys):
    assert run(["model", "info", "--json", str(tiny_model_dir), "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["openvino_packages"] == {}
    compute = report["compute"]
    assert (compute["device"], compute["engine"], compute["accuracy"]) == ("cpu", "torch", "exact")


def test_parse_in_batches_writes_what_single_images_write(
    visible_model_dir, golden_image_path, tmp_path, capsys
):
    """Two good photos of one size share a batch around a bad one, which fails alone; the
    label maps (several classes: the visible model) and the persons in the JSON summaries
    are those of parsing one at a time, up to float rounding."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    twin = tmp_path / "twin.png"
    twin.write_bytes(golden_image_path.read_bytes())
    images = [str(golden_image_path), str(bad), str(twin)]
    outputs = {}
    for batch in ("1", "3"):
        out = tmp_path / f"out{batch}"
        code = run(
            ["parse", *images, "--model", str(visible_model_dir), "--out", str(out),
             "--batch-size", batch, "--min-size", "128", "--max-size", "192"]
        )  # fmt: skip
        assert code == 1  # the bad image failed alone
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [line["status"] for line in lines] == ["ok", "failed", "ok"]
        outputs[batch] = {p.name: p for p in out.rglob("*") if p.is_file()}
    assert outputs["1"].keys() == outputs["3"].keys()
    labels = [name for name in outputs["1"] if name.endswith("_labels.png")]
    summaries = [name for name in outputs["1"] if name.endswith(".json")]
    assert len(labels) == 2 and len(summaries) == 2
    for name in labels:
        alone = np.asarray(Image.open(outputs["1"][name]))
        assert_informative(alone)
        assert_maps_agree(np.asarray(Image.open(outputs["3"][name])), alone)
    for name in summaries:
        alone = json.loads(outputs["1"][name].read_text())["persons"]
        assert len(alone) > 1
        assert_same_persons(json.loads(outputs["3"][name].read_text())["persons"], alone)


@pytest.mark.parametrize("bad", ["0", "-2", "many", "100000"])
def test_threads_must_be_a_sane_count(bad):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["parse", "x.png", "--out", "o", "--threads", bad])
    assert info.value.code == 2


def test_model_info_reports_the_threads(tiny_model_dir, capsys):
    assert (
        run(["model", "info", "--json", str(tiny_model_dir), "--device", "cpu", "--threads", "1"])
        == 0
    )
    compute = json.loads(capsys.readouterr().out)["compute"]
    assert (compute["threads"], compute["threads_source"]) == (1, "requested")
    assert run(["model", "info", "--json", str(tiny_model_dir), "--device", "cpu"]) == 0
    compute = json.loads(capsys.readouterr().out)["compute"]
    assert compute["threads_source"] in ("cgroup quota", "affinity")
    assert 1 <= compute["threads"] <= compute["cpu_affinity"]


def test_serve_refuses_bad_threads_from_the_environment(tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("M2FP_THREADS", "0")
    err = one_line_usage_error(["serve", "--model", str(tiny_model_dir)], capsys)
    assert "M2FP_THREADS" in err
