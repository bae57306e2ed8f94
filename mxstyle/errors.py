"""Exceptions a user can cause. Each message says what went wrong and what to do.

The command-line tools catch :class:`MxstyleError` and print its message on one line
(no traceback) before exiting non-zero; library users catch it like any exception.
"""


class MxstyleError(Exception):
    """Base class of every error mxstyle raises on purpose."""


class ImageError(MxstyleError, ValueError):
    """An image could not be read or written (empty, truncated, not an image, too large...)."""


class WeightsError(MxstyleError):
    """Network weights are missing, corrupt or could not be fetched."""


class ConfigError(MxstyleError, ValueError):
    """An option has a bad value (unknown layer, negative weight, bad size...)."""
