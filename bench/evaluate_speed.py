"""Inference speed over the 10,000 test images: mnist_core.evaluate against a plain seed-style evaluation.

    python -m bench.evaluate_speed [--data-dir ../shared/datasets] [--repeats 5]

Both use the same weights (the bundled model when present). The baseline is the
seed's way: ReLU before pooling, default memory layout, batches of 1000.
Prints the median seconds of each and the ratio. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from bench.train_speed import SeedNet  # noqa: E402
from mnist_core.data import load_split, normalize  # noqa: E402
from mnist_core.evaluate import evaluate  # noqa: E402
from mnist_core.model import MnistCNN  # noqa: E402
from mnist_core.pretrained import load_pretrained, pretrained_available  # noqa: E402


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up: oneDNN builds its kernels on the first call
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", "../shared/datasets"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    test = load_split("test", args.data_dir)
    model = load_pretrained().model if pretrained_available() else MnistCNN().eval()
    baseline = SeedNet().eval()
    baseline.load_state_dict(model.state_dict())

    floats = normalize(test.images)  # the seed's loop gets normalized floats for free; ours normalizes per batch

    def seed_style():
        with torch.no_grad():
            return torch.cat([baseline(floats[i : i + 1000]) for i in range(0, len(test), 1000)])

    ours = median_seconds(lambda: evaluate(model, test.images, test.labels), args.repeats)
    seed = median_seconds(seed_style, args.repeats)
    accuracy = evaluate(model, test.images, test.labels).accuracy
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(test)} test images, accuracy {accuracy:.4f}")
    print(f"  seed-style inference      {seed:6.2f} s (median of {args.repeats})")
    print(f"  mnist_core.evaluate       {ours:6.2f} s (probabilities, loss, confusion inputs)")
    print(f"  speed-up                  {seed / ours:6.2f} x")


if __name__ == "__main__":
    main()
