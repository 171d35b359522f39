"""``scripts/fixer_run.py`` run as a user runs it: a subprocess on the
tests' private database, with its own ``FIXER_HOME``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "fixer_run.py"
CAMVID = REPO.parent / "shared" / "data" / "camvid"
ESPNET = REPO.parent / "shared" / "models" / "espnet_camvid.pt"
CLASSES = ["sky", "road", "car"]


def run_cli(env: dict, *args: str, timeout: float = 600) -> tuple:
    """Runs the CLI; returns ``(exit code, stdout, stderr)``."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli_env(fo_env, tmp_path):
    env = dict(os.environ)
    env["FIXER_HOME"] = str(tmp_path / "fixer-home")
    return env


def _write_folder(root: Path, n: int = 4, *, layout: str = "khw") -> Path:
    """A small folder dataset: 3 classes, one planted error per image."""
    for sub in ("images", "masks", "probs"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        clean = np.zeros((48, 64), np.uint8)
        clean[24:] = 1
        clean[28:40, 10:30] = 2
        noisy = clean.copy()
        noisy[30:38, 12:28] = 1  # the car labelled road
        image = np.eye(3)[clean] * 200 + rng.integers(0, 40, (48, 64, 3))
        cv2.imwrite(
            str(root / "images" / f"img{i}.jpg"), image.astype(np.uint8)
        )
        cv2.imwrite(str(root / "masks" / f"img{i}.png"), noisy)
        probs = np.full((3, 48, 64), 0.05, np.float32)
        yy, xx = np.indices(clean.shape)
        probs[clean, yy, xx] = 0.9
        if layout == "hwk":
            probs = probs.transpose(1, 2, 0)
        np.save(root / "probs" / f"img{i}.npy", probs)
    (root / "classes.json").write_text(json.dumps(CLASSES))
    return root


def _folder_args(root: Path, name: str) -> list[str]:
    return [
        "--images",
        str(root / "images"),
        "--masks",
        str(root / "masks"),
        "--probs",
        str(root / "probs"),
        "--classes",
        str(root / "classes.json"),
        "--dataset",
        name,
    ]


def test_folder_run_finds_errors_and_colours_masks(cli_env, tmp_path):
    import fiftyone as fo

    root = _write_folder(tmp_path / "data")
    code, out, err = run_cli(cli_env, *_folder_args(root, "cli-folder"))
    assert code == 0, err
    assert "FIXER run 'fixer' on 4 images" in out
    dataset = fo.load_dataset("cli-folder")
    try:
        assert sum(len(s.fixer_patches.detections) for s in dataset) >= 4
        scheme = dataset.app_config.color_scheme
        gt = next(f for f in scheme.fields if f["path"] == "ground_truth")
        assert len(gt["maskTargetsColors"]) == 3
        corrected = next(
            f for f in scheme.fields if f["path"] == "fixer_corrected"
        )
        assert corrected["maskTargetsColors"] == gt["maskTargetsColors"]
        assert dataset.app_config.active_fields.paths == [
            "ground_truth",
            "fixer_patches",
        ]
    finally:
        dataset.delete()


def test_existing_dataset_is_kept_without_overwrite(cli_env, tmp_path):
    import fiftyone as fo

    mine = fo.Dataset("cli-mine", persistent=True)
    mine.add_sample(fo.Sample(filepath="/x.jpg", note="mine"))
    root = _write_folder(tmp_path / "data")
    try:
        code, _, err = run_cli(cli_env, *_folder_args(root, "cli-mine"))
        assert code != 0
        assert "Dataset 'cli-mine' exists (1 samples)" in err
        assert "--overwrite" in err
        assert fo.load_dataset("cli-mine").first().note == "mine"
        code, _, err = run_cli(
            cli_env, *_folder_args(root, "cli-mine"), "--overwrite"
        )
        assert code == 0, err
        assert len(fo.load_dataset("cli-mine")) == 4
    finally:
        fo.delete_dataset("cli-mine")


@pytest.mark.parametrize(
    "breakage, expected",
    [
        ("hwk", "img0.jpg: img0.npy has shape (48, 64, 3), channels last"),
        ("size", "img0.jpg: mask img0.png is 32x24 but the image is 64x48"),
        ("folder", "--masks: no such folder"),
        ("logits", "img0.jpg"),
    ],
    ids=["channels-last", "mask-size", "missing-folder", "not-probs"],
)
def test_bad_input_is_one_line(cli_env, tmp_path, breakage, expected):
    import fiftyone as fo

    root = _write_folder(tmp_path / "data", layout=breakage)
    if breakage == "size":
        small = np.zeros((24, 32), np.uint8)
        cv2.imwrite(str(root / "masks" / "img0.png"), small)
    if breakage == "folder":
        (root / "masks").rename(root / "labels")
    if breakage == "logits":
        np.save(root / "probs" / "img0.npy", np.full((3, 48, 64), 2.0))
    name = f"cli-bad-{breakage}"
    try:
        code, out, err = run_cli(cli_env, *_folder_args(root, name))
        assert code != 0
        lines = err.strip().splitlines()
        assert lines[0].startswith("fixer_run: error: "), err
        assert expected in lines[0]
        assert "Traceback" not in err
        if breakage == "logits":
            assert "--logits" in lines[0] and "logits=True" not in err
        code, _, err = run_cli(
            cli_env, *_folder_args(root, name), "--debug", "--overwrite"
        )
        assert code != 0 and "Traceback" in err
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def test_image_without_mask_is_named(cli_env, tmp_path):
    import fiftyone as fo

    root = _write_folder(tmp_path / "data")
    (root / "masks" / "img3.png").unlink()
    try:
        code, _, err = run_cli(cli_env, *_folder_args(root, "cli-nomask"))
        assert code == 0, err
        assert "1 of 4 images have no mask" in err and "img3.jpg" in err
        assert len(fo.load_dataset("cli-nomask")) == 3
    finally:
        fo.delete_dataset("cli-nomask")


def test_scenes_demo_hides_the_answer_key_and_cleans_up(cli_env):
    import fiftyone as fo

    args = ["--scenes", "--num-images", "8", "--dataset", "cli-scenes"]
    code, out, err = run_cli(cli_env, *args)
    assert code == 0, err
    assert "planted errors recovered" in out
    assert "--clean" in out
    dataset = fo.load_dataset("cli-scenes")
    assert "planted_errors" not in dataset.app_config.active_fields.paths
    # a demo dataset is the demo's own: rerunning replaces it
    code, _, err = run_cli(cli_env, *args)
    assert code == 0, err
    code, out, _ = run_cli(cli_env, "--clean")
    assert code == 0 and "deleted dataset 'cli-scenes'" in out
    assert not fo.dataset_exists("cli-scenes")
    assert not (Path(cli_env["FIXER_HOME"]) / "demo").exists()


def test_help_gives_every_option_help_and_its_default():
    import importlib.util

    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "the demo only" in proc.stdout
    assert "--ignore-values" in proc.stdout
    spec = importlib.util.spec_from_file_location("fixer_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for action in module.build_parser()._actions:
        assert action.help, action.option_strings
        takes_value = action.nargs != 0
        if takes_value and action.default is not None:
            assert "default" in action.help, action.option_strings


@pytest.mark.skipif(
    not (CAMVID.is_dir() and ESPNET.is_file()),
    reason="needs ../shared/data/camvid and ../shared/models",
)
def test_camvid_demo_runs_the_model_on_real_images(cli_env):
    import fiftyone as fo

    code, out, err = run_cli(
        cli_env,
        "--camvid",
        str(CAMVID),
        "--num-images",
        "3",
        "--dataset",
        "cli-camvid",
    )
    assert code == 0, err
    dataset = fo.load_dataset("cli-camvid")
    try:
        assert dataset.get_run_info("fixer").config.probs_source == "model"
        # read in place (the CLI resolves a symlinked ../shared)
        assert all(str(CAMVID.resolve()) in s.filepath for s in dataset)
        assert "planted errors recovered" in out
    finally:
        dataset.delete()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_app_serves_the_result_until_interrupted(cli_env):
    """``--app`` opens the App on the run's view; its view is part of the
    session's initial state, so a slow connection cannot fail it."""
    import signal
    import time
    import urllib.request

    import fiftyone as fo

    port = _free_port()
    args = ["--scenes", "--num-images", "4", "--dataset", "cli-app"]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args, "--app", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith("App at "):
                break
        else:
            pytest.fail(f"no App line; stderr:\n{proc.stderr.read()}")
        url = f"http://127.0.0.1:{port}/datasets/cli-app"
        assert url in line
        answered = False
        for _ in range(120):  # the server may be slow on a busy machine
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answered = response.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(1)
        assert answered
        time.sleep(3)  # the session's client connects meanwhile
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if fo.dataset_exists("cli-app"):
            fo.delete_dataset("cli-app")
    assert "Client is not connected" not in err
    assert "Traceback" not in err
