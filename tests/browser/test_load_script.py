"""The load and soak scripts' small CI modes run to the end and print their figures (no latency or memory asserts:
figures, not tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

LATENCY = r"n=\s*{n}\s+median\s+[\d.]+ s\s+p95\s+[\d.]+ s"


def run_ci(module: str, real_data, timeout: int) -> str:
    env = {**os.environ, "MNIST_DATA_DIR": str(real_data)}
    result = subprocess.run(
        [sys.executable, "-m", module, "--ci"], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_load_script_ci_mode(real_data):
    out = run_ci("bench.load_test", real_data, timeout=420)
    assert "2/2 sessions finished" in out and "errors: 0" in out
    # The server's own time for each of the 6 drawn digits, and the page's clock beside it.
    assert re.search(r"server: drawing in -> answer out\s+" + LATENCY.format(n=6), out), out
    assert re.search(r"page: draw -> prediction\s+" + LATENCY.format(n=6), out), out
    assert re.search(r"training run: finished, 1/1 epoch", out), out
    assert re.search(r"memory peak under load:\s+server\s+\d+ \+ trainer\s+\d+ =\s+\d+ MB RSS", out), out


def test_soak_script_ci_mode(real_data):
    out = run_ci("bench.soak", real_data, timeout=300)
    assert "2/2 sessions finished 6 cycles" in out and "errors: 0" in out
    assert re.search(r"^\s+0 cycles\s+server\s+\d+ =\s+\d+ MB RSS \(\s*\d+ MB PSS\)", out, re.MULTILINE), out
    assert re.search(r"growth over 6 cycles: server RSS [+-]\d+ MB, its own pages \(USS\) [+-]\d+ MB, PSS [+-]\d+ MB", out), out
    assert re.search(r"server: drawing in -> answer out\s+" + LATENCY.format(n=6), out), out
