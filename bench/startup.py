"""Start-up: seconds from `python -m mnist_core train` to its first batch, the trainer as it was against as it is.

    python -m bench.startup [--data-dir ../shared/datasets] [--repeat 3]

Each try is a fresh interpreter running the real `train` command on the real data;
it reports `import torch` and stops itself at the first batch. "before" swaps in
what the trainer used before mnist_core/idx.py and mnist_core/optim.py: torchvision's
MNIST class (imported on first use) and torch.optim's Adam (which imports
torch._dynamo on first use); "now" is the trainer as it is. The two alternate, so a
change in the machine's load hits both. Figures, not asserts; the load average is
printed beside them because this CPU may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys, time
started = time.perf_counter()
import torch
print("torch", time.perf_counter() - started, flush=True)
import mnist_core.data as data
if sys.argv[1] == "before":
    import functools, hashlib
    import mnist_core.train as trainer

    @functools.lru_cache(maxsize=4)
    def torchvision_load(root, split, stamp):
        from torchvision.datasets import MNIST

        dataset = MNIST(root, train=(split == "train"), download=False)
        pixels, labels = dataset.data, dataset.targets.long()
        digest = hashlib.sha256(pixels.numpy().tobytes())
        digest.update(labels.numpy().tobytes())
        return data.Split(split, pixels.unsqueeze(1), labels, digest.hexdigest())

    data._load_cached = torchvision_load
    trainer._make_optimizer = lambda config, model: torch.optim.Adam(model.parameters(), lr=config.lr)
from mnist_core import recorder

def first_batch(self, progress):
    print("first", flush=True)
    os._exit(0)

recorder.RunRecorder.on_batch = first_batch
from mnist_core.cli import main
main(["train", "--data-dir", sys.argv[2], "--out", sys.argv[3], "--epochs", "1"])
"""


def one_start(mode: str, data_dir: str, out: Path) -> tuple[float, float]:
    """(seconds to `import torch`, seconds to the first batch) of one fresh `train` process."""
    started = time.perf_counter()
    torch_s = None
    with subprocess.Popen([sys.executable, "-c", CHILD, mode, data_dir, str(out)], stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            word, *rest = line.split()
            if word == "torch":
                torch_s = float(rest[0])
            elif word == "first":
                return torch_s, time.perf_counter() - started
    raise SystemExit(f"the {mode} trainer ended before its first batch (exit {proc.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR", "../shared/datasets"))
    parser.add_argument("--repeat", type=int, default=3, help="starts of each kind (default: 3)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average before: {_load()}")
    results: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(args.repeat):
            for mode in results:
                results[mode].append(one_start(mode, args.data_dir, Path(scratch) / f"{mode}-{attempt}"))
    print("\nSeconds from process start to the first batch (median of each kind; all tries in brackets):")
    for mode, rows in results.items():
        torch_s = statistics.median(r[0] for r in rows)
        first = [r[1] for r in rows]
        tries = ", ".join(f"{s:.1f}" for s in first)
        print(f"  {mode:8s} first batch {statistics.median(first):6.2f} s  (import torch {torch_s:.2f} s)  [{tries}]")
    before, now = (statistics.median(r[1] for r in results[mode]) for mode in ("before", "now"))
    print(f"  now takes {before - now:.2f} s less ({before / now:.2f}x sooner)")
    print(f"load average after: {_load()}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


if __name__ == "__main__":
    main()
