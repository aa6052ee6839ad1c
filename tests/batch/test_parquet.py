"""The ``parquet`` form read back with pyarrow, pandas and Ray Data: one row per photo (from
both actors of a pool of two), its per-class COCO RLE decoding (pycocotools) to the label
map's own classes, the label map that of the same model parsing in process but for tie
pixels; and an encrypted model parsed with its key file, the key
in no pickled actor config and no Ray log."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from pycocotools import mask as coco_mask

from m2fp.batch.actor import ActorConfig
from m2fp.batch.job import BatchJob, run_batch
from m2fp.batch.parquet_rows import SCHEMA
from m2fp.compute.parser_options import ParserOptions
from m2fp.outputs.label_sets import OUTPUT_LABEL_SETS
from m2fp.outputs.requested import OutputRequest
from m2fp.results.output_files import OutputPlan
from tests.batch.conftest import golden_sizes, ray, write_photos
from tests.utils.model_keys import assert_no_key
from tests.utils.same_parse import assert_maps_agree

PHOTOS = 6


def _job(
    src: Path, out: Path, model: Path, form: str, key_file: Path | None = None, actors: int = 1
) -> BatchJob:
    min_size, max_size = golden_sizes()
    config = ActorConfig(
        model=str(model),
        key_file=str(key_file) if key_file else None,
        options=ParserOptions(min_size=min_size, max_size=max_size),
        plan=OutputPlan(request=OutputRequest.build(), alpha=0.5),
        out_dir=str(out),
        form=form,
        max_bytes=10 << 20,
        follow_symlinks=False,
    )
    return BatchJob(source=str(src), actor=config, actors=actors, threads=2 // actors)


def test_parquet_rows_read_back_and_their_rle_decodes_to_the_label_map(
    tmp_path, ray_address, visible_model_dir, visible_parser
):
    photos = write_photos(tmp_path / "in", PHOTOS)
    # two actors of one thread each: the rows of both land in the one folder
    summary = run_batch(
        _job(tmp_path / "in", tmp_path / "pq", visible_model_dir, "parquet", actors=2)
    )
    assert (summary.parsed, summary.failed) == (PHOTOS, 0)
    # six photos still reach both actors (calls of 3, not one call of 8), one thread each
    assert sorted(summary.actor_threads.values()) == [1, 1]
    assert sum(summary.actor_inputs.values()) == PHOTOS

    table = pq.read_table(tmp_path / "pq")
    assert table.schema.equals(SCHEMA, check_metadata=False)
    assert table.num_rows == PHOTOS
    assert ray.data.read_parquet(str(tmp_path / "pq")).count() == PHOTOS
    frame = table.to_pandas()
    by_source = {Path(row.source).name: row for row in frame.itertuples()}
    assert sorted(by_source) == sorted(p.name for p in photos)
    for photo in photos:
        row = by_source[photo.name]
        assert row.input_sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
        assert row.input_bytes == photo.stat().st_size
        assert row.model_sha256 and len(row.model_sha256) == 64
        labels = np.asarray(Image.open(io.BytesIO(row.label_map_png)))
        # the map of the same model parsing in this process (the files form is byte-compared
        # with m2fp parse in test_job): the same but for tie pixels (one thread per actor
        # here, the session's threads there: the kernels sum in another order)
        assert_maps_agree(labels, visible_parser(photo.read_bytes()).label_map)
        assert labels.shape == (row.height, row.width)
        names = list(row.classes_present)
        assert len(names) > 1 and len(row.persons) >= 1
        assert [rle["label"] for rle in row.class_rle] == names
        classes = OUTPUT_LABEL_SETS[row.label_set].names
        for rle in row.class_rle:
            decoded = coco_mask.decode(
                {"size": list(rle["size"]), "counts": rle["counts"].encode()}
            )
            np.testing.assert_array_equal(decoded, labels == classes.index(rle["label"]))


def test_an_encrypted_model_is_opened_by_each_actor_from_its_key_file(
    tmp_path, ray_address, encrypted_model, key_file, model_key
):
    write_photos(tmp_path / "in", 3)
    job = _job(tmp_path / "in", tmp_path / "out", encrypted_model, "files", key_file)
    assert_no_key(pickle.dumps(job), model_key)
    summary = run_batch(job)
    assert (summary.parsed, summary.failed) == (3, 0)
    assert len(list((tmp_path / "out").rglob("*_labels.png"))) == 3
    logs = Path(
        ray.get_runtime_context().get_node_id()
        and ray._private.worker._global_node.get_logs_dir_path()
    )
    for log in logs.rglob("*"):
        if log.is_file():
            assert_no_key(log.read_bytes(), model_key)
