"""Which NNCF settings bring the int8 backbone closest to fp32: res5 error per variant, R101.

Where the choices in ``m2fp.engines.int8`` come from. Each variant quantises the same fp32
OpenVINO backbone graph with ``--calibration`` drawn scenes (``m2fp.engines.calibration``) and
is judged by the relative error ||int8 - eager|| / ||eager|| of res2..res5 on two benchmark
photos (``bench_pipeline.synthetic_photo``, not calibration images). ``--model seeded`` is the
plain seeded network (``torch.manual_seed(0)``, default init), ``trained-like`` the benchmark's
``realistic_model``.

Usage: .venv/bin/python benchmarks/bench_int8_variants.py [--model seeded] [--variants ...]
Accuracy only: no timing, so a busy machine changes nothing but the run time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_pipeline import SEED, network_input, realistic_model, synthetic_photo

from m2fp.build import build_model, preset
from m2fp.engines.calibration import calibration_inputs
from m2fp.engines.int8 import import_nncf
from m2fp.engines.openvino_convert import convert_backbone
from m2fp.engines.openvino_package import import_openvino

STEM_CONVOLUTIONS = 3  # DeepLabStem: three 3x3 convs, the first ones in the backbone graph

# through m2fp's imports: OpenVINO's usage telemetry refused before OpenVINO loads
ov = import_openvino()
nncf = import_nncf()


def variant_settings(name: str, stem: list[str]) -> dict:
    """nncf.quantize keyword arguments of a named variant ("+"-joined parts)."""
    kwargs: dict = {}
    advanced: dict = {}
    for part in name.split("+"):
        if part == "default":
            continue
        if part == "mixed":
            kwargs["preset"] = nncf.QuantizationPreset.MIXED
        elif part == "quantile":
            advanced["activations_range_estimator_params"] = (
                nncf.quantization.range_estimator.RangeEstimatorParametersSet.MEAN_QUANTILE
            )
        elif part == "overflow":
            advanced["overflow_fix"] = nncf.OverflowFix.ENABLE
        elif part == "stem":
            kwargs["ignored_scope"] = nncf.IgnoredScope(names=stem)
        elif part == "conv1":  # only the stem's first convolution, the one on the raw image
            kwargs["ignored_scope"] = nncf.IgnoredScope(names=stem[:1])
        elif part.startswith("sq"):
            kwargs["model_type"] = nncf.ModelType.TRANSFORMER
            alpha = float(part[2:])
            advanced["smooth_quant_alphas"] = (
                nncf.quantization.advanced_parameters.AdvancedSmoothQuantParameters(
                    convolution=alpha, matmul=-1
                )
            )
        else:
            raise SystemExit(f"unknown variant part {part!r}")
    kwargs["advanced_parameters"] = nncf.AdvancedQuantizationParameters(**advanced)
    return kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["seeded", "trained-like"], default="seeded")
    parser.add_argument("--calibration", type=int, default=8)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[
            "default",
            "stem",
            "mixed",
            "quantile",
            "overflow",
            "sq0.5",
            "sq0.5+stem",
            "sq0.3+stem",
            "sq0.8+stem",
            "sq0.95+stem",
            "sq0.95+conv1",
        ],
    )
    args = parser.parse_args()
    if args.model == "seeded":
        torch.manual_seed(SEED)
        model = build_model(preset("m2fp_r101_cihp"))
    else:
        model = realistic_model(synthetic_photo(960, 640, SEED))
    photos = [network_input(model, synthetic_photo(960, 640, SEED + k)) for k in (0, 1)]
    with torch.inference_mode():
        references = [list(model.backbone(x).values()) for x in photos]
    backbone = convert_backbone(model)
    convolutions = [
        op.get_friendly_name()
        for op in backbone.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    ]
    calibration = calibration_inputs(
        args.calibration,
        pixel_mean=model.pixel_mean,
        pixel_std=model.pixel_std,
        min_size=640,
        max_size=1333,
    )
    dataset = nncf.Dataset(calibration, lambda images: images.numpy())
    core = ov.Core()
    print(f"{args.model} R101, {args.calibration} calibration scenes")
    print("| variant | quantise | res2 | res3 | res4 | res5 (mean of 2 photos) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.variants:
        start = time.perf_counter()
        quantized = nncf.quantize(
            backbone,
            dataset,
            subset_size=args.calibration,
            **variant_settings(name, convolutions[:STEM_CONVOLUTIONS]),
        )
        seconds = time.perf_counter() - start
        compiled = core.compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        errors = np.zeros(4)
        for x, reference in zip(photos, references, strict=True):
            outputs = compiled(x.numpy())
            for i in range(4):
                ours = torch.from_numpy(outputs[compiled.outputs[i]])
                errors[i] += float((ours - reference[i]).norm() / reference[i].norm()) / len(photos)
        print(f"| {name} | {seconds:.0f} s | " + " | ".join(f"{e:.2%}" for e in errors) + " |")


if __name__ == "__main__":
    main()
