"""Latency of a drawn digit: canvas PNG -> pixels -> preprocess -> model -> probabilities (and saliency).

    python -m bench.predict_latency [--repeats 200] [--threads N] [--checkpoint PATH]

The canvas component sends its drawing as a 280x280 RGBA PNG; the Draw page decodes
it, preprocesses it and runs the model. This times each step and the whole path on
drawings of all ten digits, and prints the median and 95th percentile in milliseconds.
The target is a median under 30 ms for the whole path on 2 CPU cores. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import torch
from PIL import Image

from mnist_core.checkpoint import load_checkpoint  # noqa: E402
from mnist_core.model import MnistCNN  # noqa: E402
from mnist_core.preprocess import predict, preprocess  # noqa: E402
from mnist_core.pretrained import load_pretrained, pretrained_available  # noqa: E402
from mnist_core.saliency import saliency  # noqa: E402
from mnist_core.testing.drawing import canvas_rgba  # noqa: E402


def timings_ms(function, inputs: list, repeats: int) -> list[float]:
    """Milliseconds per call, cycling through `inputs`, after one warm-up call on each."""
    for item in inputs:
        function(item)  # warm-up: oneDNN picks its kernels on the first calls
    times = []
    for i in range(repeats):
        item = inputs[i % len(inputs)]
        started = time.perf_counter()
        function(item)
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[-1]
    return f"median {statistics.median(times):6.2f} ms   p95 {p95:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--checkpoint", help="checkpoint to time (default: the bundled model, else an untrained one)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        model, which = load_checkpoint(args.checkpoint).model, args.checkpoint
    elif pretrained_available():
        model, which = load_pretrained().model, "bundled model"
    else:
        model, which = MnistCNN().eval(), "untrained model (no bundled model here)"

    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    canvases = [png(canvas_rgba(digit)) for digit in range(10)]
    decoded = [np.asarray(Image.open(io.BytesIO(data))) for data in canvases]
    digits = [preprocess(array) for array in decoded]

    def whole_path(data: bytes):
        return predict(model, preprocess(np.asarray(Image.open(io.BytesIO(data))))).probabilities

    def explain(digit):
        return saliency(model, digit.tensor, predict(model, digit).prediction)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {which}; {args.repeats} calls per line")
    print(
        f"  decode canvas PNG (280x280)   {summary(timings_ms(lambda d: np.asarray(Image.open(io.BytesIO(d))), canvases, args.repeats))}"
    )
    print(f"  preprocess                    {summary(timings_ms(preprocess, decoded, args.repeats))}")
    print(f"  model -> probabilities        {summary(timings_ms(lambda d: predict(model, d), digits, args.repeats))}")
    print(f"  whole path, canvas -> probs   {summary(timings_ms(whole_path, canvases, args.repeats))}   (target: median < 30 ms)")
    print(f"  saliency (extra, for display) {summary(timings_ms(explain, digits, max(20, args.repeats // 4)))}")


if __name__ == "__main__":
    main()
