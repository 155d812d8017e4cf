"""Find (or download) MNIST and hold each split in memory as tensors.

torchvision downloads MNIST and checks a fresh download; once the four IDX files
are present, they are read straight from their bytes (mnist_core/idx.py), so a
trainer never imports torchvision (1.5 s of a 2-core CPU's start-up) to load them.
torchvision's `MNIST.__getitem__` would convert every sample to a PIL image and
back; training slices batches out of one tensor instead. That tensor keeps the
files' uint8 pixels (47 MB for the training set, against 188 MB as floats, in the
trainer and again in the server); `model.as_input` normalizes each batch on its
way into the model.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_core.errors import DatasetError
from mnist_core.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_idx

if TYPE_CHECKING:  # torch is imported where it is used, so `mnist_core --help` and the run listing never load it
    import torch

MEAN = 0.1307
STD = 0.3081
SPLITS = ("train", "test")
DATA_DIR_ENV = "MNIST_DATA_DIR"
DEFAULT_DATA_DIR = "data"
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Split:
    """One split of MNIST in memory: uint8 images (N, 1, 28, 28) and labels (N,)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    checksum: str

    def __len__(self) -> int:
        return len(self.labels)

    def raw(self) -> torch.Tensor:
        """The pixels (N, 28, 28), for display (a view, not a copy)."""
        return self.images.squeeze(1)


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (or floats in [0, 1]) -> the normalized floats the model expects."""
    import torch

    x = pixels.to(torch.float32, copy=True)  # one fresh copy, then in place
    if pixels.dtype == torch.uint8:
        x.div_(255.0)
    return x.sub_(MEAN).div_(STD)


def normalized(images: torch.Tensor) -> torch.Tensor:
    """Model input from images that are either a split's uint8 pixels or floats normalized already."""
    import torch

    return normalize(images) if images.dtype == torch.uint8 else images


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $MNIST_DATA_DIR, else ./data."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def raw_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """Where torchvision keeps the four IDX files under a data folder."""
    return resolve_data_dir(data_dir) / "MNIST" / "raw"


def dataset_present(data_dir: str | os.PathLike | None = None) -> bool:
    """Whether all four IDX files are in the data folder (no download attempted)."""
    folder = raw_folder(data_dir)
    return all((folder / name).is_file() for pair in RAW_FILES.values() for name in pair)


def _missing_message(root: Path, cause: str) -> str:
    files = ", ".join(name for pair in RAW_FILES.values() for name in pair)
    return (
        f"MNIST is not in {root.resolve()} and could not be downloaded ({cause}). "
        f"Put the four files ({files}) in {root.resolve() / 'MNIST' / 'raw'}, "
        f"or point --data-dir or ${DATA_DIR_ENV} at a folder that has MNIST/raw/."
    )


def load_split(split: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Split:
    """Load one split ("train" or "test") as uint8 image and label tensors; cached per folder and file version."""
    if split not in SPLITS:
        raise DatasetError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")
    root = resolve_data_dir(data_dir)
    if not dataset_present(root):
        if not download:
            raise DatasetError(_missing_message(root, "download not attempted"))
        _download(root)
    folder = raw_folder(root)
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in (folder / n for n in RAW_FILES[split]))
    return _load_cached(str(root.resolve()), split, stamp)


def _download(root: Path) -> None:
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=True, download=True)
    except Exception as exc:  # torchvision raises RuntimeError or URLError; both mean "no data"
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatasetError(_missing_message(root, first_line.strip())) from exc


@functools.lru_cache(maxsize=4)
def _load_cached(root: str, split: str, stamp: tuple) -> Split:
    """The two IDX files of a split, read once from their bytes; `stamp` makes a changed file a cache miss."""
    import torch

    folder = Path(root) / "MNIST" / "raw"
    image_name, label_name = RAW_FILES[split]
    try:
        pixels = read_idx(folder / image_name, IMAGES_MAGIC)
        labels = read_idx(folder / label_name, LABELS_MAGIC)
    except (IdxError, OSError) as exc:
        raise DatasetError(
            f"The MNIST {split} files ({image_name} and {label_name}) in {folder} are corrupt or truncated "
            f"({exc}). Delete them to download fresh copies, or copy them again."
        ) from exc
    if pixels.shape[1:] != (28, 28) or len(pixels) != len(labels) or len(labels) == 0:
        raise DatasetError(
            f"The MNIST {split} files in {folder} do not match: "
            f"images {tuple(pixels.shape)}, labels {tuple(labels.shape)}. Copy them again."
        )
    if int(labels.max()) > 9:
        raise DatasetError(f"The MNIST {split} labels hold values above 9: the file is not MNIST.")
    targets = torch.from_numpy(labels).long()
    # Checkpoints and caches store this digest of the pixels and the int64 labels, so its value stays fixed.
    digest = hashlib.sha256(pixels.data)
    digest.update(targets.numpy().data)
    return Split(split, torch.from_numpy(pixels).unsqueeze(1), targets, digest.hexdigest())


def subset_indices(n: int, size: int | None) -> torch.Tensor | None:
    """A fixed random subset of `size` indices out of `n`, the same for every training seed.

    Fixing it (seed 0) means runs that differ only in their seed train on the same images,
    so their curves can be compared.
    """
    if size is None or size >= n:
        return None
    import torch

    generator = torch.Generator().manual_seed(0)
    return torch.randperm(n, generator=generator)[:size].sort().values
