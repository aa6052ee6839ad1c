"""Parity of the slim runtime (OpenVINO fp32 package, torch refused) with the torch engine on
the R101 benchmark photo: label map, instance masks (IoU), scores.

The R101 network is ``bench_pipeline.realistic_model`` (seeded, calibrated to give confident
outputs on the 960x640 benchmark photo), written as a model directory and exported with
``m2fp model export --format openvino`` (minutes: pass ``--dir`` to reuse one). The torch
engine parses in this process; the slim path in a child whose import hook refuses torch
(``tests/utils/without_torch.py``'s hook), and the child checks torch never loaded.

Beside it, the floor any two float implementations of this network meet: the torch engine
against itself with its conv weights in the other memory layout (NCHW instead of the
channels-last ``prepare_model`` stores; oneDNN then picks other kernels and another summation
order). On a network whose masks sit near the 0.5 threshold, the float rounding alone moves
pixels and near-threshold instances; the slim path is judged against that.

Usage: .venv/bin/python benchmarks/bench_slim_parity.py [--dir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_pipeline import SEED, realistic_model, synthetic_photo
from tests.utils.without_torch import command_without_torch

from m2fp import HumanParser, ParserOptions
from m2fp.build import preset

INS_SCORE_THR = 0.3  # bench_pipeline's: the calibrated random network's scores are low
SLIM = """
import json, sys
import numpy as np
from m2fp import HumanParser, ParserOptions
parser = HumanParser.from_pretrained(sys.argv[1], options=ParserOptions(engine="openvino"))
result = parser(sys.argv[2])
out = result.to_modelscope()
np.savez(sys.argv[3], label_map=result.label_map, masks=np.array(out["masks"], dtype=bool),
         scores=np.array(out["scores"]), labels=np.array(out["labels"]))
"""


def write_model_dir(directory: Path, photo: bytes) -> None:
    from safetensors.torch import save_file

    config = {**preset("m2fp_r101_cihp"), "parsing_ins_score_thr": INS_SCORE_THR}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "configuration.json").write_text(json.dumps({"model": config}))
    state = {k: v.contiguous() for k, v in realistic_model(photo).state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    subprocess.run(
        [sys.executable, "-m", "m2fp", "model", "export", str(directory), "--format", "openvino"],
        check=True,
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


class NCHWEngine:
    """The torch engine's network with its weights and input in NCHW (oneDNN picks kernels by
    the layout, so both must change; the channels-last engine's other figures unchanged)."""

    def __init__(self, engine) -> None:
        self.model = engine.model.to(memory_format=torch.contiguous_format)
        self.out_of_memory = engine.out_of_memory
        self.max_batch = engine.max_batch

    def __call__(self, images):
        with torch.inference_mode():
            class_logits, mask_logits = self.model(torch.as_tensor(images).contiguous())
        return class_logits.float(), mask_logits.float()


def ranked(out: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(masks, scores, labels) of a ``to_modelscope`` result, best score first."""
    order = np.argsort(-np.asarray(out["scores"]), kind="stable")
    masks = np.asarray(out["masks"], dtype=bool)
    return masks[order], np.asarray(out["scores"])[order], np.asarray(out["labels"])[order]


def describe(label_map: np.ndarray, out: dict, ref_map: np.ndarray, ref_out: dict) -> str:
    """Label-map pixels that differ, instances, labels, min mask IoU and max score difference
    of one parse against a reference parse."""
    masks, scores, labels = ranked(out)
    ref_masks, ref_scores, ref_labels = ranked(ref_out)
    line = f"label map: {int((label_map != ref_map).sum())} of {ref_map.size} px differ"
    if len(scores) != len(ref_scores):
        return f"{line}; instances {len(scores)} vs {len(ref_scores)}"
    ious = [iou(a, b) for a, b in zip(masks, ref_masks, strict=True)]
    return (
        f"{line}; instances {len(scores)}, labels equal {bool((labels == ref_labels).all())}, "
        f"min mask IoU {min(ious, default=1.0):.6f}, "
        f"max score difference {float(np.abs(scores - ref_scores).max(initial=0.0)):.2e}"
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--dir", type=Path, help="an R101 model directory with its package")
    options = args.parse_args()
    photo = synthetic_photo(960, 640, SEED)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = options.dir or Path(scratch) / "r101"
        if not (model_dir / "openvino_fp32.ovpkg").is_file():
            write_model_dir(model_dir, photo)
        image = Path(scratch) / "photo.png"
        Image.open(io.BytesIO(photo)).save(image)
        torch_parser = HumanParser.from_pretrained(model_dir, options=ParserOptions())
        reference = torch_parser(image)
        # the floor: the same network, weights and input in NCHW
        torch_parser.engine = NCHWEngine(torch_parser.engine)
        floor = torch_parser(image)
        slim_out = Path(scratch) / "slim.npz"
        subprocess.run(
            [*command_without_torch(SLIM), str(model_dir), str(image), str(slim_out)], check=True
        )
        slim = np.load(slim_out)
    expected = reference.to_modelscope()
    print(f"load {os.getloadavg()[0]:.1f}; R101, 960x640 benchmark photo, fp32 package")
    parsed = {"masks": slim["masks"], "scores": slim["scores"], "labels": slim["labels"]}
    slim_line = describe(slim["label_map"], parsed, reference.label_map, expected)
    print(f"slim path vs torch engine: {slim_line}")
    print(
        "torch engine NCHW vs channels-last (float-rounding floor): "
        f"{describe(floor.label_map, floor.to_modelscope(), reference.label_map, expected)}"
    )


if __name__ == "__main__":
    main()
