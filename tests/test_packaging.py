"""The package as a newcomer installs it: a wheel with the bundled model, a `mnist-lab` command, pins in one place."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import requires
from pathlib import Path

import pytest

from tests.conftest import REPO


def _pins(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def test_the_installed_distribution_requires_exactly_the_pins_of_requirements_txt():
    """pyproject.toml reads its dependencies from requirements.txt (the deploy file), so the two cannot drift."""
    installed = sorted(req for req in requires("mnist-lab") if "extra ==" not in req)
    assert installed == sorted(_pins(REPO / "requirements.txt"))
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.+]*", pin) for pin in installed), installed


@pytest.mark.integration  # builds a wheel and makes a virtual environment
def test_a_wheel_installed_elsewhere_runs_mnist_lab_and_evaluates_its_bundled_model(tmp_path, tiny_data):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("mnist_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("mnist_cnn.pt", "model_card.json", "test_map.npy", "test_map.json"):
        assert f"mnist_core/pretrained/{shipped}" in names, shipped
    assert not any(name.startswith(("tests/", "bench/", "pages/")) for name in names)

    # A fresh environment for the package; its dependencies (torch alone is gigabytes) are borrowed from this one
    # through a .pth file, the standard way to extend site-packages, so nothing is downloaded.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    (Path(site) / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [venv / "bin" / "mnist-lab", "evaluate", "--data-dir", str(tiny_data)],
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f'"checkpoint": "{site}/mnist_core/pretrained/mnist_cnn.pt"' in result.stdout  # the installed copy's model
    assert '"n": 200' in result.stdout
