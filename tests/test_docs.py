"""The README stays true: its Python example runs, and it names every setting the code reads."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_a_newcomers_page():
    assert len(README.encode("utf-8")) <= 12_000


def test_every_environment_variable_the_code_reads_is_in_the_readme():
    sources = [*REPO.joinpath("mnist_core").rglob("*.py"), *REPO.joinpath("ui").glob("*.py"), REPO / "streamlit_app.py"]
    sources += [*REPO.joinpath("pages").glob("*.py"), REPO / "tests" / "conftest.py"]
    names = set()
    for path in sources:
        names |= set(re.findall(r"\"((?:MNIST|OMP)_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    assert names, "the scan found no settings at all"
    missing = sorted(name for name in names if f"`{name}`" not in README)
    assert not missing, f"settings the README does not document: {missing}"


@pytest.mark.integration  # runs the example in a fresh interpreter, as a reader would
def test_the_python_example_runs(tiny_data, tmp_path):
    (example,) = re.findall(r"## Python\n\n```python\n(.*?)```", README, flags=re.S)
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path, env={"MNIST_DATA_DIR": str(tiny_data), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test accuracy after 1 epoch(s):" in result.stdout
    assert result.stdout.count("[") >= 10  # the 10 x 10 confusion matrix was printed
