"""Errors a user can cause. Each message says what happened and what to do."""


class MnistLabError(Exception):
    """Base class for every error that is the user's to fix; shown without a traceback."""


class DatasetError(MnistLabError):
    """The MNIST files are missing, cannot be downloaded, or are corrupt."""


class ConfigError(MnistLabError, ValueError):
    """A training hyperparameter is out of range; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class CheckpointError(MnistLabError):
    """A checkpoint file is missing, corrupt, or not one of ours."""


class RunError(MnistLabError):
    """A run cannot be created, found, started or changed."""


class ImageError(MnistLabError):
    """An image cannot be read, or holds no digit."""


class BlankImageError(ImageError):
    """The image holds no ink (an empty canvas): the page says "draw a digit" instead of an error."""
