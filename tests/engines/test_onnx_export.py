"""ONNX export (``m2fp model export --format onnx``): onnxruntime computes what PyTorch
computes, at any input size; the file is private and the command says it holds plaintext."""

from __future__ import annotations

import contextlib
import io
import logging
import stat
import warnings

import numpy as np
import pytest
import torch

from tests.engines.conftest import relative_error

ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime")
pytest.importorskip("onnxscript", reason="ONNX export tests need m2fp[onnx]")

from m2fp.engines.onnx_export import export_onnx, write_onnx  # noqa: E402


@pytest.fixture(scope="module")
def cli_export(tiny_model_dir, tmp_path_factory) -> tuple:
    """The golden tiny model exported by the command (the one ONNX export of the session):
    (the file, what the command wrote on stderr)."""
    from m2fp.cli import run

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = run(["model", "export", str(tiny_model_dir), "--format", "onnx", "--out", str(out)])
    assert code == 0
    return out, stderr.getvalue()


@pytest.fixture(scope="module")
def exported(cli_export) -> bytes:
    return cli_export[0].read_bytes()


def test_the_command_warns_and_writes_a_private_file(cli_export):
    path, stderr = cli_export
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "holds the model's weights in plaintext" in stderr
    assert not list(path.parent.glob(".*.partial"))


@pytest.fixture(scope="module")
def session(exported):
    return ort.InferenceSession(exported, providers=["CPUExecutionProvider"])


def test_graph_interface(exported, session):
    import onnx

    model = onnx.load_from_string(exported)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert any(node.op_type == "GridSample" for node in model.graph.node)
    (images,) = session.get_inputs()
    assert images.name == "images" and images.shape[:2] == [1, 3]
    assert all(isinstance(side, str) for side in images.shape[2:])  # dynamic H, W
    assert [o.name for o in session.get_outputs()] == ["class_logits", "mask_logits"]


def test_golden_parity(session, golden_batch, golden_expected):
    logits, masks = session.run(None, {"images": golden_batch.numpy()})
    np.testing.assert_allclose(logits[0], golden_expected["pred_logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(masks[0], golden_expected["pred_masks"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(64, 64), (96, 320)])
def test_other_sizes_match_pytorch(session, golden_network, size):
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        expected = golden_network(images)
    outputs = session.run(None, {"images": images.numpy()})
    for ours, theirs in zip(outputs, expected, strict=True):
        assert ours.shape == tuple(theirs.shape)
        assert relative_error(torch.from_numpy(ours), theirs) < 1e-4


def test_refuses_old_opsets(golden_network):
    with pytest.raises(ValueError, match="opset 17"):
        export_onnx(golden_network, opset=16)


def test_write_onnx_is_private(golden_network, tmp_path, monkeypatch, exported):
    from m2fp.engines import onnx_export

    monkeypatch.setattr(onnx_export, "export_onnx", lambda model, opset: exported)
    path = tmp_path / "model.onnx"
    write_onnx(golden_network, path)
    assert path.read_bytes() == exported
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_exporter_chatter_is_silenced_for_the_export_only(caplog):
    from m2fp.engines.onnx_export import _exporter_quiet

    chatty = logging.getLogger("onnxscript.optimizer._constant_folding")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _exporter_quiet():
            chatty.warning("Skipping constant folding for op Split with multiple outputs.")
            logging.getLogger("torch.onnx._internal.exporter").warning("torchvision missing")
            warnings.warn("LeafSpec is deprecated", FutureWarning, stacklevel=1)
            logging.getLogger("torch.onnx").error("a real export error")
        chatty.warning("after the export")
    assert [r.getMessage() for r in caplog.records] == ["a real export error", "after the export"]
    assert caught == []
