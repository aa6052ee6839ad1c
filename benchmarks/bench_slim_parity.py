"""Parity of the slim runtime (OpenVINO fp32 package, torch refused) with the torch engine on
the R101 benchmark photo: label map, instance masks (IoU), scores.

The R101 network is ``bench_pipeline.realistic_model`` (seeded, calibrated to give confident
outputs on the 960x640 benchmark photo), written as a model directory and exported with
``m2fp model export --format openvino`` (minutes: pass ``--dir`` to reuse one). The torch
engine parses in this process; the slim path in a child whose import hook refuses torch
(``tests/utils/without_torch.py``'s hook), and the child checks torch never loaded.

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
        reference = HumanParser.from_pretrained(model_dir, options=ParserOptions())(image)
        expected = reference.to_modelscope()
        slim_out = Path(scratch) / "slim.npz"
        subprocess.run(
            [*command_without_torch(SLIM), str(model_dir), str(image), str(slim_out)], check=True
        )
        slim = np.load(slim_out)
    same_map = np.array_equal(slim["label_map"], reference.label_map)
    order = np.argsort(-np.array(expected["scores"]))
    ref_masks = np.array(expected["masks"], dtype=bool)[order]
    ref_scores = np.array(expected["scores"])[order]
    ref_labels = np.array(expected["labels"])[order]
    mine = np.argsort(-slim["scores"])
    print(f"load {os.getloadavg()[0]:.1f}; R101, 960x640 benchmark photo, fp32 package")
    print(f"label map equal: {same_map} ({(slim['label_map'] != reference.label_map).sum()} px)")
    if len(mine) != len(order):
        print(f"instances: slim {len(mine)} vs torch {len(order)}")
        return
    ious = [iou(slim["masks"][i], ref_masks[k]) for k, i in enumerate(mine)]
    labels_equal = bool((slim["labels"][mine] == ref_labels).all())
    score_diff = float(np.abs(slim["scores"][mine] - ref_scores).max()) if len(mine) else 0.0
    print(
        f"instances: {len(mine)}, labels equal: {labels_equal}, min mask IoU {min(ious):.6f}, "
        f"max score difference {score_diff:.2e}"
    )


if __name__ == "__main__":
    main()
