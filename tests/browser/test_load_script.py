"""The load script's small CI mode runs to the end and prints its figures (no latency asserts: figures, not tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_load_script_ci_mode(real_data):
    env = {**os.environ, "MNIST_DATA_DIR": str(real_data)}
    result = subprocess.run(
        [sys.executable, "-m", "bench.load_test", "--ci"], cwd=REPO, env=env, capture_output=True, text=True, timeout=420
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "2/2 sessions finished" in out and "errors: 0" in out
    assert re.search(r"draw -> prediction\s+n=\s*6\s+median\s+[\d.]+ s\s+p95\s+[\d.]+ s", out), out
    assert re.search(r"training run: finished, 1/1 epoch", out), out
    assert re.search(r"memory peak under load:\s+server\s+\d+ \+ trainer\s+\d+ =\s+\d+ MB RSS", out), out
