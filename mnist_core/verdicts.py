"""People's verdicts on an audit's suspects, kept in the audit's own folder so everyone on the server shares them.

    runs/<audit_id>/verdicts.json   {"verdicts": [{"split", "index", "given", "suggested", "verdict", "at"}, ...]}

One entry per (split, index); a new verdict replaces the old one. Writers take a file
lock, read, change and write atomically, so two people judging at once both count.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from filelock import FileLock

from mnist_core.data import SPLITS
from mnist_core.errors import RunError
from mnist_core.files import write_json_atomic
from mnist_core.runs import Run

VERDICTS_NAME = "verdicts.json"
# Stored value -> what a reviewer reads.
VERDICTS = {"wrong": "label wrong", "right": "label right", "unsure": "unsure"}
CSV_COLUMNS = ("index", "split", "given", "suggested", "verdict")


def _path(run: Run):
    return run.path / VERDICTS_NAME


def load_verdicts(run: Run) -> dict[tuple[str, int], dict]:
    """Every verdict given on this audit, keyed by (split, index); none yet is an empty dict."""
    try:
        data = json.loads(_path(run).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"The audit {run.id} has an unreadable {VERDICTS_NAME}; fix or delete the file.") from exc
    entries = data.get("verdicts", []) if isinstance(data, dict) else []
    return {(e["split"], int(e["index"])): e for e in entries if isinstance(e, dict) and "split" in e and "index" in e}


def set_verdict(run: Run, split: str, index: int, given: int, suggested: int, verdict: str) -> dict:
    """Record one verdict ("wrong", "right" or "unsure") with the time it was given; returns the entry."""
    if verdict not in VERDICTS:
        raise RunError(f"Unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}.")
    if split not in SPLITS:
        raise RunError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")
    entry = {
        "split": split,
        "index": int(index),
        "given": int(given),
        "suggested": int(suggested),
        "verdict": verdict,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        with FileLock(run.path / f".{VERDICTS_NAME}.lock"):
            verdicts = load_verdicts(run)
            verdicts[(split, int(index))] = entry
            ordered = [verdicts[key] for key in sorted(verdicts)]
            write_json_atomic(_path(run), {"verdicts": ordered})
    except OSError as exc:
        raise RunError(f"Cannot save the verdict in {run.id} ({exc.strerror}); check that the runs folder is writable.") from exc
    return entry


def verdicts_csv(run: Run) -> bytes:
    """All verdicts as CSV: index, split, given, suggested, verdict (split, then index order)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    verdicts = load_verdicts(run)
    writer.writerows(verdicts[key] for key in sorted(verdicts))
    return buffer.getvalue().encode("utf-8")
