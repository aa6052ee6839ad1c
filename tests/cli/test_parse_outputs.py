"""``m2fp parse`` end to end: downstream outputs (masks, agnostic, label sets, RLE), folders,
resume, watch (a real process, files dropped in, then SIGINT) and raw frames on stdin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pycocotools.mask as coco
import pytest
from PIL import Image

from m2fp.cli import run
from m2fp.outputs.label_sets import ATR_LABELS
from tests.conftest import LIP_GOLDEN, golden_sizes
from tests.utils.child_output import wait_for
from tests.utils.same_parse import assert_maps_agree

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SIZES = [f"--min-size={golden_sizes()[0]}", f"--max-size={golden_sizes()[1]}"]


def parse(capsys, *args: str) -> tuple[int, list[dict], list[str]]:
    """Run ``m2fp parse`` in process: exit code, its JSON lines, its ``m2fp:`` lines."""
    code = run(["parse", *args, *SIZES])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    problems = [line for line in captured.err.splitlines() if line.startswith("m2fp:")]
    return code, lines, problems


def png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_masks_agnostic_and_label_set_as_pngs(
    capsys, tmp_path, visible_model_dir, visible_parser, golden_image_path
):
    out = tmp_path / "out"
    code, lines, problems = parse(
        capsys,
        str(golden_image_path),
        f"--model={visible_model_dir}",
        f"--out={out}",
        "--masks=hair,upper_clothes+Face",
        "--agnostic=upper_body,overall",
        "--label-set=atr",
        "--person=main",
        "--dilate=2",
    )
    assert (code, problems) == (0, [])
    expected = visible_parser(golden_image_path)
    assert sorted(p.name for p in out.iterdir()) == [
        "image.json",
        "image_agnostic_overall_main_dilate2.png",
        "image_agnostic_upper_body_main_dilate2.png",
        "image_labels_atr.png",
        "image_mask_hair_main_dilate2.png",
        "image_mask_upper_clothes+Face_main_dilate2.png",
        "image_vis.png",
    ]
    hair = png(out / "image_mask_hair_main_dilate2.png")
    assert hair.dtype == bool and hair.any()
    assert (hair == expected.mask("hair", person="main", dilate=2)).all()
    upper = png(out / "image_agnostic_upper_body_main_dilate2.png")
    assert (upper == expected.agnostic_mask("upper_body", person="main", dilate=2)).all()
    assert (png(out / "image_labels_atr.png") == expected.label_map_as("atr")).all()
    summary = json.loads((out / "image.json").read_text())
    assert summary["label_set"] == "atr" and summary["classes"] == list(ATR_LABELS.names)
    areas = [person.area for person in expected.persons]
    assert summary["mask_scope"]["person"] == areas.index(max(areas))
    assert summary["masks"] == {
        "hair": "image_mask_hair_main_dilate2.png",
        "upper_clothes+Face": "image_mask_upper_clothes+Face_main_dilate2.png",
    }
    assert lines == [
        {
            "image": "image.png",
            "status": "ok",
            "outputs": [
                "image_vis.png",
                "image_labels_atr.png",
                "image_mask_hair_main_dilate2.png",
                "image_mask_upper_clothes+Face_main_dilate2.png",
                "image_agnostic_upper_body_main_dilate2.png",
                "image_agnostic_overall_main_dilate2.png",
                "image.json",
            ],
            "persons": len(expected.persons),
            "seconds": lines[0]["seconds"],
        }
    ]


def test_rle_format_puts_the_masks_in_the_json(
    capsys, tmp_path, visible_model_dir, visible_parser, golden_image_path
):
    out = tmp_path / "out"
    code, _, _ = parse(
        capsys,
        str(golden_image_path),
        f"--model={visible_model_dir}",
        f"--out={out}",
        "--masks=hair",
        "--agnostic=dresses",
        "--format=rle",
        "--person=1",
        "--crop",
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "image.json",
        "image_labels.png",
        "image_vis.png",
    ]
    summary = json.loads((out / "image.json").read_text())
    expected = visible_parser(golden_image_path)
    assert summary["mask_scope"] == {"person": 1, "box": list(expected.persons[1].bbox)}
    for rle, mask in (
        (summary["masks"]["hair"], expected.mask("hair", person=1, crop=True)),
        (
            summary["agnostic_masks"]["dresses"],
            expected.agnostic_mask("dresses", person=1, crop=True),
        ),
    ):
        decoded = coco.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert decoded.shape == mask.shape and (decoded.astype(bool) == mask).all()


def make_tree(root: Path, image: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    shutil.copy(image, root / "a.png")
    shutil.copy(image, root / "sub" / "b.PNG")
    shutil.copy(image, root / "sub" / "deeper" / "c.png")
    shutil.copy(image, root / ".hidden" / "d.png")
    shutil.copy(image, root / ".e.png")
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")


def test_a_directory_is_walked_and_bad_files_are_one_line_each(
    capsys, tmp_path, tiny_model_dir, golden_image_path
):
    photos = tmp_path / "photos"
    photos.mkdir()
    make_tree(photos, golden_image_path)
    out = photos / "results"  # inside the tree: never walked into
    code, lines, _ = parse(capsys, str(photos), f"--model={tiny_model_dir}", f"--out={out}")
    assert code == 0 and [line["image"] for line in lines] == ["a.png"]
    code, lines, problems = parse(
        capsys, str(photos), f"--model={tiny_model_dir}", f"--out={out}", "--recursive"
    )
    assert code == 1
    assert [(line["image"], line["status"]) for line in lines] == [
        ("a.png", "ok"),
        ("sub/b.PNG", "ok"),
        ("sub/broken.jpg", "failed"),
        ("sub/deeper/c.png", "ok"),
    ]
    assert problems == ["m2fp: sub/broken.jpg: the image could not be decoded"]
    assert (out / "sub" / "deeper" / "c_labels.png").is_file()
    assert (out / "sub" / "b.json").is_file() and not (out / "sub" / "broken.json").exists()
    assert not list(out.rglob("*.part"))


def test_inputs_that_would_overwrite_each_other_are_a_usage_error(
    capsys, tmp_path, tiny_model_dir, golden_image_path
):
    (tmp_path / "x").mkdir()
    shutil.copy(golden_image_path, tmp_path / "x" / "image.png")
    code, _, problems = parse(
        capsys,
        str(golden_image_path),
        str(tmp_path / "x"),
        f"--model={tiny_model_dir}",
        f"--out={tmp_path / 'out'}",
    )
    assert code == 2 and len(problems) == 1 and "would write the same outputs" in problems[0]


@pytest.mark.parametrize("mode", ["folder", "watch"])
def test_out_may_not_be_the_folder_images_come_from(capsys, tmp_path, mode):
    source = ["--watch", str(tmp_path)] if mode == "watch" else [str(tmp_path)]
    code = run(["parse", *source, f"--out={tmp_path}", "--model", str(tmp_path / "none")])
    assert code == 2
    assert "--out must not be a folder images are read from" in capsys.readouterr().err


def test_skip_existing_resumes_an_interrupted_run(
    capsys, tmp_path, tiny_model_dir, golden_image_path
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("one", "two", "three"):
        shutil.copy(golden_image_path, photos / f"{name}.png")
    out = tmp_path / "out"
    arguments = [str(photos), f"--model={tiny_model_dir}", f"--out={out}", "--masks=hair"]
    assert parse(capsys, *arguments)[0] == 0
    # as if the run had stopped before "three" and while "two" was being written
    for path in out.glob("three*"):
        path.unlink()
    (out / "two_mask_hair.png").unlink()
    kept = (out / "one.json").stat().st_mtime_ns
    code, lines, _ = parse(capsys, *arguments, "--skip-existing")
    assert code == 0
    assert [(line["image"], line["status"]) for line in lines] == [
        ("one.png", "skipped"),
        ("three.png", "ok"),
        ("two.png", "ok"),
    ]
    assert (out / "one.json").stat().st_mtime_ns == kept
    assert (out / "two_mask_hair.png").is_file() and (out / "three.json").is_file()
    # asking for another mask makes every image incomplete again
    code, lines, _ = parse(capsys, *arguments[:-1], "--masks=face", "--skip-existing")
    assert [line["status"] for line in lines] == ["ok", "ok", "ok"]


def test_a_person_the_image_lacks_fails_that_image_only(
    capsys, tmp_path, tiny_model_dir, golden_image_path
):
    code, lines, problems = parse(
        capsys,
        str(golden_image_path),
        f"--model={tiny_model_dir}",
        f"--out={tmp_path}",
        "--masks=hair",
        "--person=200",
    )
    assert code == 1 and lines[0]["status"] == "failed"
    assert problems == ["m2fp: image.png: there is no person 200: 16 found (the first is 0)"]
    assert not list(tmp_path.iterdir())


def test_a_mask_the_models_label_set_lacks_is_a_usage_error(
    capsys, tmp_path, tiny_model_dir, golden_image_path
):
    code, _, problems = parse(
        capsys,
        str(golden_image_path),
        f"--model={tiny_model_dir}",
        f"--out={tmp_path}",
        "--masks=Jumpsuits",
    )
    assert code == 2
    assert problems == ["m2fp: 'Jumpsuits' is neither a mask group nor a cihp class"]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--watch", "d", "x.png"], "one"),
        ([], "one"),
        (["x.png", "--crop", "--person=0"], None),
        (["x.png", "--crop"], "--crop needs --person"),
        (["x.png", "--format=rle", "--feather=2"], "binary masks only"),
        (["x.png", "--masks=tail"], "unknown mask 'tail'"),
        (["x.png", "--agnostic=shirt"], "unknown agnostic mask"),
        (["x.png", "--keep=toes"], "unknown part to keep"),
        (["x.png", "--person=first"], "a person is 'main' or"),
        (["x.png", "--label-set=pascal"], "invalid choice"),
        (["x.png", "--dilate=999"], "between 0 and 128"),
        (["--frames=0x10"], "must be positive"),
        (["--frames=10by10"], "WIDTHxHEIGHT"),
    ],
)
def test_usage_errors(capsys, tmp_path, arguments, words, monkeypatch):
    if words is None:  # accepted by argparse: fails later, for want of a model
        monkeypatch.setenv("M2FP_MODEL", str(tmp_path / "none"))
        assert run(["parse", *arguments, f"--out={tmp_path}"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.endswith(
            f"M2FP_MODEL's path {tmp_path / 'none'} does not exist"
        ), err
        return
    with pytest.raises(SystemExit) as exited:
        run(["parse", *arguments, f"--out={tmp_path}"])
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def m2fp_process(*args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "m2fp", "parse", *args, *SIZES],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_watch_parses_new_files_until_sigint(tmp_path, tiny_model_dir, golden_image_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(golden_image_path, inbox / "early.png")  # there before the watch starts
    process = m2fp_process(
        f"--watch={inbox}", f"--out={out}", f"--model={tiny_model_dir}", "--masks=hair"
    )
    reported: list[str] = []  # stdout's JSON lines as they come
    reader = threading.Thread(target=lambda: reported.extend(map(bytes.decode, process.stdout)))
    reader.start()
    try:
        wait_for(out / "early.json", process)
        # dropped the safe way: written elsewhere, renamed in
        staging = tmp_path / "staging.png"
        shutil.copy(golden_image_path, staging)
        staging.rename(inbox / "renamed.png")
        # written slowly in place: must not be read before it is complete
        data = golden_image_path.read_bytes()
        with (inbox / "slow.png").open("wb") as slow:
            for start in range(0, len(data), len(data) // 4 + 1):
                slow.write(data[start : start + len(data) // 4 + 1])
                slow.flush()
                time.sleep(0.2)
        (inbox / "sub").mkdir()
        shutil.copy(golden_image_path, inbox / "sub" / "not-recursive.png")
        (inbox / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n but broken")
        wait_for(out / "slow.json", process)
        wait_for(out / "renamed.json", process)
        deadline = time.monotonic() + 120  # the bad file is reported too
        while not any('"bad.png"' in line for line in reported):
            assert process.poll() is None and time.monotonic() < deadline, reported
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=30)
    stdout, stderr = "".join(reported), process.stderr.read().decode()
    process.stderr.close()
    process.stdout.close()
    assert process.returncode == 1  # the bad file failed; otherwise a clean stop
    assert "Traceback" not in stderr
    assert f"m2fp: stopped watching {inbox}" in stderr
    assert "m2fp: bad.png: the image could not be decoded" in stderr
    statuses = {
        json.loads(line)["image"]: json.loads(line)["status"] for line in stdout.split("\n") if line
    }
    assert statuses == {
        "early.png": "ok",
        "renamed.png": "ok",
        "slow.png": "ok",
        "bad.png": "failed",
    }
    assert not list(out.rglob("*.part")) and not (out / "sub").exists()
    with Image.open(out / "slow_labels.png") as labels:
        assert labels.size == (150, 100)


def test_watch_stops_cleanly_when_idle(tmp_path, tiny_model_dir, golden_image_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(golden_image_path, inbox / "only.png")
    process = m2fp_process(
        f"--watch={inbox}", f"--out={tmp_path / 'out'}", f"--model={tiny_model_dir}"
    )
    try:
        wait_for(tmp_path / "out" / "only.json", process)
        process.send_signal(signal.SIGINT)
        stderr = process.communicate(timeout=30)[1].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Traceback" not in stderr


def synthetic_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_frames_from_stdin(tmp_path, visible_model_dir, visible_parser):
    frames = synthetic_frames(3, 48, 32)
    out = tmp_path / "out"
    process = m2fp_process(
        "--frames=48x32",
        f"--out={out}",
        f"--model={visible_model_dir}",
        "--masks=hair",
        stdin=subprocess.PIPE,
    )
    stdout, stderr = process.communicate(b"".join(f.tobytes() for f in frames), timeout=300)
    assert process.returncode == 0, stderr.decode()
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [line["image"] for line in lines] == ["frame 0", "frame 1", "frame 2"]
    for index, frame in enumerate(frames):
        expected = visible_parser(frame)
        stem = f"frame_{index:06d}"
        # another process: the same code, but it may run another thread count (float order)
        assert_maps_agree(png(out / f"{stem}_labels.png"), expected.label_map)
        assert_maps_agree(png(out / f"{stem}_mask_hair.png"), expected.mask("hair"))
        assert json.loads((out / f"{stem}.json").read_text())["image"] == f"frame {index}"


def test_an_incomplete_last_frame_is_reported(tmp_path, tiny_model_dir):
    frame = synthetic_frames(1, 16, 8)[0].tobytes()
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "m2fp",
            "parse",
            "--frames=16x8",
            f"--out={tmp_path}",
            f"--model={tiny_model_dir}",
            *SIZES,
        ],
        input=frame + frame[:100],
        capture_output=True,
        timeout=300,
    )
    assert process.returncode == 1
    problems = [line for line in process.stderr.decode().splitlines() if line.startswith("m2fp:")]
    assert problems == ["m2fp: stdin ended inside frame 1: 100 of 384 bytes (16x8 RGB24)"]
    assert (tmp_path / "frame_000000.json").is_file()
    assert not (tmp_path / "frame_000001.json").exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_a_video_through_ffmpeg_as_the_readme_shows(tmp_path, visible_model_dir):
    """ffmpeg decodes a generated clip to raw frames, m2fp parses them, ffmpeg reads the
    masks back as a video."""
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=5",
            "-t",
            "0.6",
            str(clip),
        ],
        check=True,
        timeout=120,
    )
    decoder = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(clip),
            "-vf",
            "scale=96:-2",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        stdout=subprocess.PIPE,
    )
    out = tmp_path / "frames"
    process = m2fp_process(
        "--frames=96x72",
        f"--out={out}",
        f"--model={visible_model_dir}",
        "--masks=foreground",
        stdin=decoder.stdout,
    )
    decoder.stdout.close()
    stdout, stderr = process.communicate(timeout=300)
    assert decoder.wait(timeout=60) == 0
    assert process.returncode == 0, stderr.decode()
    assert len(stdout.decode().splitlines()) == 3
    matte = tmp_path / "matte.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-framerate",
            "5",
            "-i",
            str(out / "frame_%06d_mask_foreground.png"),
            "-pix_fmt",
            "yuv420p",
            str(matte),
        ],
        check=True,
        timeout=120,
    )
    assert matte.stat().st_size > 0


def test_the_single_person_model_masks_its_one_person(capsys, tmp_path, lip_model_dir, lip_parser):
    image = str(LIP_GOLDEN / "image.png")
    code, _, problems = parse(
        capsys, image, f"--model={lip_model_dir}", f"--out={tmp_path}", "--label-set=atr"
    )
    assert code == 2 and "Neck" in problems[0]
    code, _, problems = parse(
        capsys,
        image,
        f"--model={lip_model_dir}",
        f"--out={tmp_path}",
        "--label-set=viton",
        "--masks=foreground",
        "--person=main",
        "--crop",
    )
    assert (code, problems) == (0, [])
    summary = json.loads((tmp_path / "image.json").read_text())
    expected = lip_parser(image)
    assert summary["persons"] == [] and summary["label_set"] == "viton"
    assert summary["mask_scope"] == {"person": 0, "box": list(expected.mask_people()[0][0].bbox)}
    mask = png(tmp_path / "image_mask_foreground_main_crop.png")
    assert (mask == expected.mask("foreground", person="main", crop=True)).all()
