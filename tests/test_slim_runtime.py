"""The slim runtime: an exported OpenVINO package run with torch refused (``m2fp[runtime]``).

Every child here runs with an import hook that refuses ``torch`` (``tests.utils.
without_torch``) and ends by asserting torch never entered ``sys.modules``: the library, the
CLI and ``m2fp serve`` from a model directory with an fp32 package (exported in this session
with the torch install), an encrypted ``.m2fp`` opened with its key file, and the one-line
refusal of what needs torch. The parses are compared with the torch engine's in this process.
"""

from __future__ import annotations

import json
import signal

import httpx
import numpy as np
import pytest
from PIL import Image

from m2fp.cli import run
from tests.conftest import golden_sizes
from tests.server.conftest import running_process
from tests.utils.ports import free_port
from tests.utils.same_parse import assert_maps_agree, assert_same_persons
from tests.utils.without_torch import ABSENT, command_without_torch, run_without_torch

pytest.importorskip("openvino", reason="the slim runtime runs OpenVINO packages")

TORCH_LINE = "m2fp: this needs PyTorch, which the slim runtime (m2fp[runtime]) leaves out: "
TORCH_LINE += "pip install 'm2fp[torch]'"


def sizes() -> list[str]:
    min_size, max_size = golden_sizes()
    return ["--min-size", str(min_size), "--max-size", str(max_size)]


def assert_like_torch_engine(persons: list[dict], label_map: np.ndarray, reference) -> None:
    """A torch-free parse equals the torch engine's (another engine and process: to
    rounding, tie pixels and scores within a rounding step)."""
    assert reference.persons, "the reference found no person: nothing to compare"
    assert_same_persons(persons, reference.to_dict()["persons"])
    assert_maps_agree(label_map, reference.label_map)


def assert_no_torch(proc) -> None:
    assert proc.returncode == 0, proc.stderr  # the child's last line asserts torch is absent


@pytest.fixture(scope="module")
def torch_reference(tiny_parser, golden_image_path):
    return tiny_parser(golden_image_path)


def test_human_parser_from_a_package_directory(
    openvino_model_dir, golden_image_path, torch_reference, tmp_path
):
    min_size, max_size = golden_sizes()
    proc = run_without_torch(
        f"""
        import json
        import numpy as np
        from m2fp import HumanParser, ParserOptions

        options = ParserOptions(engine="openvino", min_size={min_size}, max_size={max_size})
        parser = HumanParser.from_pretrained({str(openvino_model_dir)!r}, options=options)
        assert parser.model is None  # the package alone: no network built
        result = parser({str(golden_image_path)!r})
        np.save({str(tmp_path / "labels.npy")!r}, result.label_map)
        print(json.dumps(result.to_dict()["persons"]))
        """
    )
    assert_no_torch(proc)
    persons = json.loads(proc.stdout)
    assert_like_torch_engine(persons, np.load(tmp_path / "labels.npy"), torch_reference)


def assert_cli_parse_like_torch_engine(args: list[str], out, torch_reference) -> None:
    """``m2fp ARGS`` run with torch refused writes into ``out`` what the torch engine parses."""
    proc = run_without_torch(f"from m2fp.cli import run\nassert run({args!r}) == 0\n")
    assert_no_torch(proc)
    written = json.loads((out / "image.json").read_text())
    label_map = np.asarray(Image.open(out / "image_labels.png"))
    assert_like_torch_engine(written["persons"], label_map, torch_reference)


def test_cli_parse(openvino_model_dir, golden_image_path, torch_reference, tmp_path):
    out = tmp_path / "out"
    args = ["parse", str(golden_image_path), "--model", str(openvino_model_dir)]
    args += ["--engine", "openvino", "--out", str(out), *sizes()]
    assert_cli_parse_like_torch_engine(args, out, torch_reference)


def test_encrypted_model_with_its_key_file(
    openvino_model_dir, golden_image_path, torch_reference, tmp_path, capsys
):
    from tests.utils.model_keys import make_key_file

    key_file = make_key_file(tmp_path / "model.key")
    envelope = tmp_path / "tiny.m2fp"
    encrypt = ["model", "encrypt", str(openvino_model_dir), "--key-file", str(key_file)]
    assert run([*encrypt, "--out", str(envelope)]) == 0  # with torch: the packager's side
    assert "with openvino_fp32" in capsys.readouterr().out
    out = tmp_path / "out"
    args = ["parse", str(golden_image_path), "--model", str(envelope), "--key-file"]
    args += [str(key_file), "--engine", "openvino", "--out", str(out), *sizes()]
    assert_cli_parse_like_torch_engine(args, out, torch_reference)


def test_serve_answers_parse_over_http(
    openvino_model_dir, golden_image_path, torch_reference, tmp_path
):
    port = free_port()
    args = ["serve", "--model", str(openvino_model_dir), "--engine", "openvino"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    # uvicorn puts back the SIGTERM handler it found and raises the signal again once it
    # has shut down: this one lets the child reach its torch check and print ABSENT
    code = f"""
        import signal
        from m2fp.cli import run

        def stopped(signum, frame):
            raise SystemExit(0)

        signal.signal({int(signal.SIGTERM)}, stopped)
        try:
            run({args!r})
        except SystemExit:
            pass
        """
    min_size, max_size = golden_sizes()
    env = {"M2FP_MIN_SIZE": str(min_size), "M2FP_MAX_SIZE": str(max_size)}
    log = tmp_path / "server.log"
    with running_process(command_without_torch(code), port, log, env=env) as server:
        image = golden_image_path.read_bytes()
        files = {"image": ("golden.png", image, "image/png")}
        response = httpx.post(server.url + "/api/v1/parse", files=files, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200
    assert_same_persons(body["persons"], torch_reference.to_dict()["persons"])
    assert ABSENT in server.log, server.log


@pytest.mark.parametrize(
    "extra",
    [
        [],  # the default engine is torch
        ["--engine", "openvino", "--precision", "int8"],  # no int8 package: needs converting
        ["--device", "cuda"],  # a GPU is torch's
    ],
    ids=["torch-engine", "no-such-package", "cuda"],
)
def test_what_needs_torch_is_one_line_naming_the_extra(
    openvino_model_dir, golden_image_path, tmp_path, extra
):
    args = ["parse", str(golden_image_path), "--model", str(openvino_model_dir)]
    args += ["--out", str(tmp_path / "out"), *extra]
    proc = run_without_torch(f"from m2fp.cli import run\nprint(run({args!r}))\n")
    assert_no_torch(proc)
    assert proc.stdout.strip() != "0"
    assert proc.stderr.strip().splitlines() == [TORCH_LINE]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_checkpoint_only_model_names_the_extra(tiny_model_dir):
    proc = run_without_torch(
        f"""
        from m2fp import HumanParser, ParserOptions
        from m2fp.errors import MissingExtraError

        try:
            HumanParser.from_pretrained(
                {str(tiny_model_dir)!r}, options=ParserOptions(engine="openvino")
            )
        except MissingExtraError as exc:
            print(exc)
        """
    )
    assert_no_torch(proc)
    assert "pip install 'm2fp[torch]'" in proc.stdout


def test_a_serve_that_needs_torch_refuses_to_start_in_one_line(openvino_model_dir):
    args = ["serve", "--model", str(openvino_model_dir), "--port", "1"]
    proc = run_without_torch(f"from m2fp.cli import run\nprint(run({args!r}))\n")
    assert_no_torch(proc)
    assert proc.stdout.strip() == "2"
    assert proc.stderr.strip().splitlines() == [TORCH_LINE]


def test_package_directory_pin_is_checked_without_torch(openvino_model_dir):
    proc = run_without_torch(
        f"""
        from pathlib import Path
        from m2fp.errors import IntegrityError
        from m2fp.compute.options import Precision
        from m2fp.weights.loader import load_model

        path = Path({str(openvino_model_dir)!r})
        loaded = load_model(path, openvino=Precision.FP32)
        assert loaded.model is None and loaded.openvino is not None
        assert load_model(path, openvino=Precision.FP32, expected_sha256=loaded.sha256)
        try:
            load_model(path, openvino=Precision.FP32, expected_sha256="0" * 64)
        except IntegrityError:
            print("refused")
        """
    )
    assert_no_torch(proc)
    assert proc.stdout.strip() == "refused"


def test_package_only_path_refuses_shapes_the_package_does_not_cover(openvino_model_dir):
    proc = run_without_torch(
        f"""
        from PIL import Image
        from m2fp import HumanParser, ParserOptions
        from m2fp.errors import ImageError

        options = ParserOptions(engine="openvino", min_size=32, max_size=4000)
        parser = HumanParser.from_pretrained({str(openvino_model_dir)!r}, options=options)
        try:
            parser(Image.new("RGB", (2000, 20)))  # 32x3200 input: below 64 on a side
        except ImageError as exc:
            print(exc.kind)
        """
    )
    assert_no_torch(proc)
    assert proc.stdout.strip() == "unsupported_shape"


def test_loading_a_package_reads_no_weights_into_tensors(openvino_model_dir):
    # the directory's weights are hashed for the pin and the package check, not parsed:
    # this test would fail if the network (build.py, modeling/) were imported
    proc = run_without_torch(
        f"""
        import sys
        from m2fp import HumanParser, ParserOptions

        HumanParser.from_pretrained(
            {str(openvino_model_dir)!r}, options=ParserOptions(engine="openvino")
        )
        assert "m2fp.build" not in sys.modules and "m2fp.modeling" not in sys.modules
        assert "m2fp.weights.checkpoint" not in sys.modules
        """
    )
    assert_no_torch(proc)


def info_without_torch(*args: str) -> str:
    """``m2fp model info ARGS`` run with torch refused: its standard output."""
    command = ["model", "info", *args]
    proc = run_without_torch(f"from m2fp.cli import run\nassert run({command!r}) == 0\n")
    assert_no_torch(proc)
    return proc.stdout.removesuffix(ABSENT + "\n") if ABSENT in proc.stdout else proc.stdout


@pytest.fixture(scope="module")
def packaged_envelope(openvino_model_dir, tmp_path_factory):
    """The package directory as an ``.m2fp`` file (fp32 attachment) and its key file."""
    from tests.utils.model_keys import make_key_file

    where = tmp_path_factory.mktemp("slim_info")
    key_file = make_key_file(where / "model.key")
    envelope = where / "tiny.m2fp"
    encrypt = ["model", "encrypt", str(openvino_model_dir), "--key-file", str(key_file)]
    assert run([*encrypt, "--out", str(envelope)]) == 0
    return envelope, key_file


@pytest.mark.parametrize("form", ["directory", "m2fp"])
def test_model_info_without_torch_reports_what_the_torch_install_does(
    form, openvino_model_dir, packaged_envelope, capsys
):
    envelope, key_file = packaged_envelope
    args = [str(openvino_model_dir)] if form == "directory" else [str(envelope)]
    args += [] if form == "directory" else ["--key-file", str(key_file)]
    capsys.readouterr()
    assert run(["model", "info", "--json", *args]) == 0  # with torch, in this process
    with_torch = json.loads(capsys.readouterr().out)
    assert run(["model", "info", *args]) == 0
    summary_with_torch = capsys.readouterr().out
    slim = json.loads(info_without_torch("--json", *args))
    # the compute facts differ by install: the default torch engine cannot run without torch
    with_torch.pop("compute")
    assert slim.pop("compute") == {"engine": "torch", "unavailable": TORCH_LINE[len("m2fp: ") :]}
    assert slim == with_torch
    assert slim["openvino_packages"]["fp32"]["matches_weights"]
    # the same rows but the compute facts (the labels align to the longest: compare words)
    assert rows(info_without_torch(*args)) == rows(summary_with_torch)


def test_model_info_of_the_openvino_engine_without_torch_reports_its_compute(
    openvino_model_dir,
):
    """The compute facts of the engine the slim runtime runs, GPUs absent (only torch could
    use one)."""
    slim = json.loads(info_without_torch("--json", "--engine", "openvino", str(openvino_model_dir)))
    compute = slim["compute"]
    assert (compute["engine"], compute["precision"], compute["device"]) == (
        "openvino",
        "fp32",
        "cpu",
    )
    assert compute["available"]["cuda"] == [] and compute["available"]["mps"] is False
    assert compute["available"]["openvino"]


def rows(summary: str) -> list[list[str]]:
    return [
        line.split()
        for line in summary.splitlines()
        if not line.startswith(("compute", "available"))
    ]


def test_model_info_without_torch_authenticates_the_whole_envelope(packaged_envelope, tmp_path):
    envelope, key_file = packaged_envelope
    tampered = tmp_path / "tampered.m2fp"
    data = bytearray(envelope.read_bytes())
    data[-40] ^= 1  # inside the last chunk: neither the weights' head nor the header
    tampered.write_bytes(data)
    command = ["model", "info", str(tampered), "--key-file", str(key_file)]
    proc = run_without_torch(f"from m2fp.cli import run\nprint(run({command!r}))\n")
    assert_no_torch(proc)
    assert proc.stdout.splitlines()[0] == "1"
    problems = proc.stderr.strip().splitlines()
    assert len(problems) == 1 and "failed authentication" in problems[0], proc.stderr


def test_model_info_of_a_pt_checkpoint_without_torch_names_the_extra(tmp_path):
    import shutil

    from tests.conftest import GOLDEN

    shutil.copy(GOLDEN / "configuration.json", tmp_path / "configuration.json")
    (tmp_path / "pytorch_model.pt").write_bytes(b"a pickle archive torch would read")
    command = ["model", "info", str(tmp_path)]
    proc = run_without_torch(f"from m2fp.cli import run\nprint(run({command!r}))\n")
    assert_no_torch(proc)
    assert proc.stderr.strip().splitlines() == [TORCH_LINE]
