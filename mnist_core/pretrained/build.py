"""Turn a finished training run into the bundled model, its model card and its test-split map.

    python -m mnist_core.pretrained.build RUN_DIR --command "python -m mnist_core train ..." [--data-dir D]

The checkpoint is copied as it is (the run's own training code wrote it); the card
records the command that reproduces it, the data checksum, the accuracy measured
again on the test set, how long training took on which machine, and the robustness
report of the model it replaces beside its own (the reason to retrain is usually
there). The run's end-of-run t-SNE map of the test split ships as test_map.npy
(float16), so Explore draws it at once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys

import numpy as np
import torch

from mnist_core import maps
from mnist_core.checkpoint import Checkpoint, load_checkpoint
from mnist_core.data import Split, load_split
from mnist_core.evaluate import evaluate
from mnist_core.precision import cpu_model
from mnist_core.pretrained import (
    MODEL_CARD_PATH,
    PRETRAINED_PATH,
    TEST_MAP_INFO_PATH,
    TEST_MAP_PATH,
    load_pretrained,
    pretrained_available,
)
from mnist_core.robustness import compute_report
from mnist_core.runs import Run


def build_card(run: Run, checkpoint: Checkpoint, test: Split, command: str, note: str = "") -> dict:
    """The model card of a finished run, with the test accuracy measured again from its checkpoint."""
    result = evaluate(checkpoint.model, test.images, test.labels)
    progress = run.progress()
    return {
        "name": "MnistCNN (bundled)",
        "architecture": "conv 1->32 3x3, pool, conv 32->64 3x3, pool, fc 3136->128, fc 128->10 (421,642 parameters)",
        "command": command,
        "config": checkpoint.meta.get("config"),
        "epochs_trained": checkpoint.meta.get("epoch"),
        "data_checksum_sha256": checkpoint.meta.get("data_checksum"),
        "test_accuracy": result.accuracy,
        "test_loss": result.loss,
        "test_errors": int(result.n - result.correct.sum()),
        "per_class_accuracy": {str(d): float(v) for d, v in enumerate(result.per_class()["recall"])},
        "training_seconds": progress.get("elapsed_s"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": cpu_model(),
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "threads": checkpoint.meta.get("config", {}).get("threads"),
        },
        "created_at": checkpoint.meta.get("created_at"),
        "checkpoint_sha256": checkpoint.digest,
        "note": note,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bundle a finished run as the pretrained model.")
    parser.add_argument("run_dir")
    parser.add_argument("--command", required=True, help="the exact training command that produced the run")
    parser.add_argument("--data-dir")
    parser.add_argument("--note", default="", help="anything a reader of the card should know (e.g. a busy machine)")
    args = parser.parse_args(argv)
    run = Run(args.run_dir)
    if run.status() != "finished":
        print(f"error: {args.run_dir} is {run.status()}, not finished", file=sys.stderr)
        return 2
    test = load_split("test", args.data_dir)
    new = load_checkpoint(run.checkpoint_path)
    stored = maps.stored_map(run.path, "test", len(test)) if maps.describes(run.path, new.digest, test) else None
    if stored is None:
        print(f"error: {args.run_dir} has no end-of-run map of this checkpoint on the test split", file=sys.stderr)
        return 2
    card = build_card(run, new, test, args.command, args.note)
    card["robustness"] = {
        "before": _robustness(load_pretrained(), test) if pretrained_available() else None,
        "after": _robustness(new, test),
    }
    shutil.copyfile(run.checkpoint_path, PRETRAINED_PATH)
    MODEL_CARD_PATH.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    points, method = stored
    np.save(TEST_MAP_PATH, points.astype(np.float16), allow_pickle=False)
    info = {"method": method, "digest": new.digest, "data_checksum": test.checksum, "n": len(test),
            "command": f"the end-of-run analysis of `{args.command}` (its map.npy, as float16)"}  # fmt: skip
    TEST_MAP_INFO_PATH.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"bundled {PRETRAINED_PATH.name}: test accuracy {card['test_accuracy']:.4f}, {method} map of {len(test):,} images")
    return 0


def _robustness(checkpoint, split) -> dict:
    """A checkpoint's robustness report (computed, never from a cache), named by its digest."""
    return {"checkpoint_sha256": checkpoint.digest, **compute_report(checkpoint.model, split)}


if __name__ == "__main__":
    sys.exit(main())
