"""The one way MNIST Lab writes a file that others read: to a temporary file beside it, then a rename.

A reader (another session, the server, a restarted trainer) sees the old file or the
new one, never half of one, and a process killed mid-write leaves the old file in place.
`durable=True` also flushes the data to the disk before the rename (and the folder
entry after it), so a power cut cannot leave an empty file under the final name: run
files and checkpoints use it, the analysis cache, which can always be recomputed, does not.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], durable: bool = False) -> Path:
    """Call `write(handle)` on a temporary file in `path`'s folder, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _sync_folder(path.parent)
    return path


def write_text_atomic(path: str | os.PathLike, text: str, durable: bool = True) -> Path:
    """Replace a text file (UTF-8) atomically."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda handle: handle.write(data), durable=durable)


def write_json_atomic(path: str | os.PathLike, data: Any, durable: bool = True) -> Path:
    """Replace a JSON file atomically; NaN and infinity are refused, since JSON has no such values."""
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n", durable=durable)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a platform without directory handles has nothing to sync."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
