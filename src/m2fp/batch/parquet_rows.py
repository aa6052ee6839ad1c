"""The ``parquet`` form of a batch job: one row per parsed image, in ``part-*.parquet`` files
under ``--out`` (one per actor batch, written under a hidden name and renamed, so a file that
is there is complete). pyarrow, pandas and ``ray.data.read_parquet`` read the folder back.

Columns (``SCHEMA``):
    source: the input as given (local path or URI); name, stem: as in ``m2fp parse``'s JSON.
    width, height: the image's upright size; input_bytes, input_sha256: the file read.
    label_set: the label map's label set; classes_present: classes with pixels.
    persons: list of {score, box [x0, y0, x1, y1]} (multi-person models).
    class_rle: list of {label, size [h, w], counts}: each present class's mask, COCO RLE
        (``pycocotools.mask.decode`` takes it as ``{"size", "counts"}``).
    label_map_png: ``<stem>_labels.png``'s bytes (palette PNG, pixel = class index).
    options: the parser and output options, JSON; model_sha256: the weights' digest.
Failures are not rows: they are the records of ``_failures.jsonl``, in both forms.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from m2fp.results.output_files import OutputPlan
from m2fp.results.parsing_result import ParsingResult

PART_GLOB = "part-*.parquet"

SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("name", pa.string()),
        ("stem", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("input_bytes", pa.int64()),
        ("input_sha256", pa.string()),
        ("label_set", pa.string()),
        ("classes_present", pa.list_(pa.string())),
        (
            "persons",
            pa.list_(pa.struct([("score", pa.float32()), ("box", pa.list_(pa.int32(), 4))])),
        ),
        (
            "class_rle",
            pa.list_(
                pa.struct(
                    [
                        ("label", pa.string()),
                        ("size", pa.list_(pa.int32(), 2)),
                        ("counts", pa.string()),
                    ]
                )
            ),
        ),
        ("label_map_png", pa.binary()),
        ("options", pa.string()),
        ("model_sha256", pa.string()),
    ]
)


def result_row(
    result: ParsingResult,
    *,
    source: dict[str, str],
    data: bytes,
    digest: str,
    plan: OutputPlan,
    options: dict[str, Any],
    model_sha256: str | None,
) -> dict[str, Any]:
    """The row of one parsed image (``source``: a ``Source`` as a dict)."""
    width, height = result.size
    classes = result.classes_present()
    rles = []
    for label in classes:
        rle = result.to_coco_rle(label)
        rles.append({"label": label, "size": list(rle["size"]), "counts": rle["counts"]})
    label_set = plan.request.label_set or result.label_set.name
    return {
        "source": source["path"],
        "name": source["name"],
        "stem": source["stem"],
        "width": width,
        "height": height,
        "input_bytes": len(data),
        "input_sha256": digest,
        "label_set": label_set,
        "classes_present": classes,
        "persons": [{"score": p.score, "box": list(p.bbox)} for p in result.persons],
        "class_rle": rles,
        "label_map_png": result.label_map_png(plan.request.label_set),
        "options": json.dumps(options, sort_keys=True),
        "model_sha256": model_sha256,
    }


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """``rows`` as a table of ``SCHEMA``."""
    return pa.Table.from_pylist(rows, schema=SCHEMA)
