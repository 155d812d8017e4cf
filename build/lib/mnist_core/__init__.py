"""MNIST Lab's library: data, model, training, run store, checkpoints and evaluation.

Nothing here imports streamlit: everything the dashboard does can be done from
Python or from the command line (`python -m mnist_core --help`).
"""

from mnist_core.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    ImageError,
    MnistLabError,
    RunError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "ImageError",
    "MnistLabError",
    "RunError",
    "__version__",
]
