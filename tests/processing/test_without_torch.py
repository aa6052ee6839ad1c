"""Pre- and post-processing run where PyTorch is not installed (the slim runtime): the one
implementation both engines use is numpy all the way."""

from __future__ import annotations

from tests.utils.without_torch import run_without_torch


def test_multi_and_single_person_post_processing_import_and_run_without_torch():
    proc = run_without_torch(
        """
        import numpy as np
        from PIL import Image

        from m2fp.processing.flip import merge_passes, mirror_image
        from m2fp.processing.postprocess import measure_pass
        from m2fp.processing.preprocess import resize
        from m2fp.processing.semantic import SemanticMap, label_semantics, semantic_probabilities

        rng = np.random.default_rng(0)
        picture = resize(Image.new("RGB", (90, 60)), 64, 96)
        class_logits = rng.standard_normal((12, 22), dtype=np.float32)
        class_logits[np.arange(12), rng.integers(0, 21, 12)] += 8
        mask_logits = rng.standard_normal((12, 16, 24), dtype=np.float32) * 4
        passes = [
            measure_pass(
                class_logits, mask_logits, padded_size=(64, 96), input_size=(64, 96),
                output_size=(60, 90), num_parsing=20, ins_score_thr=0.3,
            )
            for _ in range(2)
        ]
        parsed = passes[0].parsed()
        assert parsed.parts or parsed.humans
        assert parsed.label_map.shape == (60, 90) and parsed.label_map.any()
        merge_passes(*passes, mirror=tuple(range(21)), num_parsing=20, output_size=(60, 90))
        probabilities = semantic_probabilities(class_logits[:, :21], mask_logits, (64, 96))
        semantic = SemanticMap(
            probabilities, input_size=(64, 96), crop_box=(0, 0, 96, 64), output_size=(60, 90)
        )
        labels = label_semantics(semantic)
        assert labels.label_map.shape == (60, 90) and labels.scores
        mirror_image(picture)
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
