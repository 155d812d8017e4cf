"""Once per server, in the background: load what a page's first visit would otherwise wait for.

The training split (0.16 s to read and checksum) backs the nearest training images of every sample Explore or
Draw opens, and pandas' table styling (0.05 s to import) draws Explore's confusion matrix. A visitor who
follows a shared link to a sample waits for both in the page's first run unless the server has them already.
"""

from __future__ import annotations

import threading

from mnist_core.data import dataset_present, load_split
from mnist_core.errors import DatasetError

_started = threading.Event()
_lock = threading.Lock()


def start() -> None:
    """Start the warm-up thread, once per process; it returns at once."""
    with _lock:
        if _started.is_set():
            return
        _started.set()
    # A daemon: it writes nothing, so a server that stops need not wait for it.
    threading.Thread(target=_warm, name="mnist-lab-warm-up", daemon=True).start()


def _warm() -> None:
    if dataset_present():
        for split in ("test", "train"):  # the test split first: Home shows its digits
            try:
                load_split(split, download=False)
            except (DatasetError, OSError):
                break  # the pages say what is wrong with the files when a visitor opens them
    import pandas.io.formats.style  # noqa: F401
