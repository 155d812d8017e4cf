"""Map quality: 10-nearest-neighbour accuracy (5-fold) of the 2-D map of the bundled model's test features, and its time.

    python -m bench.map_quality [--data-dir ../shared/datasets] [--threads 2]

Prints one line per method (PCA, t-SNE) with the accuracy and the seconds the map took, and the load
average beside them: on a shared machine the seconds are not an idle machine's. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mnist_core.analysis import analyze_images
from mnist_core.data import load_split
from mnist_core.embedding import pca_2d
from mnist_core.maps import knn_accuracy, tsne_2d
from mnist_core.pretrained import load_pretrained

DEFAULT_DATA = Path(os.environ.get("MNIST_DATA_DIR") or Path(__file__).resolve().parent.parent.parent / "shared" / "datasets")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    split = load_split("test", args.data_dir)
    features = analyze_images(load_pretrained().model, split.images, split.labels)["features"]
    labels = split.labels.numpy()
    for name, method in (("PCA", pca_2d), ("t-SNE (openTSNE)", lambda f: tsne_2d(f, threads=args.threads))):
        started = time.perf_counter()
        points = method(features)
        seconds = time.perf_counter() - started
        print(
            f"{name:<17} 10-NN accuracy (5-fold) {knn_accuracy(points, labels):.3f}  {seconds:6.1f} s  "
            f"({args.threads} threads; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})",
            flush=True,
        )


if __name__ == "__main__":
    main()
