"""Label audit: its wall time, and how many planted label errors it ranks in its top 200.

    python -m bench.audit_speed [--data-dir ../shared/datasets] [--folds 5] [--preset fast] [--epochs N]
                                [--train-subset N] [--planted 100] [--top 200] [--seed 0] [--threads N]

Flips `--planted` randomly chosen training labels (seeded) to another digit, runs the
audit (the default one unless flags say otherwise) on those labels, and prints its
time, the recall of the planted errors among the `--top` most suspect training
samples and the precision of that top list against them. The real MNIST holds label
errors of its own, which count against precision here: a figure, not an assert.
"""

from __future__ import annotations

import argparse
import os
import time

from mnist_core.audit import AuditConfig, plant_label_errors, run_audit, with_labels
from mnist_core.config import PRESETS, TrainConfig
from mnist_core.data import load_split
from mnist_core.label_issues import find_label_issues


def main() -> None:
    """Run one audit on planted errors and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--preset", choices=tuple(PRESETS), default="fast")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-subset", type=int)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--top", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="compute threads per fold model (default: one per physical core)")
    args = parser.parse_args()

    overrides = {key: getattr(args, key) for key in ("epochs", "train_subset", "threads") if getattr(args, key) is not None}
    config = AuditConfig(TrainConfig.from_preset(args.preset, **overrides), args.folds)
    train_split, test_split = load_split("train", args.data_dir), load_split("test", args.data_dir)
    labels, planted = plant_label_errors(train_split.labels.numpy(), args.planted, seed=args.seed)
    noisy = with_labels(train_split, labels)
    print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}  cpus: {os.cpu_count()}")
    print(f"audit: {config.folds} folds, preset {args.preset}, {config.epochs} epoch(s) per fold, {args.planted} planted errors")

    def on_batch(progress):
        if progress.batch.batch % 150 == 0:
            print(
                f"  fold {progress.fold} batch {progress.batch.batch}/{progress.batch.batches}  {progress.elapsed_s:.0f} s",
                flush=True,
            )

    def on_fold(fold, result):
        m = fold.metrics
        print(f"  fold {fold.fold}: held-out acc {m.test_acc:.4f}  {result.seconds:.1f} s so far", flush=True)

    started = time.perf_counter()
    result = run_audit(config, noisy, test_split, on_batch=on_batch, on_fold=on_fold)
    seconds = time.perf_counter() - started
    ranked = find_label_issues(result.train_probabilities, result.labels, top=args.top)
    top = {int(result.indices[issue.index]) for issue in ranked}
    audited = set(planted.tolist()) & set(result.indices.tolist())
    hits = len(top & audited)
    flagged = int(sum(issue.confident for issue in find_label_issues(result.train_probabilities, result.labels)))
    test_acc = float((result.test_probabilities.mean(axis=0).argmax(axis=1) == test_split.labels.numpy()).mean())
    print(f"load average after:  {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"time: {seconds:.1f} s for {len(result.indices):,} training images")
    print(f"recall: {hits} of {len(audited)} planted errors in the top {args.top}")
    print(f"precision: {hits / max(len(top), 1):.3f} of the top {args.top} are planted errors")
    print(f"confident-learning flags: {flagged:,}; fold-ensemble test accuracy {test_acc:.4f}")


if __name__ == "__main__":
    main()
