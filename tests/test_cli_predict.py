"""`python -m mnist_core predict`: good and bad files, JSON and table output, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from mnist_core.checkpoint import build_meta, save_checkpoint
from mnist_core.cli import main
from mnist_core.model import MnistCNN
from mnist_core.testing.drawing import draw_digit
from tests.conftest import REPO


@pytest.fixture
def untrained_checkpoint(tmp_path):
    """A real checkpoint file of an untrained model: enough to test the plumbing, not the answers."""
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "untrained.pt", MnistCNN(), build_meta())


@pytest.fixture
def images(tmp_path):
    """A drawn 3 (black on white PNG), a white-on-black 7 JPEG, a non-image and a blank PNG."""
    paths = {
        "three": tmp_path / "three.png",
        "seven": tmp_path / "seven.jpg",
        "text": tmp_path / "notes.png",
        "blank": tmp_path / "blank.png",
    }
    draw_digit(3, size=(500, 300), box=(150, 40, 300, 260), width=20, background=255, ink=0).save(paths["three"])
    draw_digit(7, width=16).convert("RGB").save(paths["seven"], quality=90)
    paths["text"].write_text("not an image")
    Image.new("L", (100, 100), 255).save(paths["blank"])
    return paths


def test_json_lists_every_image_in_order_with_errors_per_image(untrained_checkpoint, images, capsys):
    files = [str(images[name]) for name in ("three", "text", "seven", "blank")]
    code = main(["predict", *files, "--checkpoint", str(untrained_checkpoint), "--json"])
    captured = capsys.readouterr()
    entries = json.loads(captured.out)
    assert code != 0
    assert [entry["file"] for entry in entries] == files
    for good in (entries[0], entries[2]):
        assert set(good) == {"file", "prediction", "probabilities"}
        assert len(good["probabilities"]) == 10 and sum(good["probabilities"]) == pytest.approx(1.0)
        assert good["prediction"] == max(range(10), key=good["probabilities"].__getitem__)
    assert set(entries[1]) == {"file", "error"} and "not an image" in entries[1]["error"]
    assert set(entries[3]) == {"file", "error"} and "blank" in entries[3]["error"]
    assert captured.err.strip() == "error: 2 of 4 images could not be predicted"


def test_all_good_images_exit_zero_with_a_table(untrained_checkpoint, images, capsys):
    code = main(["predict", str(images["three"]), str(images["seven"]), "--checkpoint", str(untrained_checkpoint)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["file", "digit", "confidence", "top", "3"]
    assert len(out) == 3 and out[1].startswith(str(images["three"])) and "%" in out[1]


def test_table_shows_errors_in_place(untrained_checkpoint, images, capsys):
    code = main(["predict", str(images["text"]), "--checkpoint", str(untrained_checkpoint)])
    out = capsys.readouterr().out
    assert code == 2 and "error: notes.png is not an image" in out


def test_missing_file_is_an_entry_not_a_crash(untrained_checkpoint, images, tmp_path, capsys):
    missing = str(tmp_path / "gone.png")
    code = main(["predict", missing, str(images["three"]), "--checkpoint", str(untrained_checkpoint), "--json"])
    entries = json.loads(capsys.readouterr().out)
    assert code == 2 and "no such file" in entries[0]["error"] and "prediction" in entries[1]


def test_bad_checkpoint_is_one_line(images, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    code = main(["predict", str(images["three"]), "--checkpoint", str(bad)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("error: bad.pt is not a readable checkpoint") and captured.err.count("\n") == 1


def test_no_images_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict"])
    assert exit_info.value.code == 2 and "IMAGE" in capsys.readouterr().err


@pytest.mark.integration
def test_bundled_model_is_the_default_and_reads_drawn_digits(tmp_path):
    from mnist_core.pretrained import pretrained_available

    if not pretrained_available():
        pytest.fail("the bundled model (mnist_core/pretrained/mnist_cnn.pt) is missing")
    files = []
    for digit in range(10):
        path = tmp_path / f"digit_{digit}.png"
        style = {"background": 255, "ink": 0} if digit % 2 else {}
        draw_digit(digit, **style).save(path)
        files.append(str(path))
    # As a user runs it: a separate process, no --checkpoint.
    result = subprocess.run(
        [sys.executable, "-m", "mnist_core", "predict", *files, "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [entry["prediction"] for entry in json.loads(result.stdout)] == list(range(10))
